"""The worker notices at once that it has nothing left to do: a job that ends while the
loop is looking for the next one wakes it, instead of leaving it asleep for a whole poll
interval (which tests would pay for in every `settle()`)."""

from __future__ import annotations

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
