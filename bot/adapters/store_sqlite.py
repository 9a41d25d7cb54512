"""The embedded store: one SQLite file, WAL, every write committed before it returns.

All access goes through one thread (SQLite connections are not for sharing), so the
event loop never blocks on disk and transactions never interleave.

Every operation is group-committed: calls that arrive while a commit is running wait
for it, then go to disk together in the next transaction (one fsync, one trip to the
thread), each inside a savepoint of its own, so one that fails undoes only its own
writes. Each call still returns only after its transaction is committed, so a 202 still
means "on disk" and a job's journal is on disk before its next side effect; a lone call
is written at once, with no timer to wait for. Ingest's deliveries and the worker's job
writes (claims, journal steps, finishes) share those commits: under load a commit
carries several of each (one fsync where there were a dozen per job).

SQL lives in `schema/sqlite/`; rows become values (and values rows) in `rows.py`, shared
with the PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bot import budget, fleet
from bot.adapters import rows
from bot.adapters.sql import migrations, queries
from bot.ledger import LedgerRow
from bot.ports import BudgetWindows, Job, LostLease, SessionRecord, SessionView

T = TypeVar("T")
Q = queries("sqlite")
MAX_GROUP = 256  # operations per transaction at most (a delivery's payload is up to 25 MB)


def path_from_url(url: str) -> str:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or `sqlite://:memory:`."""
    rest = url.removeprefix("sqlite://")
    if rest in (":memory:", "/:memory:"):
        return ":memory:"
    return rest[1:] if rest.startswith("/") else rest


