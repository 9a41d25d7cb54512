"""One contract for every `Store`: the same tests run against SQLite and PostgreSQL, so the
two backends cannot drift apart.

PostgreSQL comes from `TEST_DATABASE_URL` (default below); each test gets a fresh schema,
dropped at the end. When the server cannot be reached those tests are skipped with the
reason, never passed silently.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from bot.adapters.sql import migrations
from bot.adapters.store import open_store
from bot.adapters.store_postgres import PostgresStore
from bot.adapters.store_sqlite import SQLiteStore
from bot.ports import BudgetWindows, LostLease, SessionRecord, SessionView
from tests.support.stores import AnyStore, Backend

pytestmark = pytest.mark.anyio

NOW = 1_000.0
LEASE = 30.0


@pytest.fixture
async def store(backend: Backend) -> AnyStore:
    store = backend.open()
    await store.migrate()
    return store


def body(n: int) -> bytes:
    return json.dumps({"action": "labeled", "issue": {"number": n}}).encode()


async def enqueue(
    store: AnyStore, delivery_id: str, *, key: str | None = None, now: float = NOW
) -> bool:
    return await store.enqueue(delivery_id, "issues", "labeled", body(1), key, now)


# -- deliveries --------------------------------------------------------------


async def test_enqueue_of_a_seen_delivery_returns_false_and_writes_nothing(
    store: AnyStore,
) -> None:
    assert await store.enqueue("d1", "issues", "labeled", body(1), "o/r#1", NOW) is True
    assert await store.enqueue("d1", "issue_comment", "created", body(2), None, NOW + 1) is False

    assert await store.job_counts() == {"queued": 1}
    deliveries = (await store.stats())["recent_deliveries"]
    assert deliveries == [
        {
            "delivery_id": "d1",
            "event": "issues",
            "action": "labeled",
            "received_at": NOW,
            "state": "queued",
        }
    ]
    job = await store.claim("w", NOW, LEASE)
    assert job is not None
    assert (job.delivery_id, job.event, job.payload) == ("d1", "issues", json.loads(body(1)))


async def test_a_dedupe_key_seen_within_the_window_refuses_a_new_delivery_id(
    store: AnyStore,
) -> None:
    keys = ("body:abc", "comment:7")
    assert await store.enqueue("d1", "issues", "labeled", body(1), None, NOW, dedupe=keys)
    replay = await store.enqueue(
        "d2", "issues", "labeled", body(1), None, NOW + 5, dedupe=("body:abc",), since=NOW - 60
    )
    assert replay is False
    assert await store.job_counts() == {"queued": 1}
    assert not await store.has_delivery("d2")  # nothing of a replay is written


async def test_a_dedupe_key_older_than_the_window_is_taken_over(store: AnyStore) -> None:
    assert await store.enqueue("d1", "issues", "labeled", body(1), None, NOW, dedupe=("k",))
    later = NOW + 1000
    assert await store.enqueue(
        "d2", "issues", "labeled", body(1), None, later, dedupe=("k",), since=later - 60
    )
    # ... and is then fresh again.
    assert not await store.enqueue(
        "d3", "issues", "labeled", body(1), None, later + 1, dedupe=("k",), since=later - 60
    )


async def test_one_repeated_key_among_several_refuses_the_delivery(store: AnyStore) -> None:
    assert await store.enqueue("d1", "issues", "labeled", body(1), None, NOW, dedupe=("a", "b"))
    assert not await store.enqueue(
        "d2", "issues", "labeled", body(2), None, NOW, dedupe=("c", "b"), since=NOW - 60
    )
    # "c" was not kept either: the refused delivery wrote nothing.
    assert await store.enqueue("d3", "issues", "labeled", body(3), None, NOW, dedupe=("c",))


async def test_replays_sent_together_queue_one_job(store: AnyStore) -> None:
    results = await asyncio.gather(
        *(
            store.enqueue(f"d{n}", "issues", "labeled", body(1), None, NOW, dedupe=("same",))
            for n in range(8)
        )
    )
    assert sorted(results) == [False] * 7 + [True]
    assert await store.job_counts() == {"queued": 1}


async def test_config_words_are_read_back_while_recent(store: AnyStore) -> None:
    assert await store.config_words("o/r", NOW - 60) is None
    await store.record_config_words(7, "o/r", "tembo", "/tembo", NOW)
    assert await store.config_words("o/r", NOW - 60) == ("tembo", "/tembo")
    await store.record_config_words(7, "o/r", "agent", "/agent", NOW + 1)
    assert await store.config_words("o/r", NOW - 60) == ("agent", "/agent")
    assert await store.config_words("o/r", NOW + 2) is None  # older than asked for


async def test_has_delivery_knows_only_stored_deliveries(store: AnyStore) -> None:
    assert await store.has_delivery("d1") is False
    await enqueue(store, "d1")
    assert await store.has_delivery("d1") is True
    assert await store.has_delivery("d2") is False


async def test_an_unreadable_job_is_set_aside_and_does_not_block_the_queue(
    store: AnyStore,
) -> None:
    await store.enqueue("bad", "issues", "labeled", b"{not json", None, NOW)
    await enqueue(store, "good", now=NOW + 1)
    assert await store.claim("w", NOW + 2, LEASE) is None  # the bad one, set aside
    job = await store.claim("w", NOW + 2, LEASE)
    assert job is not None and job.delivery_id == "good"
    assert await store.job_counts() == {"dead": 1, "running": 1}


async def test_payload_comes_back_as_the_parsed_body(store: AnyStore) -> None:
    raw = '{"issue": {"title": "caf\\u00e9 \\ud83d\\udc40", "number": 7}, "x": [1, 2.5, null]}'
    await store.enqueue("d1", "issues", None, raw.encode(), None, NOW)

    job = await store.claim("w", NOW, LEASE)

    assert job is not None
    assert job.payload == json.loads(raw)
    assert job.progress == {}


# -- claiming and leases ---------------------------------------------------------


async def test_claim_takes_the_oldest_due_job_first_and_leases_it(store: AnyStore) -> None:
    await enqueue(store, "late", now=NOW + 5)
    await enqueue(store, "early", now=NOW)
    await enqueue(store, "early-too", now=NOW)

    assert await store.claim("w", NOW - 1, LEASE) is None  # nothing due yet
    claimed = [await store.claim("w", NOW + 10, LEASE) for _ in range(4)]

    assert [job.delivery_id if job else None for job in claimed] == [
        "early",
        "early-too",
        "late",
        None,  # all three are leased
    ]
    assert [job.attempts for job in claimed if job] == [1, 1, 1]
    assert await store.job_counts() == {"running": 3}


async def test_a_job_with_a_live_lock_key_holds_back_the_next_one(store: AnyStore) -> None:
    await enqueue(store, "first", key="o/r#1", now=NOW)
    await enqueue(store, "second", key="o/r#1", now=NOW + 1)
    await enqueue(store, "other", key="o/r#2", now=NOW + 2)

    first = await store.claim("w", NOW + 5, LEASE)
    other = await store.claim("w", NOW + 5, LEASE)
    assert first is not None and first.delivery_id == "first"
    assert other is not None and other.delivery_id == "other"
    assert await store.claim("w", NOW + 5, LEASE) is None

    await store.finish(first, NOW + 6)
    second = await store.claim("w", NOW + 6, LEASE)
    assert second is not None and second.delivery_id == "second"


async def test_an_expired_lease_is_reclaimed_and_the_old_worker_loses_it(
    store: AnyStore,
) -> None:
    await enqueue(store, "d1")
    job = await store.claim("dead-worker", NOW, LEASE)
    assert job is not None

    assert await store.claim("other", NOW + LEASE - 1, LEASE) is None
    again = await store.claim("other", NOW + LEASE, LEASE)

    assert again is not None
    assert again.id == job.id
    assert again.attempts == 2
    assert await store.extend(job, NOW + 100) is False
    assert await store.extend(again, NOW + 100) is True
    assert await store.claim("third", NOW + LEASE + 1, LEASE) is None  # extended


async def test_an_expired_lease_is_reclaimed_before_its_lock_key_moves_on(
    store: AnyStore,
) -> None:
    await enqueue(store, "first", key="o/r#1", now=NOW)
    await enqueue(store, "second", key="o/r#1", now=NOW + 1)
    first = await store.claim("dead-worker", NOW + 1, LEASE)
    assert first is not None and first.delivery_id == "first"

    reclaimed = await store.claim("other", NOW + 1 + LEASE, LEASE)

    assert reclaimed is not None and reclaimed.delivery_id == "first"
    assert await store.claim("other", NOW + 1 + LEASE, LEASE) is None


async def test_claim_takes_deliveries_before_older_tasks_and_a_task_when_they_are_held(
    store: AnyStore,
) -> None:
    # Tasks (priority 0) wait behind deliveries (priority 10) however old they are; when
    # every due delivery is held back by a live job on its issue, the task is next.
    await store.schedule("follow", {"n": 1}, "o/r#9", NOW - 50, NOW - 50)
    await store.schedule("follow", {"n": 2}, None, NOW + 100, NOW)  # not due
    await enqueue(store, "running", key="o/r#1", now=NOW - 10)
    await enqueue(store, "held", key="o/r#1", now=NOW - 5)
    await enqueue(store, "free", key="o/r#2", now=NOW)

    order = [await store.claim("w", NOW + 1, LEASE) for _ in range(4)]

    assert [(job.kind, job.delivery_id) if job else None for job in order] == [
        ("delivery", "running"),
        ("delivery", "free"),
        ("follow", None),
        None,  # "held" waits for "running"; the second task is not due
    ]
    assert await store.next_run_at() == NOW - 5  # "held" is due, only held back


async def test_an_expired_delivery_is_reclaimed_before_a_due_task(store: AnyStore) -> None:
    await enqueue(store, "d1", key="o/r#1", now=NOW)
    dead = await store.claim("dead-worker", NOW, LEASE)
    assert dead is not None
    await store.schedule("follow", {"n": 1}, None, NOW - 100, NOW - 100)

    again = await store.claim("other", NOW + LEASE, LEASE)

    assert again is not None and again.id == dead.id


async def test_writes_sent_together_each_stand_or_fail_alone(backend: Backend) -> None:
    # SQLite commits calls that arrive together in one transaction: a fenced write that
    # lost its lease and a write that breaks a constraint fail alone, and every other
    # write is on disk (a second store on the same database reads it) when its call returns.
    store = backend.open()
    await store.migrate()
    await enqueue(store, "held", key="o/r#1")
    job = await store.claim("w", NOW, LEASE)
    assert job is not None
    stale = dataclasses.replace(job, lease="taken-over")

    outcomes = await asyncio.gather(
        *(enqueue(store, f"d{i}", key=f"o/r#{i + 2}") for i in range(8)),
        store.save_progress(job, {"reacted": True}),
        store.save_progress(stale, {"reacted": False}),
        store.schedule(None, {}, None, NOW, NOW),  # type: ignore[arg-type]  # kind is NOT NULL
        return_exceptions=True,
    )

    assert outcomes[:9] == [True] * 8 + [None]
    assert isinstance(outcomes[9], LostLease)
    assert isinstance(outcomes[10], Exception) and not isinstance(outcomes[10], LostLease)
    other = backend.open()
    assert await other.job_counts() == {"queued": 8, "running": 1}
    resumed = await other.claim("w2", NOW + LEASE, LEASE)  # the lease ran out
    assert resumed is not None and resumed.id == job.id
    assert resumed.progress == {"reacted": True}


async def test_retry_requeues_the_job_for_its_run_at(store: AnyStore) -> None:
    await enqueue(store, "d1")
    job = await store.claim("w", NOW, LEASE)
    assert job is not None

    await store.retry(job, "502 from GitHub", NOW + 60)

    assert await store.job_counts() == {"queued": 1}
    assert await store.next_run_at() == NOW + 60
    assert await store.claim("w", NOW + 59, LEASE) is None
    again = await store.claim("w", NOW + 60, LEASE)
    assert again is not None
    assert (again.id, again.attempts) == (job.id, 2)


async def test_fail_buries_the_job_as_dead_or_failed(store: AnyStore) -> None:
    await enqueue(store, "d1")
    await enqueue(store, "d2")
    one = await store.claim("w", NOW, LEASE)
    two = await store.claim("w", NOW, LEASE)
    assert one is not None and two is not None

    await store.fail(one, "attempts used up", NOW + 1, dead=True)
    await store.fail(two, "x" * 5000, NOW + 1, dead=False)

    assert await store.job_counts() == {"dead": 1, "failed": 1}
    assert await store.claim("w", NOW + 10_000, LEASE) is None
    assert await store.next_run_at() is None


async def test_release_gives_the_job_back_without_counting_an_attempt(store: AnyStore) -> None:
    await enqueue(store, "d1")
    job = await store.claim("w", NOW, LEASE)
    assert job is not None and job.attempts == 1

    await store.release(job)

    assert await store.job_counts() == {"queued": 1}
    again = await store.claim("w2", NOW, LEASE)
    assert again is not None
    assert (again.id, again.attempts) == (job.id, 1)
    await store.finish(again, NOW + 1)
    with pytest.raises(LostLease):
        await store.release(again)  # only a running job is released
    assert await store.job_counts() == {"done": 1}


async def test_next_run_at_is_the_earliest_due_time_or_lease_end(store: AnyStore) -> None:
    assert await store.next_run_at() is None

    await enqueue(store, "d1", now=NOW + 100)
    assert await store.next_run_at() == NOW + 100

    job = await store.claim("w", NOW + 100, LEASE)
    assert job is not None
    assert await store.next_run_at() == NOW + 100 + LEASE  # when its lease runs out

    await enqueue(store, "d2", now=NOW + 110)
    assert await store.next_run_at() == NOW + 110

    await store.finish(job, NOW + 111)
    other = await store.claim("w", NOW + 111, LEASE)
    assert other is not None
    await store.finish(other, NOW + 112)
    assert await store.next_run_at() is None


async def test_saved_progress_comes_back_with_the_job(store: AnyStore) -> None:
    await enqueue(store, "d1")
    job = await store.claim("w", NOW, LEASE)
    assert job is not None
    progress = {
        "reacted": True,
        "status_comment_id": 2_147_483_648,
        "session": {"id": "s-1", "url": "https://app.tembo.io/s/1", "status": "running"},
        "note": "caf\u00e9 \U0001f440 with a NUL \x00 inside",
    }

    await store.save_progress(job, progress)
    await store.release(job)
    again = await store.claim("w", NOW, LEASE)

    assert again is not None
    assert again.progress == progress


# -- sessions, notices, installations ---------------------------------------------


def session(dispatch_id: str, created_at: float, issue: int = 7) -> SessionRecord:
    return SessionRecord(
        dispatch_id=dispatch_id,
        repo="octo/hello",
        issue=issue,
        platform="tembo",
        session_id=f"s-{dispatch_id}",
        url=f"https://app.tembo.io/sessions/{dispatch_id}",
        created_at=created_at,
        status="queued",
        comment_id=9000 + issue,
        installation_id=42,
        view=SessionView(agent="a"),
    )


async def test_sessions_for_issue_are_listed_oldest_first(store: AnyStore) -> None:
    await store.record_session(session("c", NOW + 2))
    await store.record_session(session("b", NOW + 1))
    await store.record_session(session("a", NOW + 2))
    await store.record_session(session("other-issue", NOW, issue=8))
    await store.record_session(session("b", NOW + 50))  # same dispatch: kept as first seen

    found = await store.sessions_for_issue("octo/hello", 7)

    assert found == [session("b", NOW + 1), session("a", NOW + 2), session("c", NOW + 2)]
    assert await store.sessions_for_issue("octo/other", 7) == []


async def test_a_sessions_status_and_view_can_be_updated(store: AnyStore) -> None:
    await store.record_session(session("a", NOW))
    view = SessionView(phase="finished", pull_requests=("u",), notes=("n",))
    await store.update_session("a", "finished", view)
    [found] = await store.sessions_for_issue("octo/hello", 7)
    assert (found.status, found.comment_id, found.installation_id) == ("finished", 9007, 42)
    assert found.view == view


# -- jobs that are not deliveries ----------------------------------------------------


async def test_a_scheduled_task_waits_for_its_time_and_comes_back_with_its_kind(
    store: AnyStore,
) -> None:
    await store.schedule("follow", {"dispatch_id": "d"}, "octo/hello#7", NOW + 30, NOW)
    assert await store.claim("w", NOW, LEASE) is None
    assert await store.next_run_at() == NOW + 30
    job = await store.claim("w", NOW + 30, LEASE)
    assert job is not None
    assert (job.kind, job.delivery_id, job.payload) == ("follow", None, {"dispatch_id": "d"})


async def test_deliveries_go_before_due_tasks(store: AnyStore) -> None:
    await store.schedule("follow", {"n": 1}, None, NOW - 100, NOW - 100)
    await enqueue(store, "d1", now=NOW)
    first = await store.claim("w", NOW, LEASE)
    second = await store.claim("w", NOW, LEASE)
    assert first is not None and second is not None
    assert (first.kind, second.kind) == ("delivery", "follow")


async def test_a_rescheduled_task_is_queued_again_with_attempts_reset(store: AnyStore) -> None:
    await store.schedule("follow", {"n": 1}, None, NOW, NOW)
    job = await store.claim("w", NOW, LEASE)
    assert job is not None and job.attempts == 1
    await store.save_progress(job, {"polls": 1})
    await store.reschedule(job, NOW + 60, NOW)
    assert await store.claim("w", NOW + 59, LEASE) is None
    again = await store.claim("w", NOW + 60, LEASE)
    assert again is not None
    assert (again.id, again.attempts, again.progress) == (job.id, 1, {"polls": 1})


async def test_a_notice_is_remembered_once_per_issue_and_kind(store: AnyStore) -> None:
    assert await store.remember_notice("octo/hello", 7, "config-error", NOW) is True
    assert await store.remember_notice("octo/hello", 7, "config-error", NOW + 1) is False
    assert await store.remember_notice("octo/hello", 7, "permission", NOW) is True
    assert await store.remember_notice("octo/hello", 8, "config-error", NOW) is True


async def test_installations_repositories_and_jobs_feed_the_stats(store: AnyStore) -> None:
    await store.record_installation(1, "octo", "created", NOW)
    await store.record_installation(2, "acme", "created", NOW)
    await store.record_installation(3, "gone", "created", NOW)
    await store.record_installation(3, "gone", "deleted", NOW + 1)
    await store.record_installation(2, "acme", "suspend", NOW + 1)
    await store.record_installation(2, "acme", "unsuspend", NOW + 2)
    await store.record_repositories(1, ("octo/a", "octo/b", "octo/c"), ())
    await store.record_repositories(1, ("octo/a",), ("octo/b", "octo/missing"))
    await store.record_repositories(2, ("acme/a",), ())
    await store.enqueue("d1", "issues", "labeled", body(1), None, NOW)
    await store.enqueue("d2", "installation", None, body(2), None, NOW + 1)
    await store.enqueue("d3", "issue_comment", "created", body(3), None, NOW + 2)
    job = await store.claim("w", NOW + 5, LEASE)
    assert job is not None
    await store.finish(job, NOW + 6)
    await store.claim("w", NOW + 5, LEASE)

    stats = await store.stats()

    assert stats["installations"] == 2
    assert stats["repositories"] == 3
    assert stats["recent_deliveries"] == [
        {
            "delivery_id": "d3",
            "event": "issue_comment",
            "action": "created",
            "received_at": NOW + 2,
            "state": "queued",
        },
        {
            "delivery_id": "d2",
            "event": "installation",
            "action": None,
            "received_at": NOW + 1,
            "state": "running",
        },
        {
            "delivery_id": "d1",
            "event": "issues",
            "action": "labeled",
            "received_at": NOW,
            "state": "done",
        },
    ]
    assert await store.job_counts() == {"queued": 1, "running": 1, "done": 1}


async def test_recent_deliveries_keeps_the_last_ten(store: AnyStore) -> None:
    for n in range(12):
        await store.enqueue(f"d{n}", "issues", None, body(n), None, NOW + n)

    recent = (await store.stats())["recent_deliveries"]

    assert [d["delivery_id"] for d in recent] == [f"d{n}" for n in range(11, 1, -1)]


# -- migrations ---------------------------------------------------------------


async def test_an_unmigrated_store_does_not_answer_ping(backend: Backend) -> None:
    store = backend.open()

    assert await store.schema_version() == 0
    assert await store.ping() is False
    await store.migrate()
    assert await store.ping() is True


async def test_migrating_twice_is_a_no_op(backend: Backend, store: AnyStore) -> None:
    await enqueue(store, "d1")
    latest = migrations(backend.name)[-1][0]

    await store.migrate()
    await backend.open().migrate()

    assert await store.schema_version() == latest
    assert await store.ping() is True
    assert await store.job_counts() == {"queued": 1}


async def test_replicas_starting_together_migrate_once(backend: Backend) -> None:
    replicas = [backend.open() for _ in range(4)]

    async with anyio.create_task_group() as tg:
        for replica in replicas:
            tg.start_soon(replica.migrate)

    latest = migrations(backend.name)[-1][0]
    assert [await replica.schema_version() for replica in replicas] == [latest] * 4
    assert await replicas[0].ping() is True


async def test_ping_is_false_when_postgres_cannot_be_reached() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test")  # nothing listens on 1

    assert await store.ping() is False
    await store.close()


# -- several claimers ----------------------------------------------------------

JOBS = 200
CLAIMERS = 8


async def claim_all(
    backend: Backend, keys: Callable[[int], str | None]
) -> tuple[list[int], list[str]]:
    """Enqueue JOBS jobs, then drain them with CLAIMERS stores claiming at once (for
    PostgreSQL, separate pools, as separate replicas would). Returns the claimed job ids,
    and any lock key seen held by two claimers at the same time."""
    first = backend.open()
    await first.migrate()
    for n in range(JOBS):
        await first.enqueue(f"d{n}", "issues", "labeled", body(n), keys(n), NOW)

    claimed: list[int] = []
    held: set[str] = set()
    overlaps: list[str] = []

    async def claimer(name: str) -> None:
        store = backend.open()
        while len(claimed) < JOBS:
            job = await store.claim(name, NOW, 300.0)
            if job is None:
                await anyio.sleep(0)  # the rest are leased or being leased: let others run
                continue
            claimed.append(job.id)
            # Hold the job (and its key) across a round trip, as a worker's heartbeat
            # would; let go of the key before finishing, so a claimer that gets the next
            # job of the key right after the finish commits is not counted as an overlap.
            key = keys(int(job.delivery_id.removeprefix("d"))) or job.delivery_id
            if key in held:
                overlaps.append(key)
            held.add(key)
            assert await store.extend(job, NOW + 300.0) is True
            held.discard(key)
            await store.finish(job, NOW + 1)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for n in range(CLAIMERS):
                tg.start_soon(claimer, f"worker-{n}")

    assert await first.job_counts() == {"done": JOBS}
    return claimed, overlaps


async def test_concurrent_claimers_take_every_job_exactly_once(backend: Backend) -> None:
    claimed, _ = await claim_all(backend, lambda n: None)

    assert len(claimed) == JOBS
    assert len(set(claimed)) == JOBS


async def test_concurrent_claimers_never_run_two_jobs_of_one_lock_key(backend: Backend) -> None:
    # Fewer keys than claimers, so claimers keep meeting jobs whose key is being leased.
    claimed, overlaps = await claim_all(backend, lambda n: f"octo/hello#{n % 3}")

    assert sorted(claimed) == sorted(set(claimed))
    assert len(claimed) == JOBS
    assert overlaps == []


# -- choosing the backend -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite:///{tmp}/x.db", SQLiteStore),
        ("postgresql://app@db:5432/tembo", PostgresStore),
        ("postgres://app@db/tembo", PostgresStore),
    ],
)
async def test_database_url_chooses_the_store(url: str, kind: type, tmp_path: Path) -> None:
    store = open_store(url.format(tmp=tmp_path))  # opening connects to nothing yet

    assert isinstance(store, kind)
    await store.close()


def test_an_unknown_database_url_is_refused() -> None:
    with pytest.raises(ValueError, match="DATABASE_URL"):
        open_store("mysql://db/tembo")


async def test_a_worker_whose_lease_was_taken_over_can_write_nothing(store: AnyStore) -> None:
    await enqueue(store, "d1")
    paused = await store.claim("paused", NOW, LEASE)
    assert paused is not None
    holder = await store.claim("holder", NOW + LEASE, LEASE)  # the lease ran out
    assert holder is not None and holder.id == paused.id

    assert await store.extend(paused, NOW + LEASE + 60) is False
    for write in (
        store.save_progress(paused, {"reacted": True}),
        store.finish(paused, NOW + LEASE + 1),
        store.retry(paused, "late", NOW + LEASE + 1),
        store.fail(paused, "late", NOW + LEASE + 1, dead=True),
        store.reschedule(paused, NOW + LEASE + 60, NOW + LEASE + 1),
        store.release(paused),
    ):
        with pytest.raises(LostLease):
            await write

    await store.save_progress(holder, {"reacted": True})
    await store.finish(holder, NOW + LEASE + 2)
    assert await store.job_counts() == {"done": 1}


async def test_the_same_worker_claiming_again_gets_a_new_lease(store: AnyStore) -> None:
    # A worker name is not a lease: the token of the first claim is dead after a re-claim.
    await enqueue(store, "d1")
    first = await store.claim("w", NOW, LEASE)
    second = await store.claim("w", NOW + LEASE, LEASE)
    assert first is not None and second is not None and first.lease != second.lease
    with pytest.raises(LostLease):
        await store.finish(first, NOW + LEASE + 1)
    await store.finish(second, NOW + LEASE + 1)


# -- GitHub's content budget ---------------------------------------------------


def at(now: float) -> Callable[[], float]:
    return lambda: now


def approx(when: float) -> object:
    # PostgreSQL adds the time the grant spent in the server (microseconds here).
    return pytest.approx(when, abs=0.1)


BUDGET = BudgetWindows(minute_limit=3, minute_seconds=60.0, hour_limit=5, hour_seconds=3600.0)


async def test_budget_grants_until_a_window_is_full_then_says_when(store: AnyStore) -> None:
    for n in range(3):
        assert await store.take_budget("app:1", at(NOW + n), BUDGET) is None
    assert await store.take_budget("app:1", at(NOW + 10), BUDGET) == approx(NOW + 60)
    # A refusal took nothing: the slot frees when the first grant leaves the minute.
    assert await store.take_budget("app:1", at(NOW + 60.5), BUDGET) is None
    assert await store.take_budget("app:1", at(NOW + 61.5), BUDGET) is None
    # Five in the hour now, although the minute has room.
    assert await store.take_budget("app:1", at(NOW + 200), BUDGET) == approx(NOW + 3600)


async def test_budget_keys_are_apart(store: AnyStore) -> None:
    for n in range(3):
        assert await store.take_budget("installation:1", at(NOW + n), BUDGET) is None
    assert await store.take_budget("installation:1", at(NOW + 5), BUDGET) is not None
    assert await store.take_budget("installation:2", at(NOW + 5), BUDGET) is None


async def test_a_budget_pause_refuses_every_slot_until_it_ends(store: AnyStore) -> None:
    await store.pause_budget("app:1", NOW + 30)
    await store.pause_budget("app:1", NOW + 10)  # an earlier end never shortens a pause
    assert await store.take_budget("app:1", at(NOW), BUDGET) == approx(NOW + 30)
    assert await store.take_budget("app:1", at(NOW + 30), BUDGET) is None


async def test_replicas_taking_budget_at_once_never_overfill_a_window(backend: Backend) -> None:
    """Eight stores (separate pools on PostgreSQL, as replicas) race for one key's slots
    at the same instant: exactly the window's limit is granted."""
    first = backend.open()
    await first.migrate()
    windows = BudgetWindows(minute_limit=40, minute_seconds=60, hour_limit=500, hour_seconds=3600)
    granted: list[bool] = []

    async def replica() -> None:
        store = backend.open()
        for _ in range(10):
            granted.append(await store.take_budget("app:1", at(NOW), windows) is None)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(replica)
    assert granted.count(True) == 40
    assert len(granted) == 80


