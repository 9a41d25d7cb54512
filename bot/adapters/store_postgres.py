"""The shared store: PostgreSQL through an asyncpg pool, for several replicas at once.

Same contract and semantics as `SQLiteStore` (tests/contract/test_store_contract.py runs one suite
against both). What SQLite gets from its single writer, this store gets from row locks
(`FOR UPDATE SKIP LOCKED`), advisory locks and leases, so any number of processes can
ingest and claim from one database. SQL lives in `schema/postgres/`; this module only
wires it to asyncpg (rows become values in `rows.py`, shared with SQLite), and keeps
inline only the `CREATE SCHEMA` whose name it must quote.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import asyncpg

from bot import fleet
from bot.adapters import rows
from bot.adapters.sql import migrations, queries
from bot.ledger import LedgerRow
from bot.ports import BudgetWindows, Job, LostLease, SessionRecord, SessionView

Q = queries("postgres")

# What a caller may see when the server is down, restarting or refusing us.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


# asyncpg ships no type information; these are the parts of its API this module uses,
# so that mypy checks our calls and nothing typed `Any` leaks out of the store.
class _Row(Protocol):
    def __getitem__(self, key: int | str, /) -> Any: ...


class _Connection(Protocol):
    async def execute(self, query: str, *args: object) -> str: ...

    async def fetch(self, query: str, *args: object) -> list[_Row]: ...

    async def fetchrow(self, query: str, *args: object) -> _Row | None: ...

    async def fetchval(self, query: str, *args: object) -> Any: ...


class _TransactionalConnection(_Connection, Protocol):
    def transaction(
        self, *, isolation: str | None = None, readonly: bool = False
    ) -> AbstractAsyncContextManager[object]: ...


class _Pool(_Connection, Protocol):
    def acquire(self) -> AbstractAsyncContextManager[_TransactionalConnection]: ...

    async def close(self) -> None: ...

    async def expire_connections(self) -> None: ...


# What enqueue_delivery raises for a replay under a new delivery id (0011_enqueue_delivery).
REPLAY_SQLSTATE = "TD001"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _prepare_budget(conn: _Connection) -> None:
    """Have each new connection prepare the budget statement (a NULL key takes nothing),
    so the clock `take_budget` reads is never followed by a prepare round trip: a grant
    stamped before a slow first prepare would look older than GitHub sees it."""
    with contextlib.suppress(asyncpg.UndefinedFunctionError):  # not migrated yet
        await conn.fetchval(Q["take_budget"], None, 0.0, 1, 0.0, 1, 0.0)


def _rowcount(status: str) -> int:
    """The count at the end of a command tag: `UPDATE 1`, `INSERT 0 1`, `DELETE 0`."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStore:
    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self._pool: _Pool | None = None
        self._opening = asyncio.Lock()

    async def _connect(self) -> _Pool:
        """The pool, opened on first use (constructors cannot await) and reopened after
        a failed attempt, so a store created while the server is down recovers."""
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                settings = {} if self.schema is None else {"search_path": quote_ident(self.schema)}
                pool: _Pool = await asyncpg.create_pool(
                    self.url,
                    init=_prepare_budget,
                    min_size=1,
                    max_size=10,
                    timeout=10,  # seconds to connect: a health check must not hang
                    command_timeout=60,
                    server_settings=settings,
                )
                self._pool = pool
            return self._pool

    @asynccontextmanager
    async def _transaction(
        self, *, isolation: str | None = None, readonly: bool = False
    ) -> AsyncIterator[_Connection]:
        pool = await self._connect()
        async with pool.acquire() as conn, conn.transaction(isolation=isolation, readonly=readonly):
            yield conn

    # Methods made of one statement run it straight on the pool: PostgreSQL runs a lone
    # statement in its own transaction, which saves the BEGIN and COMMIT round trips.

    # -- lifecycle ---------------------------------------------------------

    async def migrate(self) -> None:
        """Apply the missing numbered migrations, all in one transaction.

        The transaction-scoped advisory lock (rather than `pg_advisory_lock`) is released
        by COMMIT or ROLLBACK whatever happens, so a replica that crashes mid-migration can
        never leave the lock held on a pooled connection. DDL is transactional here, so a
        failed migration leaves nothing half-applied. (A future migration that needs
        `CREATE INDEX CONCURRENTLY` would have to run outside this transaction.)
        """
        async with self._transaction() as conn:
            await conn.execute(Q["migration_lock"])
            if self.schema is not None:
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.schema)}")
            await conn.execute(Q["create_schema_version"])
            done = {row[0] for row in await conn.fetch(Q["applied_versions"])}
            applied = False
            for version, sql in migrations("postgres"):
                if version in done:
                    continue
                await conn.execute(sql)  # no arguments: several statements are allowed
                await conn.execute(Q["record_version"], version, time.time())
                applied = True
        if applied:
            # Connections opened before the budget function existed could not prepare it.
            await (await self._connect()).expire_connections()

    async def schema_version(self) -> int:
        pool = await self._connect()
        try:
            return int(await pool.fetchval(Q["schema_version"]))
        except asyncpg.UndefinedTableError:
            return 0

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def ping(self) -> bool:
        """True when the server answers and every migration is applied."""
        try:
            return await self.schema_version() >= migrations("postgres")[-1][0]
        except _UNAVAILABLE:
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
        # One statement, one round trip (schema/postgres/0011): the delivery, its dedupe
        # keys and its job, committed together when it returns.
        keys = list(dict.fromkeys(dedupe))
        pool = await self._connect()
        try:
            queued = await pool.fetchval(
                Q["enqueue_delivery"],
                delivery_id,
                event,
                action,
                payload,
                lock_key,
                now,
                keys,
                since,
            )
        except asyncpg.PostgresError as exc:
            if exc.sqlstate != REPLAY_SQLSTATE:
                raise
            return False  # a replay under a new id: the function rolled its rows back
        return bool(queued)

    async def record_config_words(
        self, installation_id: int, repo: str, label: str, command: str, now: float
    ) -> None:
        pool = await self._connect()
        await pool.execute(Q["record_config_words"], repo, installation_id, label, command, now)

    async def config_words(self, repo: str, since: float) -> tuple[str, str] | None:
        pool = await self._connect()
        row = await pool.fetchrow(Q["config_words"], repo, since)
        return None if row is None else (row[0], row[1])

    async def has_delivery(self, delivery_id: str) -> bool:
        pool = await self._connect()
        return bool(await pool.fetchval(Q["has_delivery"], delivery_id))

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
        pool = await self._connect()
        body = json.dumps(payload).encode()
        await pool.execute(Q["insert_task"], kind, priority, body, lock_key, run_at, now)

    async def _fenced(self, job: Job, query: str, *args: Any) -> None:
        """Run `query` with (job id, *args, lease token); LostLease when the lease is gone."""
        pool = await self._connect()
        if _rowcount(await pool.execute(Q[query], job.id, *args, job.lease)) != 1:
            raise LostLease(f"job {job.id}: the lease was taken over; {query} not written")

    async def reschedule(self, job: Job, run_at: float, now: float) -> None:
        await self._fenced(job, "reschedule_job", run_at, now)

    async def claim(self, worker: str, now: float, lease_seconds: float) -> Job | None:
        """Lease the oldest due job whose lock key no live job holds.

        `SKIP LOCKED` lets concurrent claimers pass over each other's candidate rows, but
        on its own it cannot keep two jobs with the same lock key apart: two claimers can
        each lock a *different* row with key K, and neither sees the other's lease because
        neither has committed yet. So before leasing a keyed candidate we take a
        transaction-scoped advisory lock on the key, without waiting:

        - not granted: another claim transaction is leasing a job with this key right now;
          give up on the key for this claim and look for the next candidate.
        - granted: any earlier claimer of this key has committed (advisory locks are let go
          only after the commit is visible), so a fresh look at the table — the next
          statement gets a new snapshot under READ COMMITTED — sees its lease. If a live
          job holds the key, give up on the key; otherwise lease the candidate.

        The lock lasts until our COMMIT, after which our lease is what keeps others out.
        Nothing here waits on a lock, so claimers cannot deadlock. Each round gives up on
        one more key, so the loop ends.
        """
        async with self._transaction() as conn:
            passed: list[str] = []
            while True:
                candidate = await _claimable(conn, now, passed)
                if candidate is None:
                    return None
                job_id: int = candidate["id"]
                key: str | None = candidate["lock_key"]
                if key is not None:
                    granted = bool(await conn.fetchval(Q["try_lock_key"], key))
                    if not granted or await conn.fetchval(Q["lock_key_held"], key, job_id, now):
                        passed.append(key)
                        continue
                lease = secrets.token_hex(16)
                row = await conn.fetchrow(
                    Q["lease_job"], job_id, worker, now + lease_seconds, now, lease
                )
                assert row is not None  # the row is locked by this transaction
                try:
                    data, notes = json.loads(row["payload"]), json.loads(row["progress"])
                except ValueError as exc:
                    # A row no worker can read must not block the queue: set it aside.
                    error = f"unreadable job: {exc}"
                    await conn.execute(Q["fail_job"], job_id, error, now, "dead", lease)
                    return None
                return Job(
                    id=row["id"],
                    delivery_id=row["delivery_id"],
                    event=row["event"],
                    payload=data,
                    attempts=row["attempts"],
                    progress=notes,
                    kind=row["kind"],
                    created_at=row["created_at"],
                    lease=lease,
                )

    async def extend(self, job: Job, until: float) -> bool:
        pool = await self._connect()
        return _rowcount(await pool.execute(Q["extend_lease"], job.id, job.lease, until)) == 1

    async def save_progress(self, job: Job, progress: dict[str, Any]) -> None:
        await self._fenced(job, "save_progress", json.dumps(progress))

    async def finish(self, job: Job, now: float) -> None:
        await self._fenced(job, "finish_job", now)

    async def retry(self, job: Job, error: str, run_at: float) -> None:
        await self._fenced(job, "retry_job", error[:2000], run_at)

    async def fail(self, job: Job, error: str, now: float, *, dead: bool) -> None:
        await self._fenced(job, "fail_job", error[:2000], now, "dead" if dead else "failed")

    async def release(self, job: Job) -> None:
        await self._fenced(job, "release_job")

    async def next_run_at(self) -> float | None:
        pool = await self._connect()
        value = await pool.fetchval(Q["next_run_at"])
        return None if value is None else float(value)

    async def prune(self, jobs_before: float, deliveries_before: float, batch: int) -> int:
        async with self._transaction() as conn:
            deleted = _rowcount(await conn.execute(Q["prune_jobs"], jobs_before, batch))
            for query in ("prune_deliveries", "prune_dedupe_keys"):
                deleted += _rowcount(await conn.execute(Q[query], deliveries_before, batch))
            return deleted

    # -- sessions, notices, installations -----------------------------------

    async def record_session(self, record: SessionRecord) -> None:
        pool = await self._connect()
        await pool.execute(Q["insert_session"], *rows.session_params(record).values())

    async def sessions_for_issue(self, repo: str, issue: int) -> list[SessionRecord]:
        pool = await self._connect()
        found = await pool.fetch(Q["sessions_for_issue"], repo, issue)
        return [rows.session_record(row) for row in found]

    async def update_session(self, dispatch_id: str, status: str, view: SessionView) -> None:
        pool = await self._connect()
        await pool.execute(Q["update_session"], dispatch_id, status, rows.view_text(view))

    async def remember_notice(self, repo: str, issue: int, kind: str, now: float) -> bool:
        pool = await self._connect()
        return _rowcount(await pool.execute(Q["insert_notice"], repo, issue, kind, now)) == 1

    async def record_installation(
        self, installation_id: int, account: str, action: str, now: float
    ) -> None:
        state = {"deleted": "deleted", "suspend": "suspended"}.get(action, "active")
        pool = await self._connect()
        await pool.execute(Q["upsert_installation"], installation_id, account, state, now)

    async def record_repositories(
        self, installation_id: int, added: tuple[str, ...], removed: tuple[str, ...]
    ) -> None:
        async with self._transaction() as conn:
            for name in added:
                await conn.execute(Q["add_repository"], installation_id, name)
            for name in removed:
                await conn.execute(Q["remove_repository"], installation_id, name)

    async def job_counts(self, kind: str | None = None) -> dict[str, int]:
        pool = await self._connect()
        return {row[0]: row[1] for row in await pool.fetch(Q["job_counts"], kind)}

    async def stats(self) -> dict[str, Any]:
        # One snapshot for the three reads, so the numbers agree with each other.
        async with self._transaction(isolation="repeatable_read", readonly=True) as conn:
            return {
                "installations": int(await conn.fetchval(Q["count_installations"])),
                "repositories": int(await conn.fetchval(Q["count_repositories"])),
                "recent_deliveries": rows.recent_deliveries(
                    await conn.fetch(Q["recent_deliveries"])
                ),
            }

    # -- usage ledger and budgets ------------------------------------------

    async def record_usage(self, usage: LedgerRow) -> None:
        pool = await self._connect()
        await pool.execute(Q["insert_usage"], *rows.usage_params(usage).values())

    async def usage(
        self, since: float, *, repo: str | None = None, issue: int | None = None
    ) -> list[LedgerRow]:
        pool = await self._connect()
        found = await pool.fetch(Q["usage_since"], since, repo, issue)
        return [rows.ledger_row(row) for row in found]

    async def usage_pull_request(self, dispatch_id: str, url: str) -> None:
        pool = await self._connect()
        await pool.execute(Q["usage_pull_request"], dispatch_id, url)

    async def reserve(
        self, reservation: fleet.Reservation, limits: fleet.Limits, now: float
    ) -> fleet.Answer:
        """Count and reserve in one transaction, serialised per organisation.

        Under READ COMMITTED two replicas could each count 4 of a limit of 5 and both
        insert. Every limit is scoped to one organisation (per user counts the sender in
        that organisation), so a transaction-level advisory lock on the organisation,
        taken first, makes the count-then-insert of one org run one at a time: the lock is
        granted only after the previous holder committed, and the count that follows is a
        new statement with a new snapshot, so it sees that holder's reservation. The lock
        ends with COMMIT or ROLLBACK, whatever happens (a crash cannot leave it held).
        SERIALIZABLE would also be correct but fails the losers with serialization errors
        that then need a retry loop; the lock makes them wait a few milliseconds instead.
        """
        async with self._transaction() as conn:
            await conn.execute(Q["budget_lock"], reservation.org)
            found = await conn.fetchrow(Q["find_reservation"], reservation.dispatch_id)
            if found is not None:
                return fleet.Answer(granted=True, forced=bool(found["forced"]), again=True)
            counts = await _counts(conn, reservation, now)
            over = fleet.over_limit(limits, counts, now)
            if over is not None and not reservation.force:
                return fleet.Answer(granted=False, over=over)
            await conn.execute(
                Q["insert_reservation"],
                reservation.dispatch_id,
                reservation.org,
                reservation.repo,
                reservation.sender,
                now,
                over is not None,
            )
            return fleet.Answer(granted=True, over=over, forced=over is not None)

    async def end_reservation(self, dispatch_id: str, state: str) -> None:
        pool = await self._connect()
        await pool.execute(Q["end_reservation"], dispatch_id, state)

    async def budget_counts(self, org: str, repo: str, sender: str, now: float) -> fleet.Counts:
        pool = await self._connect()
        reservation = fleet.Reservation(dispatch_id="", org=org, repo=repo, sender=sender)
        return await _counts(pool, reservation, now)

    # -- GitHub's content budget ---------------------------------------------

    async def take_budget(
        self, key: str, clock: Callable[[], float], windows: BudgetWindows
    ) -> float | None:
        pool = await self._connect()
        async with pool.acquire() as conn:
            # The clock is read just before the statement goes out (asyncpg prepares it
            # once per connection, then only binds it); the function adds its lock wait.
            retry_at = await conn.fetchval(
                Q["take_budget"],
                key,
                clock(),
                windows.minute_limit,
                windows.minute_seconds,
                windows.hour_limit,
                windows.hour_seconds,
            )
        return None if retry_at is None else float(retry_at)

    async def pause_budget(self, key: str, until: float) -> None:
        pool = await self._connect()
        await pool.execute(Q["pause_budget"], key, until)


