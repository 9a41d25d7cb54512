"""Contract tests for the Cursor adapter against its Cloud Agents v1 fake: the create with
a caller-chosen agent id and what it makes of a lost answer, reading the latest run,
follow-up runs and cancelling. The error classes every platform shares are in
test_platforms.py and test_follow_platforms.py."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.adapters.platforms.cursor import CursorPlatform, agent_id
from bot.events import Repository
from bot.ports import PlatformError, SessionRequest
from tests.support.fakes.cursor import FakeCursor
from tests.support.steps import MemorySteps

pytestmark = pytest.mark.anyio

REPO = Repository(
    full_name="acme/web-app",
    html_url="https://github.com/acme/web-app",
    clone_url="https://github.com/acme/web-app.git",
    default_branch="main",
)
PULL = "https://github.com/acme/web-app/pull/42"


def session_request(dispatch_id: str = "gh-delivery-1", agent: str | None = None) -> SessionRequest:
    return SessionRequest(
        dispatch_id=dispatch_id,
        title="Fix the login bug",
        prompt=f"Resolve issue #7: Fix the login bug.\n\ndispatch-id: {dispatch_id}\n",
        repository=REPO,
        target_branch="main",
        branch_name="tembo/7-fix-the-login-bug",
        agent=agent,
    )


@dataclass
class Rig:
    fake: FakeCursor
    http: httpx.AsyncClient
    platform: CursorPlatform

    def restarted(self) -> CursorPlatform:
        return CursorPlatform(self.http, self.fake.api_key, self.fake.base_url)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    fake = FakeCursor()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        yield Rig(fake, http, CursorPlatform(http, fake.api_key, fake.base_url))


def lose_create_answers(rig: Rig, times: int = 1) -> None:
    left = [True] * times

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == "/v1/agents" and left:
            left.pop()
            rig.fake.answer(request)  # Cursor makes the agent...
            raise httpx.ReadTimeout("answer lost", request=request)  # ...the answer is lost
        return None

    rig.fake.fault = fault


async def test_cursor_creates_an_agent_with_our_id_and_basic_auth(rig: Rig) -> None:
    session = await rig.platform.create_session(session_request(agent="composer-2"), MemorySteps())
    assert rig.fake.requests == [
        {
            "prompt": {"text": session_request().prompt},
            "name": "Fix the login bug",
            "repos": [{"url": REPO.html_url, "startingRef": "main"}],
            "autoCreatePR": True,
            "agentId": agent_id("gh-delivery-1"),
            "model": {"id": "composer-2"},
        }
    ]
    assert rig.fake.auth_schemes == ["Basic"]
    [agent] = rig.fake.agents
    assert session.id == agent["id"] == agent_id("gh-delivery-1")
    assert session.url == f"https://cursor.com/agents/{session.id}"
    assert session.status == "CREATING"


def test_cursor_agent_ids_are_stable_per_dispatch_and_distinct_between_them() -> None:
    assert agent_id("gh-1") == agent_id("gh-1")
    assert agent_id("gh-1") != agent_id("gh-2")
    assert agent_id("gh-1").startswith("bc-")


async def test_cursor_lost_answer_is_found_by_its_agent_id(rig: Rig) -> None:
    request = session_request()
    lose_create_answers(rig)
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(request, MemorySteps())
    assert raised.value.ambiguous
    for platform in (rig.platform, rig.restarted()):
        found = await platform.find_session(request)
        assert found is not None and found.id == agent_id(request.dispatch_id)
    assert len(rig.fake.agents) == 1


async def test_cursor_resent_create_meets_the_conflict_and_answers_the_first_agent(
    rig: Rig,
) -> None:
    request = session_request()
    lose_create_answers(rig)
    with pytest.raises(PlatformError):
        await rig.platform.create_session(request, MemorySteps())
    session = await rig.platform.create_session(request, MemorySteps())  # 409 agent_id_conflict
    assert session.id == agent_id(request.dispatch_id)
    assert len(rig.fake.agents) == 1
    assert len(rig.fake.requests) == 2


async def test_cursor_lookup_of_a_create_that_never_arrived_finds_nothing(rig: Rig) -> None:
    assert await rig.platform.find_session(session_request()) is None


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ("CREATING", "queued"),
        ("RUNNING", "working"),
        ("FINISHED", "finished"),
        ("ERROR", "failed"),
        ("CANCELLED", "stopped"),
        ("EXPIRED", "stopped"),
    ],
)
async def test_cursor_maps_each_run_status(rig: Rig, status: str, phase: str) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    rig.fake.advance(session.id, status=status)
    state = await rig.platform.get_session(session.id)
    assert (state.phase, state.raw_status) == (phase, status)


async def test_cursor_reports_the_agents_pull_request(rig: Rig) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    rig.fake.script[session.id] = [{"status": "FINISHED", "pull_requests": [PULL]}]
    state = await rig.platform.get_session(session.id)
    assert (state.phase, state.pull_requests) == ("finished", (PULL,))


async def test_cursor_archived_agent_is_stopped(rig: Rig) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    rig.fake.advance(session.id, archived=True)
    state = await rig.platform.get_session(session.id)
    assert state.phase == "stopped"
    assert "archived" in state.reason


async def test_cursor_follow_up_is_a_new_run_once_the_last_has_ended(rig: Rig) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    with pytest.raises(PlatformError) as raised:
        await rig.platform.send_message(session.id, "also cover Safari", "gh-2")
    assert raised.value.status == 409 and raised.value.transient  # agent_busy: retried
    assert "still busy" in raised.value.message
    rig.fake.advance(session.id, status="FINISHED")
    await rig.platform.send_message(session.id, "also cover Safari", "gh-2")
    assert rig.fake.followups == [(session.id, "also cover Safari")]
    assert (await rig.platform.get_session(session.id)).phase == "queued"


async def test_cursor_stop_cancels_the_latest_run(rig: Rig) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    rig.fake.advance(session.id, status="RUNNING")
    await rig.platform.stop_session(session.id)
    [run] = rig.fake.runs
    assert rig.fake.cancels == [(session.id, run["id"])]
    assert (await rig.platform.get_session(session.id)).phase == "stopped"


async def test_cursor_stop_of_an_ended_run_has_nothing_to_do(rig: Rig) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    rig.fake.advance(session.id, status="FINISHED")
    await rig.platform.stop_session(session.id)  # 409 run_not_cancellable
    assert rig.fake.cancels == []


def test_cursor_fake_takes_bearer_too_as_the_endpoints_page_says() -> None:
    fake = FakeCursor()
    for header in (
        f"Bearer {fake.api_key}",
        "Basic " + base64.b64encode(f"{fake.api_key}:".encode()).decode(),
    ):
        answer = fake(
            httpx.Request(
                "GET", f"{fake.base_url}/v1/agents/bc-x", headers={"authorization": header}
            )
        )
        assert answer.status_code == 404  # authenticated; no such agent


@pytest.mark.parametrize(
    "body",
    [
        {"repos": [{"url": REPO.html_url}]},  # no prompt
        {"prompt": {"text": "x"}, "agentId": "agent-1"},
        {"prompt": {"text": "x"}, "agentId": agent_id("d"), "envVars": {"A": "1"}},
        {"prompt": {"text": "x"}, "name": "n" * 101},
        {"prompt": {"text": "x"}, "source": {"repository": REPO.html_url}},  # v0's shape
        {"prompt": {"text": "x"}, "repos": [{"url": REPO.html_url, "ref": "main"}]},
    ],
)
def test_cursor_fake_refuses_bodies_the_page_does_not_allow(body: dict[str, Any]) -> None:
    fake = FakeCursor()
    answer = fake(
        httpx.Request(
            "POST",
            f"{fake.base_url}/v1/agents",
            headers={"authorization": f"Bearer {fake.api_key}"},
            content=json.dumps(body),
        )
    )
    assert answer.status_code == 400
    assert "validation_error" in answer.json()["message"]
    assert fake.agents == []