# -- pruning -------------------------------------------------------------------

DAY = 24 * 3600.0


async def finish_one(store: AnyStore, now: float, *, dead: bool | None = None) -> None:
    """Claim the next due job and end it at `now`: done, or failed/dead when `dead` is given."""
    job = await store.claim("w", now, LEASE)
    assert job is not None
    if dead is None:
        await store.finish(job, now)
    else:
        await store.fail(job, "gave up", now, dead=dead)


async def test_prune_deletes_finished_jobs_their_deliveries_and_old_replay_keys(
    store: AnyStore,
) -> None:
    for n, dead in enumerate((None, False, True)):
        await store.enqueue(f"d{n}", "issues", "labeled", body(n), None, NOW, dedupe=(f"k{n}",))
        await finish_one(store, NOW, dead=dead)
    await store.schedule("follow", {"n": 1}, None, NOW, NOW)
    await finish_one(store, NOW)
    later = NOW + 8 * DAY

    # 3 deliveries' jobs and the follow job, 3 deliveries, 3 keys.
    assert await store.prune(later - 7 * DAY, later - 7 * DAY, 100) == 10
    assert await store.job_counts() == {}
    assert (await store.stats())["recent_deliveries"] == []
    # Gone for good: the same delivery id and key may come again.
    assert await store.enqueue("d0", "issues", "labeled", body(0), None, later, dedupe=("k0",))
    assert await store.prune(later - 7 * DAY, later - 7 * DAY, 100) == 0


