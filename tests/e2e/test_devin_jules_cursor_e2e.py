"""Devin, Jules and Cursor through the real app and their contract fakes: a labelled
issue becomes one session with the documented body and its link on the issue; the
status comment follows it to its pull request; follow-ups and stops go where each
platform documents them; 5xx, 429 with Retry-After and a lost answer end with one
session (Devin's idempotent create, Cursor's own agent id) or at most two and an honest
comment (Jules).

Time is a hand-moved clock shared by the app and the GitHub fake, as in test_follow."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.app import create_app
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import Clock, Harness
from tests.support.fakes import route
from tests.support.fakes.cursor import FakeCursor
from tests.support.fakes.devin import FakeDevin
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.jules import FakeJules
from tests.support.fakes.tembo import FakeTembo

pytestmark = pytest.mark.anyio
REPO = "acme/web"
PULL = "https://github.com/acme/web/pull/9"
NEW = ("devin", "jules", "cursor")
CREATE_PATHS = {"devin": "/v1/sessions", "jules": "/v1alpha/sessions", "cursor": "/v1/agents"}
Fault = Callable[[httpx.Request], httpx.Response | None]


@dataclass
class World:
    harness: Harness
    clock: Clock
    devin: FakeDevin
    jules: FakeJules
    cursor: FakeCursor

    def fake(self, name: str) -> Any:
        return {"devin": self.devin, "jules": self.jules, "cursor": self.cursor}[name]

    def sessions(self, name: str) -> list[dict[str, Any]]:
        return list(self.fake(name).sessions)

    def session_id(self, name: str) -> str:
        [session] = self.sessions(name)
        return str(session.get("session_id") or session["id"])

    def status_comment(self) -> Any:
        [comment] = self.harness.github.app_comments(REPO, 1)
        return comment

    def on_create(self, name: str, fault: Fault) -> None:
        fake = self.fake(name)

        def only_creates(request: httpx.Request) -> httpx.Response | None:
            if request.method == "POST" and request.url.path == CREATE_PATHS[name]:
                return fault(request)
            return None

        fake.fault = only_creates

    def to_pull_request(self, name: str) -> None:
        """The platform finishes and reports its pull request, in its own words."""
        session_id = self.session_id(name)
        if name == "devin":
            self.devin.advance(session_id, status_enum="finished", pull_request=PULL)
        elif name == "jules":
            self.jules.advance(session_id, state="COMPLETED", pull_requests=[PULL])
        else:
            self.cursor.advance(session_id, status="FINISHED", pull_requests=[PULL])

    async def deliver(self, event: str, payload: dict[str, Any], *, settle: bool = True) -> None:
        assert (await self.harness.deliver(event, payload)).status_code == 202
        if settle:
            await self.harness.settle()
        else:  # retries wait on the hand-moved clock: run_until_idle moves it
            await self.run_until_idle()

    async def tick(self, seconds: float) -> None:
        await self.harness.tick(self.clock, seconds)

    async def run_until_idle(self, step: float = 1.0, steps: int = 120) -> None:
        await self.harness.run_until_idle(self.clock, step, steps)


@pytest.fixture
async def world(settings: Settings, github: FakeGitHub, tembo: FakeTembo) -> AsyncIterator[World]:
    clock = Clock()
    github.clock = clock
    github.permissions[(REPO, "Codertocat")] = "write"
    devin, jules, cursor = FakeDevin(), FakeJules(), FakeCursor()
    configured = settings.with_platform_env(
        DEVIN_API_KEY=devin.api_key,
        DEVIN_BASE_URL=devin.base_url,
        JULES_API_KEY=jules.api_key,
        JULES_BASE_URL=jules.base_url,
        CURSOR_API_KEY=cursor.api_key,
        CURSOR_BASE_URL=cursor.base_url,
    )
    hosts = {github.host: github, tembo.host: tembo}
    hosts.update({fake.host: fake for fake in (devin, jules, cursor)})
    http = httpx.AsyncClient(transport=route(hosts))
    app = create_app(configured, http=http, content_per_minute=0, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield World(Harness(app, client, github, tembo), clock, devin, jules, cursor)
    await http.aclose()


async def dispatch(world: World, platform: str, *, settle: bool = True) -> None:
    world.harness.github.files[(REPO, ".github/tembo.yml")] = f"platform: {platform}\n"
    await world.deliver("issues", payloads.labeled(repo=REPO), settle=settle)


# ---------------------------------------------------------------------------
# One session, the documented body, the link


async def test_devin_gets_an_idempotent_create_naming_the_repository(world: World) -> None:
    await dispatch(world, "devin")
    [body] = world.devin.requests
    assert set(body) == {"prompt", "idempotent", "title"}
    assert body["idempotent"] is True
    assert f"https://github.com/{REPO}" in body["prompt"]
    assert "dispatch-id: " in body["prompt"]
    [session] = world.devin.sessions
    assert session["url"] in world.status_comment().body
    assert "Devin session started" in world.status_comment().body


async def test_jules_gets_the_repositorys_source_and_auto_create_pr(world: World) -> None:
    await dispatch(world, "jules")
    [body] = world.jules.requests
    default_branch = payloads.labeled(repo=REPO)["repository"]["default_branch"]
    assert body["sourceContext"] == {
        "source": f"sources/github/{REPO}",
        "githubRepoContext": {"startingBranch": default_branch},
    }
    assert body["automationMode"] == "AUTO_CREATE_PR"
    [session] = world.jules.sessions
    assert session["url"] in world.status_comment().body


async def test_cursor_gets_an_agent_on_the_repository_that_opens_a_pull_request(
    world: World,
) -> None:
    await dispatch(world, "cursor")
    [body] = world.cursor.requests
    default_branch = payloads.labeled(repo=REPO)["repository"]["default_branch"]
    assert body["repos"] == [{"url": f"https://github.com/{REPO}", "startingRef": default_branch}]
    assert body["autoCreatePR"] is True
    assert body["agentId"].startswith("bc-")
    [agent] = world.cursor.agents
    assert agent["url"] in world.status_comment().body
    assert world.cursor.auth_schemes[0] == "Basic"


@pytest.mark.parametrize("platform", NEW)
async def test_only_the_chosen_platform_is_sent_a_session(world: World, platform: str) -> None:
    await dispatch(world, platform)
    assert {name: len(world.sessions(name)) for name in NEW} == {
        name: int(name == platform) for name in NEW
    }
    records = await world.harness.runtime.store.sessions_for_issue(REPO, 1)
    assert [(r.platform, r.session_id) for r in records] == [(platform, world.session_id(platform))]


# ---------------------------------------------------------------------------
# Following, follow-ups, stop


@pytest.mark.parametrize("platform", NEW)
async def test_the_status_comment_follows_the_session_to_its_pull_request(
    world: World, platform: str
) -> None:
    await dispatch(world, platform)
    world.to_pull_request(platform)
    await world.tick(31)
    body = world.status_comment().body
    assert "session finished" in body and PULL in body
    assert len(world.harness.github.app_comments()) == 1


@pytest.mark.parametrize("platform", NEW)
async def test_a_follow_up_goes_to_the_session(world: World, platform: str) -> None:
    await dispatch(world, platform)
    world.to_pull_request(platform)  # Cursor takes a new run only once the last ended
    await world.deliver(
        "issue_comment",
        payloads.comment("/tembo also cover the Safari case", repo=REPO, comment_id=77),
    )
    sent = {
        "devin": world.devin.messages,
        "jules": world.jules.messages,
        "cursor": world.cursor.followups,
    }[platform]
    [(session_id, text)] = sent
    assert session_id == world.session_id(platform)
    assert "also cover the Safari case" in text
    assert len(world.sessions(platform)) == 1
    assert "follow-up from @Codertocat sent to the session" in world.status_comment().body


@pytest.mark.parametrize("platform", ["devin", "cursor"])
async def test_stop_on_command(world: World, platform: str) -> None:
    await dispatch(world, platform)
    await world.deliver("issue_comment", payloads.comment("/tembo stop", repo=REPO, comment_id=78))
    stopped = {"devin": world.devin.terminations, "cursor": world.cursor.cancels}[platform]
    assert len(stopped) == 1
    body = world.status_comment().body
    assert "session stopped" in body and "stopped by @Codertocat" in body


async def test_jules_cannot_be_stopped_from_here_and_the_issue_says_where(world: World) -> None:
    await dispatch(world, "jules")
    await world.deliver("issue_comment", payloads.comment("/tembo stop", repo=REPO, comment_id=79))
    session_url = world.jules.sessions[0]["url"]
    replies = [
        c for c in world.harness.github.app_comments(REPO, 1) if "cannot be stopped" in c.body
    ]
    [reply] = replies
    assert session_url in reply.body and "Jules" in reply.body


# ---------------------------------------------------------------------------
# Faults: 5xx, 429 with Retry-After, a lost answer


@pytest.mark.parametrize("platform", NEW)
async def test_a_5xx_on_create_is_retried_into_one_session(world: World, platform: str) -> None:
    failures = [httpx.Response(503, json={"error": "unavailable"})] * 2
    world.on_create(platform, lambda request: failures.pop() if failures else None)
    await dispatch(world, platform, settle=False)
    assert failures == []
    assert len(world.sessions(platform)) == 1
    assert world.sessions(platform)[0].get("url", "") in world.status_comment().body


@pytest.mark.parametrize("platform", NEW)
async def test_a_429_waits_for_retry_after_then_creates_one_session(
    world: World, platform: str
) -> None:
    limited = [httpx.Response(429, json={"error": "slow down"}, headers={"Retry-After": "120"})]
    world.on_create(platform, lambda request: limited.pop() if limited else None)
    await dispatch(world, platform)
    assert limited == [] and world.sessions(platform) == []
    await world.tick(60)  # well past the worker's own backoff, short of Retry-After
    assert world.sessions(platform) == []
    await world.tick(61)
    assert len(world.sessions(platform)) == 1
    assert (await world.harness.runtime.store.job_counts("delivery")) == {"done": 1}


def create_then_lose_the_answer(world: World, name: str, times: int) -> list[int]:
    """The platform carries the create out and the answer is lost, `times` times."""
    lost: list[int] = []

    def fault(request: httpx.Request) -> httpx.Response | None:
        if len(lost) >= times:
            return None
        lost.append(1)
        world.fake(name).answer(request)
        raise httpx.ReadTimeout("the answer was lost", request=request)

    world.on_create(name, fault)
    return lost


@pytest.mark.parametrize("platform", ["devin", "cursor"])
async def test_a_lost_answer_still_gives_exactly_one_session_and_its_link(
    world: World, platform: str
) -> None:
    lost = create_then_lose_the_answer(world, platform, times=3)
    await dispatch(world, platform, settle=False)
    assert len(lost) >= 1
    [session] = world.sessions(platform)
    assert session["url"] in world.status_comment().body
    assert (await world.harness.runtime.store.job_counts("delivery")) == {"done": 1}


async def test_jules_lost_answers_are_sent_at_most_twice_and_the_issue_is_told(
    world: World,
) -> None:
    create_then_lose_the_answer(world, "jules", times=100)
    await dispatch(world, "jules", settle=False)
    assert len(world.jules.sessions) == 2
    body = world.status_comment().body
    assert "cannot be asked whether a session was started" in body
    assert "a session may exist" in body
    assert (await world.harness.runtime.store.job_counts("delivery")) == {"failed": 1}