class SQLiteStore:
    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None
        self._waiting: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        return cls(path_from_url(url))

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(db)` in the next group commit; its value once that commit is on disk."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self._waiting.append((fn, done))
        if self._committer is None or self._committer.done():
            self._committer = loop.create_task(self._commit_waiting())
        # A caller that is cancelled (a client that hung up) leaves its operation in the
        # group: the commit others wait on goes ahead either way.
        return await done

    async def _commit_waiting(self) -> None:
        """Commit waiting operations in groups until none is left."""
        loop = asyncio.get_running_loop()
        while self._waiting:
            group = self._waiting[:MAX_GROUP]
            del self._waiting[:MAX_GROUP]
            try:
                fns = [fn for fn, _ in group]
                outcomes = await loop.run_in_executor(self._executor, self._commit, fns)
            except Exception as exc:  # the transaction itself failed: nothing was written
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, done), (value, error) in zip(group, outcomes, strict=True):
                if done.done():
                    continue
                if error is not None:
                    done.set_exception(error)
                else:
                    done.set_result(value)

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=5.0
            )
            # Switching a new file to WAL takes an exclusive lock that SQLite's busy handler
            # does not wait for: when another process opens the file at the same moment,
            # try again briefly instead of failing.
            for attempt in range(50):
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
            db.execute("PRAGMA synchronous=FULL")  # a 202 means the delivery is on disk
            db.execute("PRAGMA busy_timeout=5000")
            db.execute("PRAGMA foreign_keys=ON")
            self._db = db
        return self._db

    def _commit(
        self, fns: list[Callable[[sqlite3.Connection], Any]]
    ) -> list[tuple[Any, Exception | None]]:
        """One transaction for the group (on the store's thread): each operation's value,
        or the exception it raised after its own writes were rolled back."""
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        outcomes: list[tuple[Any, Exception | None]] = []
        try:
            if len(fns) == 1:  # alone: its failure rolls back the whole transaction
                outcomes.append((fns[0](db), None))
            else:
                for fn in fns:
                    outcomes.append(_in_savepoint(db, fn))
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return outcomes

    # -- lifecycle ---------------------------------------------------------

    async def migrate(self) -> None:
        def apply(db: sqlite3.Connection) -> None:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            done = {row[0] for row in db.execute("SELECT version FROM schema_version")}
            for version, sql in migrations("sqlite"):
                if version in done:
                    continue
                for statement in sql.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )

        await self._run(apply)

    async def schema_version(self) -> int:
        def read(db: sqlite3.Connection) -> int:
            try:
                row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            except sqlite3.OperationalError:
                return 0
            return int(row[0] or 0)

        return await self._run(read)

    async def close(self) -> None:
        if self._committer is not None:
            await self._committer

        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)

    async def ping(self) -> bool:
        try:
            return await self.schema_version() >= migrations("sqlite")[-1][0]
        except sqlite3.Error:
            return False

    # -- deliveries and jobs -----------------------------------------------

    async def enqueue(
        self,
        delivery_id: str,
        event: str,
        action: str | None,
        payload: bytes,
        lock_key: str | None,
        now: float,
        *,
        dedupe: tuple[str, ...] = (),
        since: float = 0.0,
    ) -> bool:
        params = {
            "delivery_id": delivery_id,
            "event": event,
            "action": action,
            "payload": payload,
            "lock_key": lock_key,
            "now": now,
            "dedupe": dedupe,
            "since": since,
        }
        return await self._run(functools.partial(_insert, params=params))

    async def record_config_words(
        self, installation_id: int, repo: str, label: str, command: str, now: float
    ) -> None:
        params = {
            "repo": repo,
            "installation_id": installation_id,
            "label": label,
            "command": command,
            "now": now,
        }
        await self._run(lambda db: db.execute(Q["record_config_words"], params))

    async def config_words(self, repo: str, since: float) -> tuple[str, str] | None:
        params = {"repo": repo, "since": since}

        def read(db: sqlite3.Connection) -> tuple[str, str] | None:
            row = db.execute(Q["config_words"], params).fetchone()
            return None if row is None else (row[0], row[1])

        return await self._run(read)

    async def has_delivery(self, delivery_id: str) -> bool:
        params = {"delivery_id": delivery_id}
        return await self._run(
            lambda db: db.execute(Q["has_delivery"], params).fetchone() is not None
        )

    async def schedule(
        self,
        kind: str,
        payload: dict[str, Any],
        lock_key: str | None,
        run_at: float,
        now: float,
        *,
        priority: int = 0,
    ) -> None:
        params = {
            "kind": kind,
            "priority": priority,
            "payload": json.dumps(payload).encode(),
            "lock_key": lock_key,
            "run_at": run_at,
            "now": now,
        }
        await self._run(lambda db: db.execute(Q["insert_task"], params))

    async def _fenced(self, job: Job, query: str, **values: Any) -> None:
        params = {"id": job.id, "lease": job.lease, **values}
        if not await self._run(lambda db: db.execute(Q[query], params).rowcount == 1):
            raise LostLease(f"job {job.id}: the lease was taken over; {query} not written")

    async def reschedule(self, job: Job, run_at: float, now: float) -> None:
        await self._fenced(job, "reschedule_job", run_at=run_at, now=now)

    async def claim(self, worker: str, now: float, lease_seconds: float) -> Job | None:
        def lease(db: sqlite3.Connection) -> Job | None:
            found = _claimable(db, now)
            if found is None:
                return None
            lease = secrets.token_hex(16)
            params = {
                "id": found,
                "worker": worker,
                "until": now + lease_seconds,
                "now": now,
                "lease": lease,
            }
            job_id, delivery_id, event, payload, attempts, progress, kind, created = db.execute(
                Q["lease_job"], params
            ).fetchone()
            try:
                data, notes = json.loads(payload), json.loads(progress)
            except ValueError as exc:
                # A row no worker can read must not block the queue: set it aside.
                failure = {"id": job_id, "error": f"unreadable job: {exc}", "now": now}
                failure["lease"] = lease
                db.execute(Q["fail_job"], {**failure, "state": "dead"})
                return None
            return Job(
                id=job_id,
                delivery_id=delivery_id,
                event=event,
                payload=data,
                attempts=attempts,
                progress=notes,
                kind=kind,
                created_at=created,
                lease=lease,
            )

        return await self._run(lease)

    async def extend(self, job: Job, until: float) -> bool:
        params = {"id": job.id, "lease": job.lease, "until": until}
        return await self._run(lambda db: db.execute(Q["extend_lease"], params).rowcount == 1)

    async def save_progress(self, job: Job, progress: dict[str, Any]) -> None:
        await self._fenced(job, "save_progress", progress=json.dumps(progress))

    async def finish(self, job: Job, now: float) -> None:
        await self._fenced(job, "finish_job", now=now)

    async def retry(self, job: Job, error: str, run_at: float) -> None:
        await self._fenced(job, "retry_job", error=error[:2000], run_at=run_at)

    async def fail(self, job: Job, error: str, now: float, *, dead: bool) -> None:
        state = "dead" if dead else "failed"
        await self._fenced(job, "fail_job", error=error[:2000], now=now, state=state)

    async def release(self, job: Job) -> None:
        await self._fenced(job, "release_job")

    async def next_run_at(self) -> float | None:
        def read(db: sqlite3.Connection) -> float | None:
            value = db.execute(Q["next_run_at"]).fetchone()[0]
            return None if value is None else float(value)

        return await self._run(read)

    async def prune(self, jobs_before: float, deliveries_before: float, batch: int) -> int:
        def delete(db: sqlite3.Connection) -> int:
            jobs = {"before": jobs_before, "batch": batch}
            others = {"before": deliveries_before, "batch": batch}
            return sum(
                db.execute(Q[query], params).rowcount
                for query, params in (
                    ("prune_jobs", jobs),
                    ("prune_deliveries", others),
                    ("prune_dedupe_keys", others),
                )
            )

        return await self._run(delete)

    # -- sessions, notices, installations -----------------------------------

    async def record_session(self, record: SessionRecord) -> None:
        params = rows.session_params(record)
        await self._run(lambda db: db.execute(Q["insert_session"], params))

    async def sessions_for_issue(self, repo: str, issue: int) -> list[SessionRecord]:
        params = {"repo": repo, "issue": issue}

        def read(db: sqlite3.Connection) -> list[SessionRecord]:
            return [rows.session_record(row) for row in db.execute(Q["sessions_for_issue"], params)]

        return await self._run(read)

    async def update_session(self, dispatch_id: str, status: str, view: SessionView) -> None:
        params = {"dispatch_id": dispatch_id, "status": status, "view": rows.view_text(view)}
        await self._run(lambda db: db.execute(Q["update_session"], params))

    async def remember_notice(self, repo: str, issue: int, kind: str, now: float) -> bool:
        params = {"repo": repo, "issue": issue, "kind": kind, "now": now}
        return await self._run(lambda db: db.execute(Q["insert_notice"], params).rowcount == 1)

    async def record_installation(
        self, installation_id: int, account: str, action: str, now: float
    ) -> None:
        state = {"deleted": "deleted", "suspend": "suspended"}.get(action, "active")
        params = {"id": installation_id, "account": account, "state": state, "now": now}
        await self._run(lambda db: db.execute(Q["upsert_installation"], params))

    async def record_repositories(
        self, installation_id: int, added: tuple[str, ...], removed: tuple[str, ...]
    ) -> None:
        def write(db: sqlite3.Connection) -> None:
            for name in added:
                db.execute(Q["add_repository"], {"id": installation_id, "name": name})
            for name in removed:
                db.execute(Q["remove_repository"], {"id": installation_id, "name": name})

        await self._run(write)

    async def job_counts(self, kind: str | None = None) -> dict[str, int]:
        def read(db: sqlite3.Connection) -> dict[str, int]:
            return dict(db.execute(Q["job_counts"], {"kind": kind}).fetchall())

        return await self._run(read)

    async def stats(self) -> dict[str, Any]:
        def read(db: sqlite3.Connection) -> dict[str, Any]:
            return {
                "installations": db.execute(Q["count_installations"]).fetchone()[0],
                "repositories": db.execute(Q["count_repositories"]).fetchone()[0],
                "recent_deliveries": rows.recent_deliveries(
                    db.execute(Q["recent_deliveries"]).fetchall()
                ),
            }

        return await self._run(read)

    # -- usage ledger and budgets ------------------------------------------

    async def record_usage(self, usage: LedgerRow) -> None:
        params = rows.usage_params(usage)
        await self._run(lambda db: db.execute(Q["insert_usage"], params))

    async def usage(
        self, since: float, *, repo: str | None = None, issue: int | None = None
    ) -> list[LedgerRow]:
        params = {"since": since, "repo": repo, "issue": issue}

        def read(db: sqlite3.Connection) -> list[LedgerRow]:
            return [rows.ledger_row(row) for row in db.execute(Q["usage_since"], params)]

        return await self._run(read)

    async def usage_pull_request(self, dispatch_id: str, url: str) -> None:
        params = {"dispatch_id": dispatch_id, "url": url}
        await self._run(lambda db: db.execute(Q["usage_pull_request"], params))

    async def reserve(
        self, reservation: fleet.Reservation, limits: fleet.Limits, now: float
    ) -> fleet.Answer:
        """Count and reserve in one transaction; BEGIN IMMEDIATE makes it the only writer
        of the file (across processes too), so two reservations never both see room."""

        def write(db: sqlite3.Connection) -> fleet.Answer:
            found = db.execute(
                Q["find_reservation"], {"dispatch_id": reservation.dispatch_id}
            ).fetchone()
            if found is not None:
                return fleet.Answer(granted=True, forced=bool(found[1]), again=True)
            counts = _counts(db, reservation, now)
            over = fleet.over_limit(limits, counts, now)
            if over is not None and not reservation.force:
                return fleet.Answer(granted=False, over=over)
            params = {
                "dispatch_id": reservation.dispatch_id,
                "org": reservation.org,
                "repo": reservation.repo,
                "sender": reservation.sender,
                "now": now,
                "forced": int(over is not None),
            }
            db.execute(Q["insert_reservation"], params)
            return fleet.Answer(granted=True, over=over, forced=over is not None)

        return await self._run(write)

    async def end_reservation(self, dispatch_id: str, state: str) -> None:
        params = {"dispatch_id": dispatch_id, "state": state}
        await self._run(lambda db: db.execute(Q["end_reservation"], params))

    async def budget_counts(self, org: str, repo: str, sender: str, now: float) -> fleet.Counts:
        reservation = fleet.Reservation(dispatch_id="", org=org, repo=repo, sender=sender)
        return await self._run(lambda db: _counts(db, reservation, now))

    # -- GitHub's content budget ---------------------------------------------

    async def take_budget(
        self, key: str, clock: Callable[[], float], windows: BudgetWindows
    ) -> float | None:
        def take(db: sqlite3.Connection) -> float | None:
            # Inside BEGIN IMMEDIATE: the write lock is ours, so now is the grant's moment.
            now = clock()
            row = db.execute(Q["read_budget"], {"key": key}).fetchone()
            grants, paused = (json.loads(row[0]), float(row[1])) if row else ([], 0.0)
            decision = budget.take(grants, paused, now, windows)
            if not decision.granted:
                return decision.retry_at  # nothing written: a refusal costs no write
            db.execute(Q["write_budget"], {"key": key, "grants": json.dumps(decision.kept)})
            return None

        return await self._run(take)

    async def pause_budget(self, key: str, until: float) -> None:
        params = {"key": key, "until": until}
        await self._run(lambda db: db.execute(Q["pause_budget"], params))


def _counts(db: sqlite3.Connection, reservation: fleet.Reservation, now: float) -> fleet.Counts:
    params = {
        "org": reservation.org,
        "repo": reservation.repo,
        "sender": reservation.sender,
        "day": fleet.day_start(now),
        "running_since": now - fleet.RUNNING_FOR_AT_MOST,
    }
    user, repo, org, running = db.execute(Q["budget_counts"], params).fetchone()
    return fleet.Counts(user_today=user, repo_today=repo, org_today=org, repo_running=running)


def _claimable(db: sqlite3.Connection, now: float) -> int | None:
    """The id of the job to claim: the first by (priority desc, run_at, id) among due
    queued jobs and running ones whose lease ran out, skipping jobs whose lock key a live
    job holds. Queued jobs are looked at one priority at a time, highest first, so each
    look is a short walk of the jobs_claim index rather than a sort of the whole queue."""
    best = db.execute(Q["find_expired"], {"now": now}).fetchone()
    below: float = float("inf")
    while True:
        top = db.execute(Q["top_queued_priority"], {"below": below}).fetchone()[0]
        if top is None or (best is not None and best[0] > top):
            break
        row = db.execute(Q["find_claimable"], {"priority": top, "now": now}).fetchone()
        if row is not None:
            if best is None or (-row[0], row[1], row[2]) < (-best[0], best[1], best[2]):
                best = row
            break
        below = top
    return None if best is None else int(best[2])


def _insert(db: sqlite3.Connection, params: dict[str, Any]) -> bool:
    """The delivery and its job; False, and nothing written, when the delivery id was seen
    before or a dedupe key was seen since `since`. A savepoint undoes this delivery's rows
    alone, so the others of its group commit stand."""
    db.execute("SAVEPOINT delivery")
    try:
        if db.execute(Q["insert_delivery"], params).rowcount == 0:
            return False
        for key in params["dedupe"]:
            claim = {"key": key, "now": params["now"], "since": params["since"]}
            if db.execute(Q["claim_dedupe_key"], claim).rowcount == 0:
                db.execute("ROLLBACK TO delivery")
                return False
        db.execute(Q["insert_job"], params)
        return True
    finally:
        db.execute("RELEASE delivery")


def _in_savepoint(
    db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], Any]
) -> tuple[Any, Exception | None]:
    """`fn(db)` whose writes are undone alone when it raises, so the others of its group
    commit stand."""
    db.execute("SAVEPOINT operation")
    try:
        value = fn(db)
    except Exception as exc:
        db.execute("ROLLBACK TO operation")
        db.execute("RELEASE operation")
        return None, exc
    db.execute("RELEASE operation")
    return value, None
