"""The worker notices at once that it has work or has nothing left to do: a job that
ends, or a delivery queued, while the loop is looking for the next job wakes it, instead
of leaving it asleep for a whole poll interval (which tests would pay for in every
`settle()`), and never lets it call itself idle with that work still waiting."""

from __future__ import annotations

import asyncio

import pytest

from bot import worker
from tests.support import payloads
from tests.support.app import Harness

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