async def test_prune_never_touches_a_job_not_finished_nor_its_delivery(store: AnyStore) -> None:
    await store.enqueue("queued", "issues", "labeled", body(1), None, NOW, dedupe=("kq",))
    await store.enqueue("running", "issues", "labeled", body(2), None, NOW, dedupe=("kr",))
    await store.enqueue("retrying", "issues", "labeled", body(3), None, NOW)
    await store.schedule("follow", {"n": 1}, None, NOW + 5 * DAY, NOW)
    running = await store.claim("w", NOW, LEASE)
    retrying = await store.claim("w", NOW, LEASE)
    assert running is not None and retrying is not None
    await store.retry(retrying, "try later", NOW + 9 * DAY)
    later = NOW + 30 * DAY

    # Only the two replay keys are old enough to go: no job is finished.
    assert await store.prune(later, later, 100) == 2
    assert await store.job_counts() == {"queued": 3, "running": 1}
    for delivery_id in ("queued", "running", "retrying"):
        assert await store.has_delivery(delivery_id)
    assert not await store.enqueue("running", "issues", "labeled", body(2), None, later)


async def test_prune_keeps_what_is_newer_than_its_cutoffs(store: AnyStore) -> None:
    """A finished job newer than the job cutoff stays; a delivery whose job went but that
    is newer than the dedupe cutoff stays, so a redelivery of its id is still refused, and
    so do replay keys seen since."""
    await store.enqueue("old", "issues", "labeled", body(1), None, NOW, dedupe=("k-old",))
    await finish_one(store, NOW)
    await store.enqueue("new", "issues", "labeled", body(2), None, NOW + DAY, dedupe=("k-new",))
    await finish_one(store, NOW + DAY)

    # Jobs kept half a day; deliveries and keys seen in the last 7 days kept.
    now = NOW + 2 * DAY
    assert await store.prune(now - DAY / 2, now - 7 * DAY, 100) == 2  # both jobs
    assert await store.job_counts() == {}
    assert not await store.enqueue("old", "issues", "labeled", body(1), None, now)
    replay = await store.enqueue(
        "other", "issues", "labeled", body(1), None, now, dedupe=("k-old",), since=now - 7 * DAY
    )
    assert replay is False

    # A finished job is kept while it is newer than the job cutoff.
    await store.enqueue("newest", "issues", "labeled", body(3), None, now)
    await finish_one(store, now)
    assert await store.prune(now - DAY / 2, now - 7 * DAY, 100) == 0
    assert await store.job_counts() == {"done": 1}


async def test_prune_deletes_a_batch_at_a_time(store: AnyStore) -> None:
    for n in range(5):
        await enqueue(store, f"d{n}")
        await finish_one(store, NOW)
    later = NOW + 8 * DAY
    # Two jobs a call, and with them their deliveries.
    assert [await store.prune(later, later, 2) for _ in range(4)] == [4, 4, 2, 0]
    assert await store.job_counts() == {}


async def test_replicas_pruning_at_once_delete_each_row_once(backend: Backend) -> None:
    first = backend.open()
    await first.migrate()
    for n in range(60):
        await first.enqueue(f"d{n}", "issues", "labeled", body(n), None, NOW, dedupe=(f"k{n}",))
        await finish_one(first, NOW)
    await first.enqueue("open", "issues", "labeled", body(99), None, NOW)
    later = NOW + 8 * DAY
    replicas = [backend.open() for _ in range(4)]

    async def prune_all(store: AnyStore) -> int:
        deleted = 0
        while found := await store.prune(later, later, 7):
            deleted += found
        return deleted

    counts = await asyncio.gather(*(prune_all(store) for store in replicas))
    assert sum(counts) == 180
    assert await first.job_counts() == {"queued": 1}
    assert await first.has_delivery("open")
