"""Following a session to its end, end to end: scripted platform states, follow-ups,
stop on command and on close, and a restart in the middle of polling.

Time is a controllable clock shared by the app and the GitHub fake; `tick` moves it and
wakes the worker, so a 7-day follow runs in milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bot.app import create_app, runtime_of
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import Clock, Harness
from tests.support.fakes import route
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo

pytestmark = pytest.mark.anyio
REPO = "acme/web"


@dataclass
class World:
    harness: Harness
    clock: Clock
    http: httpx.AsyncClient
    settings: Settings

    async def tick(self, seconds: float) -> None:
        await self.harness.tick(self.clock, seconds)

    async def run_until_idle(self, step: float = 1.0, steps: int = 60) -> None:
        await self.harness.run_until_idle(self.clock, step, steps)

    @property
    def session(self) -> dict[str, Any]:
        [session] = self.harness.tembo.sessions
        return session

    def status_comment(self) -> Any:
        [comment] = self.harness.github.app_comments(REPO, 1)
        return comment


async def start(settings: Settings, http: httpx.AsyncClient, clock: Clock) -> Starlette:
    return create_app(settings, http=http, content_per_minute=0, clock=clock)


@pytest.fixture
async def world(settings: Settings, github: FakeGitHub, tembo: FakeTembo) -> AsyncIterator[World]:
    clock = Clock()
    github.clock = clock
    github.permissions[(REPO, "Codertocat")] = "write"
    http = httpx.AsyncClient(transport=route({github.host: github, tembo.host: tembo}))
    app = await start(settings, http, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield World(Harness(app, client, github, tembo), clock, http, settings)
    await http.aclose()


async def dispatch(world: World) -> None:
    await world.harness.deliver("issues", payloads.labeled(repo=REPO))
    await world.harness.settle()


async def test_the_status_comment_follows_the_session_to_its_pull_request(world: World) -> None:
    await dispatch(world)
    tembo, github = world.harness.tembo, world.harness.github
    session_id = world.session["id"]
    tembo.script[session_id] = [
        {"state": "queued"},
        {"state": "inProgress"},
        {},  # nothing new
        {"state": "completed", "pull_requests": ["https://github.com/acme/web/pull/9"]},
    ]
    assert world.status_comment().edits == 0  # posted once, with the link

    await world.tick(31)
    assert "session started" in world.status_comment().body  # queued is no news
    assert world.status_comment().edits == 0
    await world.tick(61)
    assert "session working" in world.status_comment().body
    await world.tick(121)
    assert world.status_comment().edits == 1  # no edit when nothing changed
    await world.tick(241)
    body = world.status_comment().body
    assert "session finished" in body and "https://github.com/acme/web/pull/9" in body
    assert (REPO, "issue", 1, "rocket") in github.reactions
    assert world.status_comment().edits == 2

    reads = len(tembo.reads)
    await world.tick(24 * 3600)
    assert len(tembo.reads) == reads  # a finished session is not read again
    counts = await world.harness.runtime.store.job_counts()
    assert counts == {"done": 2}  # the delivery and the follow job
    assert len(github.app_comments()) == 1


async def test_a_failed_session_is_reported_and_no_longer_followed(world: World) -> None:
    await dispatch(world)
    world.harness.tembo.script[world.session["id"]] = [{"state": "failed"}]
    await world.tick(31)
    assert "session failed" in world.status_comment().body
    assert await world.harness.runtime.store.job_counts("follow") == {"done": 1}


async def test_polls_slow_down_and_stop_after_seven_days(world: World) -> None:
    await dispatch(world)
    tembo = world.harness.tembo
    tembo.advance(world.session["id"], state="inProgress")
    for _ in range(40):
        await world.tick(15 * 60 + 1)  # the longest interval
    reads = len(tembo.reads)
    assert reads == 40 + 0  # one read per tick once at the 15-minute cap
    await world.tick(7 * 24 * 3600)
    await world.tick(15 * 60 + 1)
    assert len(tembo.reads) == reads + 1  # the last read, then it stops
    assert await world.harness.runtime.store.job_counts("follow") == {"done": 1}
    assert world.status_comment().edits == 1


async def test_a_follow_up_goes_to_the_running_session(world: World) -> None:
    await dispatch(world)
    await world.harness.deliver(
        "issue_comment",
        payloads.comment("/tembo also cover the Safari case", repo=REPO, comment_id=77),
    )
    await world.harness.settle()
    [message] = world.harness.tembo.messages
    assert message["sessionId"] == world.session["id"]
    assert "also cover the Safari case" in message["content"]
    assert len(world.harness.tembo.sessions) == 1
    body = world.status_comment().body
    assert "follow-up from @Codertocat sent to the session" in body
    assert (REPO, "comment", 77, "eyes") in world.harness.github.reactions


async def test_stop_on_command(world: World) -> None:
    await dispatch(world)
    world.harness.tembo.advance(world.session["id"], state="inProgress")
    await world.harness.deliver(
        "issue_comment", payloads.comment("/tembo stop", repo=REPO, comment_id=78)
    )
    await world.harness.settle()
    assert [stop[0] for stop in world.harness.tembo.stops] == [world.session["id"]]
    body = world.status_comment().body
    assert "session stopped" in body and "stopped by @Codertocat" in body
    await world.tick(31)  # the follow job sees the session ended and stops too
    assert await world.harness.runtime.store.job_counts("follow") == {"done": 1}


async def test_closing_as_not_planned_stops_the_session_and_completed_does_not(
    world: World,
) -> None:
    await dispatch(world)
    closed = payloads.labeled(repo=REPO)
    closed["action"] = "closed"
    closed["issue"].update(state="closed", state_reason="completed")
    await world.harness.deliver("issues", closed)
    await world.harness.settle()
    assert world.harness.tembo.stops == []
    closed["issue"]["state_reason"] = "not_planned"
    await world.harness.deliver("issues", closed)
    await world.harness.settle()
    assert len(world.harness.tembo.stops) == 1
    assert "closed as not planned" in world.status_comment().body


async def test_a_restart_in_the_middle_of_polling_loses_no_session(world: World) -> None:
    await dispatch(world)
    session_id = world.session["id"]
    world.harness.tembo.script[session_id] = [{"state": "inProgress"}]
    await world.tick(31)
    assert "session working" in world.status_comment().body
    # Stop this app and start another on the same store, as a deploy would.
    await world.harness.runtime.worker.stop()  # type: ignore[union-attr]
    again = await start(world.settings, world.http, world.clock)
    async with again.router.lifespan_context(again):
        world.harness.tembo.advance(
            session_id, state="completed", pull_requests=["https://github.com/acme/web/pull/3"]
        )
        world.clock.now += 3600
        worker = runtime_of(again).worker
        assert worker is not None
        worker.notify()
        await asyncio.wait_for(worker.idle.wait(), 10)
        assert "pull/3" in world.status_comment().body
        assert await runtime_of(again).store.job_counts("follow") == {"done": 1}


async def test_a_stop_retried_after_a_github_failure_neither_replies_nor_stops_twice(
    world: World,
) -> None:
    await dispatch(world)
    world.harness.tembo.advance(world.session["id"], state="inProgress")
    failures = [httpx.Response(502, json={"message": "Server Error"})]

    def fail_the_edit_once(request: httpx.Request) -> httpx.Response | None:
        if request.method == "PATCH" and failures:
            return failures.pop()
        return None

    world.harness.github.fault = fail_the_edit_once
    await world.harness.deliver(
        "issue_comment", payloads.comment("/tembo stop", repo=REPO, comment_id=79)
    )
    await world.run_until_idle()
    assert failures == []  # the edit did fail once
    assert len(world.harness.tembo.stops) == 1
    assert "session stopped" in world.status_comment().body  # no "nothing to stop" reply
