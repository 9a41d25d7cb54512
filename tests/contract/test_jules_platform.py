"""Contract tests for the Jules adapter against its v1alpha fake: the source lookup, the
create, reading, messages, and what it cannot do (find a lost create, stop). The error
classes every platform shares are in test_platforms.py and test_follow_platforms.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.adapters.platforms.jules import JulesPlatform
from bot.events import Repository
from bot.ports import PlatformError, SessionRequest
from tests.support.fakes.jules import FakeJules
from tests.support.steps import MemorySteps

pytestmark = pytest.mark.anyio

REPO = Repository(
    full_name="acme/web-app",
    html_url="https://github.com/acme/web-app",
    clone_url="https://github.com/acme/web-app.git",
    default_branch="main",
)
PULL = "https://github.com/acme/web-app/pull/42"


def session_request(dispatch_id: str = "gh-delivery-1", repo: Repository = REPO) -> SessionRequest:
    return SessionRequest(
        dispatch_id=dispatch_id,
        title="Fix the login bug",
        prompt=f"Resolve issue #7: Fix the login bug.\n\ndispatch-id: {dispatch_id}\n",
        repository=repo,
        target_branch="release",
        branch_name="tembo/7-fix-the-login-bug",
    )


@dataclass
class Rig:
    fake: FakeJules
    platform: JulesPlatform


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    fake = FakeJules()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        yield Rig(fake, JulesPlatform(http, fake.api_key, fake.base_url))


async def test_jules_looks_up_the_source_and_asks_for_a_pull_request(rig: Rig) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    assert rig.fake.requests == [
        {
            "prompt": session_request().prompt,
            "title": "Fix the login bug",
            "sourceContext": {
                "source": "sources/github/acme/web-app",
                "githubRepoContext": {"startingBranch": "release"},
            },
            "automationMode": "AUTO_CREATE_PR",
        }
    ]
    [created] = rig.fake.sessions
    assert (session.id, session.url, session.status) == (created["id"], created["url"], "QUEUED")


async def test_jules_remembers_a_repositorys_source(rig: Rig) -> None:
    await rig.platform.create_session(session_request("gh-1"), MemorySteps())
    await rig.platform.create_session(session_request("gh-2"), MemorySteps())
    assert len(rig.fake.source_reads) == 1
    assert len(rig.fake.sessions) == 2


async def test_jules_finds_the_source_past_the_first_page(rig: Rig) -> None:
    rig.fake.repositories = [f"acme/repo-{n}" for n in range(250)] + ["Acme/Web-App"]
    await rig.platform.create_session(session_request(), MemorySteps())
    assert [r.get("pageToken") for r in rig.fake.source_reads] == [None, "100", "200"]
    assert rig.fake.requests[0]["sourceContext"]["source"] == "sources/github/Acme/Web-App"


async def test_jules_repository_without_a_source_is_refused_with_what_to_do(rig: Rig) -> None:
    other = Repository("acme/private", "https://github.com/acme/private", "", "main")
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(session_request(repo=other), MemorySteps())
    assert not raised.value.transient
    assert "no source for acme/private" in raised.value.message
    assert "Jules GitHub app" in raised.value.message
    assert rig.fake.requests == []


async def test_jules_cannot_find_a_create_whose_answer_was_lost(rig: Rig) -> None:
    def created_then_lost(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == "/v1alpha/sessions":
            rig.fake.answer(request)
            raise httpx.ReadTimeout("answer lost", request=request)
        return None

    rig.fake.fault = created_then_lost
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(session_request(), MemorySteps())
    assert raised.value.ambiguous
    assert not rig.platform.can_find
    assert await rig.platform.find_session(session_request()) is None
    assert len(rig.fake.sessions) == 1  # the worker decides whether to send again


@pytest.mark.parametrize(
    ("state", "phase"),
    [
        ("QUEUED", "queued"),
        ("PLANNING", "working"),
        ("AWAITING_PLAN_APPROVAL", "working"),
        ("AWAITING_USER_FEEDBACK", "working"),
        ("IN_PROGRESS", "working"),
        ("PAUSED", "working"),
        ("FAILED", "failed"),
        ("COMPLETED", "finished"),
    ],
)
async def test_jules_maps_each_state(rig: Rig, state: str, phase: str) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    rig.fake.advance(session.id, state=state)
    read = await rig.platform.get_session(session.id)
    assert (read.phase, read.raw_status) == (phase, state)


async def test_jules_reports_the_pull_requests_in_its_outputs(rig: Rig) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    rig.fake.script[session.id] = [
        {"state": "IN_PROGRESS"},
        {"state": "COMPLETED", "pull_requests": [PULL, PULL]},
    ]
    assert (await rig.platform.get_session(session.id)).pull_requests == ()
    done = await rig.platform.get_session(session.id)
    assert (done.phase, done.pull_requests) == ("finished", (PULL,))


async def test_jules_sends_a_follow_up_with_send_message(rig: Rig) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    rig.fake.advance(session.id, state="COMPLETED")
    await rig.platform.send_message(session.id, "also cover Safari", "gh-2")
    assert rig.fake.messages == [(session.id, "also cover Safari")]
    assert (await rig.platform.get_session(session.id)).phase == "working"


async def test_jules_stop_points_at_the_session_and_sends_nothing(rig: Rig) -> None:
    session = await rig.platform.create_session(session_request(), MemorySteps())
    reads = len(rig.fake.reads)
    with pytest.raises(PlatformError) as raised:
        await rig.platform.stop_session(session.id)
    assert not raised.value.transient
    assert f"https://jules.google.com/session/{session.id}" in raised.value.message
    assert len(rig.fake.reads) == reads


@pytest.mark.parametrize(
    "body",
    [
        {"sourceContext": {"source": "sources/github/acme/web-app"}},  # no prompt
        {"prompt": "x", "automationMode": "AUTO_MERGE"},
        {"prompt": "x", "sourceContext": {"githubRepoContext": {"startingBranch": "main"}}},
        {"prompt": "x", "branchName": "b"},  # not a Session field
        {
            "prompt": "x",
            "sourceContext": {
                "source": "sources/github/acme/web-app",
                "githubRepoContext": {"startingBranch": "main", "workingBranch": "b"},
            },
        },
    ],
)
def test_jules_fake_refuses_bodies_the_reference_does_not_allow(body: dict[str, Any]) -> None:
    fake = FakeJules()
    answer = fake(
        httpx.Request(
            "POST",
            f"{fake.base_url}/v1alpha/sessions",
            headers={"x-goog-api-key": fake.api_key},
            content=json.dumps(body),
        )
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