async def _claimable(conn: _Connection, now: float, passed: list[str]) -> _Row | None:
    """The job to claim (locked, skipping rows others locked): the first by (priority
    desc, run_at, id) among due queued jobs and running ones whose lease ran out, leaving
    out keys in `passed` and keys a live job holds. Queued jobs are looked at one priority
    at a time, highest first, so each look is a short walk of the jobs_claim index rather
    than a sort of the whole queue (which also woke the planner's JIT: 350 ms a claim)."""
    best = await conn.fetchrow(Q["find_expired"], now, passed)
    below = 2**31 - 1  # priority is an INTEGER
    while True:
        top = await conn.fetchval(Q["top_queued_priority"], below)
        if top is None or (best is not None and best["priority"] > top):
            return best
        row = await conn.fetchrow(Q["find_claimable"], now, passed, top)
        if row is not None:
            if best is None or (-row[0], row[1], row[2]) < (-best[0], best[1], best[2]):
                return row
            return best
        below = top


async def _counts(conn: _Connection, reservation: fleet.Reservation, now: float) -> fleet.Counts:
    row = await conn.fetchrow(
        Q["budget_counts"],
        reservation.org,
        reservation.repo,
        reservation.sender,
        fleet.day_start(now),
        now - fleet.RUNNING_FOR_AT_MOST,
    )
    assert row is not None  # four scalar subqueries: always one row
    return fleet.Counts(
        user_today=int(row[0]),
        repo_today=int(row[1]),
        org_today=int(row[2]),
        repo_running=int(row[3]),
    )
