"""The worker notices at once that it has work or has nothing left to do: a job that
ends, or a delivery queued, while the loop is looking for the next job wakes it, instead
of leaving it asleep for a whole poll interval (which tests would pay for in every
`settle()`), and never lets it call itself idle with that work still waiting; a job it
finds on its own (no wake-up) makes it busy until that job ends."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot import worker
from bot.ports import Job
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import Clock, Harness, running
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo

pytestmark = pytest.mark.anyio


async def test_settle_does_not_wait_for_a_poll_interval(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A poll interval no test could sit out: only wake-ups can make the worker idle in time.
    monkeypatch.setattr(worker, "POLL_SECONDS", 3600.0)
    for number in range(1, 21):
        harness.github.permissions[("Codertocat/Hello-World", "Codertocat")] = "write"
        await harness.deliver("issues", payloads.labeled(number=number))
    await harness.settle(timeout=20)
    assert len(harness.tembo.sessions) == 20
    assert await harness.runtime.store.job_counts("delivery") == {"done": 20}


async def test_a_delivery_queued_while_the_worker_looks_is_run_before_it_calls_itself_idle(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No poll can rescue a missed wake-up: only the order of events decides this test.
    monkeypatch.setattr(worker, "POLL_SECONDS", 3600.0)
    await harness.settle()
    found = harness.runtime.worker
    assert found is not None
    store = harness.runtime.store
    read_due = store.next_run_at
    looking, answer = asyncio.Event(), asyncio.Event()

    async def next_run_at() -> float | None:
        # The store's answer is read now (nothing due), and reaches the worker only after
        # the delivery below was queued: a read that was slow, as reads under load are.
        due = await read_due()
        looking.set()
        await answer.wait()
        return due

    monkeypatch.setattr(store, "next_run_at", next_run_at)
    found.notify()  # the loop looks, finds nothing to claim, asks when the next job is due
    await looking.wait()
    harness.github.permissions[("Codertocat/Hello-World", "Codertocat")] = "write"
    await harness.deliver("issues", payloads.labeled(number=1))  # queued; wakes the worker
    answer.set()

    await harness.settle()
    # Idle only once the delivery has been run: before the fix the loop forgot the wake-up
    # (cleared at the start of its sleep) and slept the whole hour, and it called itself
    # idle from the stale answer, so settle() returned with the delivery still queued.
    assert len(harness.tembo.sessions) == 1
    assert await store.job_counts("delivery") == {"done": 1}


async def test_a_job_that_ends_while_the_worker_looks_has_its_next_run_done_before_idle(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tembo answers 503 to every create: on the job's last attempt it moves to
    `fallback: [dry-run]` and, as it ends, queues its next run, due now. Meanwhile the
    worker is asking when the next job is due, and its answer was read while the job
    still ran (due only when the job's lease ends, minutes away)."""
    monkeypatch.setattr(worker, "POLL_SECONDS", 3600.0)
    await harness.settle()
    found = harness.runtime.worker
    assert found is not None
    repo = "acme/web"
    harness.github.files[(repo, ".github/tembo.yml")] = "platform: tembo\nfallback: [dry-run]\n"
    harness.github.permissions[(repo, "Codertocat")] = "write"
    harness.tembo.fault = lambda request: httpx.Response(503, json={"error": "down"})
    store = harness.runtime.store
    read_due, reschedule = store.next_run_at, store.reschedule
    ending, looking, queued = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def queue_next_run(job: Job, run_at: float, now: float) -> None:
        ending.set()
        found.notify()  # a delivery for another issue, say: the loop looks again now
        await looking.wait()
        await reschedule(job, run_at, now)
        queued.set()  # and the job's run ends at once: it leaves the running set

    async def next_run_at() -> float | None:
        due = await read_due()
        if not ending.is_set() or looking.is_set():
            return due
        looking.set()  # read while the job runs: nothing due before its lease ends
        await queued.wait()
        for _ in range(3):
            await asyncio.sleep(0)  # the job's next run is queued and the job has ended
        return due

    monkeypatch.setattr(store, "reschedule", queue_next_run)
    await harness.deliver("issues", payloads.labeled(repo=repo))
    monkeypatch.setattr(store, "next_run_at", next_run_at)
    await harness.settle()

    # Idle only once that next run has been done: it starts the session on dry-run.
    assert queued.is_set()
    rows = [(r.kind, r.platform) for r in await store.usage(0)]
    assert rows == [("fallback", "tembo"), ("dispatch", "dry-run")]
    assert await store.job_counts("delivery") == {"done": 1}


async def test_a_job_the_worker_finds_due_on_its_own_makes_it_busy_until_it_ends(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idle with a session's follow due in 30 s; the time comes and nothing wakes the
    worker (no delivery): its poll finds the follow job. While that job runs the worker is
    not idle, so settle() waits for it."""
    monkeypatch.setattr(worker, "POLL_SECONDS", 0.01)  # the poll is what finds the job
    clock = Clock()
    github.permissions[("acme/web", "Codertocat")] = "write"
    async with running(settings, github, tembo, clock) as harness:
        await harness.deliver("issues", payloads.labeled(repo="acme/web"))
        await harness.settle()
        found = harness.runtime.worker
        assert found is not None and found.idle.is_set()
        store = harness.runtime.store
        reschedule = store.reschedule
        following, done = asyncio.Event(), asyncio.Event()

        async def follow_ends(job: Job, run_at: float, now: float) -> None:
            following.set()  # the follow job is running: it has read the session
            await done.wait()
            await reschedule(job, run_at, now)

        monkeypatch.setattr(store, "reschedule", follow_ends)
        clock.now += 31  # the follow is due; no one calls notify()
        await asyncio.wait_for(following.wait(), 10)
        assert not found.idle.is_set()
        done.set()
        await harness.settle()
        assert len(tembo.reads) == 1
        assert await store.job_counts("follow") == {"queued": 1}
