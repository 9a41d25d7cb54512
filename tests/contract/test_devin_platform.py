"""Contract tests for the Devin adapter against its v1 fake: the idempotent create and
what it makes of a lost answer, reading, messages and termination. The error classes
every platform shares are in test_platforms.py and test_follow_platforms.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.adapters.platforms.devin import DevinPlatform
from bot.events import Repository
from bot.ports import PlatformError, SessionRequest
from tests.support.fakes.devin import FakeDevin
from tests.support.steps import MemorySteps

pytestmark = pytest.mark.anyio

REPO = Repository(
    full_name="acme/web-app",
    html_url="https://github.com/acme/web-app",
    clone_url="https://github.com/acme/web-app.git",
    default_branch="main",
)
PULL = "https://github.com/acme/web-app/pull/42"


def session_request(
    dispatch_id: str = "gh-delivery-1", prompt: str | None = None
) -> SessionRequest:
    return SessionRequest(
        dispatch_id=dispatch_id,
        title="Fix the login bug",
        prompt=prompt or f"Resolve issue #7: Fix the login bug.\n\ndispatch-id: {dispatch_id}\n",
        repository=REPO,
        target_branch="main",
        branch_name="tembo/7-fix-the-login-bug",
    )


@dataclass
class Rig:
    fake: FakeDevin
    http: httpx.AsyncClient
    platform: DevinPlatform

    def restarted(self) -> DevinPlatform:
        return DevinPlatform(self.http, self.fake.api_key, self.fake.base_url)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    fake = FakeDevin()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        yield Rig(fake, http, DevinPlatform(http, fake.api_key, fake.base_url))


def lose_the_first_create_answer(fake: FakeDevin) -> None:
    lost = [True]

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == "/v1/sessions" and lost:
            lost.pop()
            fake.answer(request)  # Devin starts the session...
            raise httpx.ReadTimeout("answer lost", request=request)  # ...the answer is lost
        return None

    fake.fault = fault


async def test_devin_sends_an_idempotent_create_with_the_repository_in_the_prompt(
    rig: Rig,
) -> None:
    request = session_request()
    session = await rig.platform.create_session(request, MemorySteps())
    assert rig.fake.requests == [
        {
            "prompt": f"Repository: {REPO.html_url}\n\n{request.prompt}",
            "idempotent": True,
            "title": "Fix the login bug",
        }
    ]
    [created] = rig.fake.sessions
    assert (session.id, session.url) == (created["session_id"], created["url"])


async def test_devin_prompt_that_names_the_repository_is_sent_as_it_is(rig: Rig) -> None:
    prompt = f"Work on the GitHub repository {REPO.html_url}.\n\ndispatch-id: gh-1\n"
    await rig.platform.create_session(session_request("gh-1", prompt), MemorySteps())
    assert rig.fake.requests[0]["prompt"] == prompt


async def test_devin_lost_answer_is_found_by_sending_the_same_create_again(rig: Rig) -> None:
    request = session_request()
    lose_the_first_create_answer(rig.fake)
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(request, MemorySteps())
    assert raised.value.ambiguous
    for platform in (rig.platform, rig.restarted()):  # also after a restart
        found = await platform.find_session(request)
        assert found is not None
        assert found.id == rig.fake.sessions[0]["session_id"]
    assert len(rig.fake.sessions) == 1
    assert len(rig.fake.requests) == 3  # each resend was the same idempotent create


async def test_devin_lookup_of_a_create_that_never_arrived_starts_the_one_session(
    rig: Rig,
) -> None:
    found = await rig.platform.find_session(session_request())
    assert found is not None
    assert [s["session_id"] for s in rig.fake.sessions] == [found.id]


async def test_devin_separate_dispatches_get_separate_sessions(rig: Rig) -> None:
    first = await rig.platform.create_session(session_request("gh-1"), MemorySteps())
    second = await rig.platform.create_session(session_request("gh-2"), MemorySteps())
    assert first.id != second.id


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ("working", "working"),
        ("blocked", "working"),
        ("suspend_requested", "working"),
        ("resumed", "working"),
        ("finished", "finished"),
        ("expired", "stopped"),
        ("something_new", "working"),
    ],
)
async def test_devin_maps_each_status(rig: Rig, status: str, phase: str) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    rig.fake.sessions[0]["status_enum"] = status
    state = await rig.platform.get_session(session.id)
    assert (state.phase, state.raw_status) == (phase, status)


async def test_devin_reports_the_sessions_pull_request_and_why_it_waits(rig: Rig) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    rig.fake.script[session.id] = [{"status_enum": "blocked", "pull_request": PULL}]
    state = await rig.platform.get_session(session.id)
    assert state.pull_requests == (PULL,)
    assert "waiting for an answer" in state.reason
    rig.fake.advance(session.id, status_enum="finished")
    assert (await rig.platform.get_session(session.id)).terminal


async def test_devin_sends_a_follow_up_message(rig: Rig) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    await rig.platform.send_message(session.id, "also cover Safari", "gh-2")
    assert rig.fake.messages == [(session.id, "also cover Safari")]


async def test_devin_terminates_the_session_once(rig: Rig) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    await rig.platform.stop_session(session.id)
    assert rig.fake.terminations == [session.id]
    with pytest.raises(PlatformError) as raised:
        await rig.platform.stop_session(session.id)
    assert raised.value.status == 400
    assert not raised.value.transient


async def test_devin_refusal_names_the_kind_of_key_v1_takes(rig: Rig) -> None:
    rig.fake.api_key = "cog_service_user_token"
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(session_request(), MemorySteps())
    assert "DEVIN_API_KEY" in raised.value.message
    assert "apk_user_" in raised.value.message


@pytest.mark.parametrize(
    "body",
    [
        {"idempotent": True},  # no prompt
        {"prompt": "x", "repository": "acme/web"},  # a field the page does not list
        {"prompt": "x", "idempotent": "yes"},
        {"prompt": 3},
    ],
)
def test_devin_fake_refuses_bodies_the_page_does_not_allow(body: dict[str, Any]) -> None:
    fake = FakeDevin()
    answer = fake(
        httpx.Request(
            "POST",
            f"{fake.base_url}/v1/sessions",
            headers={"authorization": f"Bearer {fake.api_key}"},
            content=json.dumps(body),
        )
    )
    assert answer.status_code == 422
    assert answer.json()["detail"]
    assert fake.sessions == []
