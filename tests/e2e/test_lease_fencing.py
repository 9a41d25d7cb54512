"""Lease fencing through the real worker and handler on both stores: a worker paused past
its lease, while another replica claims the job, can no longer act on it.

Replica A stalls in the middle of posting the status comment (its session exists, the
journal says so). The lease runs out, replica B claims the job, resumes it from A's journal
and posts the link. A's heartbeat then finds the lease gone and stops A's work; none of A's
writes land. One session, one comment, one finished job.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import httpx
import pytest

from bot.actions import Context
from bot.adapters.github import GitHubClient
from bot.handler import Handler
from bot.platforms import platform_factory
from bot.repo_config import RepoConfig
from bot.settings import Settings
from bot.worker import Worker
from tests.support import payloads
from tests.support.app import Clock
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo
from tests.support.stores import AnyStore, Backend

pytestmark = pytest.mark.anyio
LEASE = 0.3  # seconds: the heartbeat looks every LEASE / 3 of real time

Fake = Callable[[httpx.Request], httpx.Response]


def transport(
    github: FakeGitHub, tembo: FakeTembo, before_comment: Callable[[], Awaitable[None]] | None
) -> httpx.MockTransport:
    fakes: dict[str, Fake] = {github.host: github, tembo.host: tembo}

    async def handle(request: httpx.Request) -> httpx.Response:
        posting = request.method == "POST" and request.url.path.endswith("/comments")
        if posting and before_comment is not None:
            await before_comment()
        return fakes[request.url.host](request)

    return httpx.MockTransport(handle)


def replica(
    store: AnyStore, settings: Settings, http: httpx.AsyncClient, clock: Clock, name: str
) -> Worker:
    github = GitHubClient(settings, http, clock=clock)  # no content budget
    ctx = Context(github, store, platform_factory(settings, http), clock)
    handler = Handler(ctx, RepoConfig.defaults(settings))
    return Worker(store, handler, concurrency=1, lease_seconds=LEASE, clock=clock, name=name)


async def test_a_worker_paused_past_its_lease_writes_nothing_and_nothing_is_done_twice(
    backend: Backend, settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    clock = Clock()
    github.clock = tembo.clock = clock
    github.permissions[("Codertocat/Hello-World", "Codertocat")] = "write"
    stalled, cancelled = asyncio.Event(), asyncio.Event()

    async def stall_once() -> None:
        if stalled.is_set():
            return
        stalled.set()
        try:
            await asyncio.Event().wait()  # until A's work is stopped
        except asyncio.CancelledError:
            cancelled.set()
            raise

    store_a, store_b = backend.open(), backend.open()
    await store_a.migrate()
    await store_b.migrate()
    body = json.dumps(payloads.labeled()).encode()
    assert await store_a.enqueue("d-1", "issues", "labeled", body, "k", clock())

    async with (
        httpx.AsyncClient(transport=transport(github, tembo, stall_once)) as http_a,
        httpx.AsyncClient(transport=transport(github, tembo, None)) as http_b,
    ):
        a = replica(store_a, settings, http_a, clock, "replica-a")
        b = replica(store_b, settings, http_b, clock, "replica-b")
        run_a = asyncio.create_task(a.run())
        await asyncio.wait_for(stalled.wait(), 10)
        assert len(tembo.sessions) == 1  # A created the session, then stalled

        clock.now += 60  # A's lease has run out by the clock every replica reads
        run_b = asyncio.create_task(b.run())
        await asyncio.wait_for(cancelled.wait(), 10)  # A's heartbeat stopped A's work
        await asyncio.wait_for(b.idle.wait(), 10)
        await a.stop()
        await b.stop()
        await asyncio.gather(run_a, run_b)

    assert len(tembo.sessions) == 1
    [comment] = github.app_comments()
    assert tembo.sessions[0]["htmlUrl"] in comment.body
    assert await store_b.job_counts() == {"done": 1, "queued": 1}  # the job, its follow job
