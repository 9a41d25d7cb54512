"""Old rows go: every worker prunes finished jobs past `RETENTION_DAYS` (payloads and
all), and deliveries and replay keys once ingest's dedupe window is over, while a
redelivery inside that window is still answered "duplicate".

Time is a controllable clock shared by the app and the GitHub fake; `tick` moves it and
wakes the worker, whose hourly pruning then comes due."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from bot import worker
from bot.ports import Job
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import Clock, Harness, running, signed_headers
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo

pytestmark = pytest.mark.anyio
REPO = "acme/web"
DAY = 24 * 3600.0
World = Callable[[Settings], AbstractAsyncContextManager[tuple[Harness, Clock]]]


@pytest.fixture
def world(github: FakeGitHub, tembo: FakeTembo) -> World:
    """The app on a hand-moved clock, with `settings`, for the length of the block."""
    github.permissions[(REPO, "Codertocat")] = "write"

    @asynccontextmanager
    async def run(settings: Settings) -> AsyncIterator[tuple[Harness, Clock]]:
        clock = Clock()
        async with running(settings, github, tembo, clock) as harness:
            yield harness, clock

    return run


async def send(harness: Harness, body: bytes, delivery_id: str) -> str:
    """Post one exact body under `delivery_id`, as GitHub (or its redelivery) would."""
    answer = await harness.client.post(
        "/webhook", content=body, headers=signed_headers(body, "issues", delivery_id)
    )
    return str(answer.json()["status"])


async def test_finished_deliveries_and_replay_keys_are_pruned_after_the_dedupe_window(
    settings: Settings, world: World
) -> None:
    body = json.dumps(payloads.labeled(repo=REPO)).encode()
    async with world(settings) as (harness, clock):
        store = harness.runtime.store
        assert await send(harness, body, "first") == "queued"
        await harness.settle()
        assert len(harness.tembo.sessions) == 1

        await harness.tick(clock, 6 * DAY)  # pruning runs: nothing is old enough yet
        assert await store.job_counts("delivery") == {"done": 1}
        assert await send(harness, body, "first") == "duplicate"  # GitHub's redelivery
        assert await send(harness, body, "replayed") == "duplicate"  # same body, new id

        await harness.tick(clock, 2 * DAY)
        assert await store.job_counts("delivery") == {}
        assert not await store.has_delivery("first")
        # The session's own record and its follow job are not the pruner's.
        assert len(await store.sessions_for_issue(REPO, 1)) == 1
        assert sum((await store.job_counts("follow")).values()) == 1


async def test_a_short_retention_frees_payloads_but_keeps_the_dedupe_window(
    settings: Settings, world: World
) -> None:
    body = json.dumps(payloads.labeled(repo=REPO)).encode()
    async with world(settings.replace(retention_days=1.0)) as (harness, clock):
        store = harness.runtime.store
        assert await send(harness, body, "first") == "queued"
        await harness.settle()

        await harness.tick(clock, 2 * DAY)
        assert await store.job_counts("delivery") == {}  # the job and its payload are gone
        # ... but the delivery id and the body's replay key are kept for the whole window.
        assert await store.has_delivery("first")
        assert await send(harness, body, "first") == "duplicate"
        assert await send(harness, body, "replayed") == "duplicate"
        assert len(harness.tembo.sessions) == 1


async def test_a_backlog_is_pruned_a_batch_at_a_time_between_claims(
    settings: Settings, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first prune after an upgrade may find months of rows: a delivery arriving then
    is claimed between two batches, not after the last one."""
    async with world(settings) as (harness, clock):
        await harness.settle()  # the first round found nothing
        store = harness.runtime.store
        order: list[str] = []
        backlog = [3]  # full batches left, then none
        real_claim = store.claim

        async def prune(jobs_before: float, deliveries_before: float, batch: int) -> int:
            order.append("prune")
            if backlog[0]:
                backlog[0] -= 1
                return batch
            return 0

        async def claim(name: str, now: float, lease_seconds: float) -> Job | None:
            job = await real_claim(name, now, lease_seconds)
            if job is not None:
                order.append("claim")
            return job

        monkeypatch.setattr(store, "prune", prune)
        monkeypatch.setattr(store, "claim", claim)
        clock.now += worker.PRUNE_EVERY  # the next round is due
        assert await send(harness, json.dumps(payloads.labeled(repo=REPO)).encode(), "d") == (
            "queued"
        )
        await harness.settle()
        assert order.count("prune") == 4  # settle() waited for the last, empty, batch
        last_prune = len(order) - 1 - order[::-1].index("prune")
        assert order.index("claim") < last_prune, order
        assert len(harness.tembo.sessions) == 1
