"""Contract tests: each platform adapter against a fake of its documented HTTP API,
through `httpx.MockTransport`, for every answer its page lists; the two-step platforms'
retry of the second step; dry-run's preview; the factory's refusals."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from bot.adapters.platforms.agen import AgenPlatform
from bot.adapters.platforms.cursor import CursorPlatform
from bot.adapters.platforms.devin import DevinPlatform
from bot.adapters.platforms.dry_run import DryRunPlatform
from bot.adapters.platforms.jules import JulesPlatform
from bot.adapters.platforms.magnet import MagnetPlatform
from bot.adapters.platforms.recoup import RecoupPlatform
from bot.adapters.platforms.tembo import TemboPlatform
from bot.events import Repository
from bot.platforms import platform_factory
from bot.ports import MissingCredentials, PlatformError, SessionRequest
from bot.settings import PlatformEnv, Settings
from tests.support.fakes import agen as agen_fake
from tests.support.fakes import cursor as cursor_fake
from tests.support.fakes import jules as jules_fake
from tests.support.fakes import magnet as magnet_fake
from tests.support.fakes import recoup as recoup_fake
from tests.support.fakes.agen import FakeAgen
from tests.support.fakes.cursor import FakeCursor
from tests.support.fakes.devin import FakeDevin
from tests.support.fakes.jules import FakeJules
from tests.support.fakes.magnet import FakeMagnet
from tests.support.fakes.recoup import FakeRecoup
from tests.support.fakes.tembo import FakeTembo
from tests.support.steps import MemorySteps

pytestmark = pytest.mark.anyio

DEFAULTS = PlatformEnv.of()
REPO = Repository(
    full_name="acme/web-app",
    html_url="https://github.com/acme/web-app",
    clone_url="https://github.com/acme/web-app.git",
    default_branch="main",
)
BRANCH = "tembo/7-fix-the-login-bug"
PLATFORMS = ("tembo", "recoup", "agen", "magnet", "devin", "jules", "cursor")
CREATE_PATHS = {
    "tembo": "/session/create",
    "recoup": "/api/sessions",
    "agen": "/api/v1/sessions",
    "magnet": "/api/sessions",
    "devin": "/v1/sessions",
    "jules": "/v1alpha/sessions",
    "cursor": "/v1/agents",
}
# What the operator must look at, for each platform's refusals.
CREDENTIAL = {
    "tembo": "TEMBO_API_KEY",
    "recoup": "RECOUP_API_KEY",
    "agen": "AGEN_API_KEY",
    "magnet": "MAGNET_SESSION_COOKIE",
    "devin": "DEVIN_API_KEY",
    "jules": "JULES_API_KEY",
    "cursor": "CURSOR_API_KEY",
}
FORBIDDEN = {
    "tembo": "may not create sessions",
    "recoup": "may not create sessions",
    "agen": "sessions:write",
    "magnet": "MAGNET_ORGANIZATION_ID",
    "devin": "may not create sessions",
    "jules": "may not use this API",
    "cursor": "may not launch cloud agents",
}
BASE_URL_VARIABLE = {
    "tembo": "TEMBO_BASE_URL",
    "recoup": "RECOUP_BASE_URL",
    "agen": "AGEN_BASE_URL",
    "magnet": "MAGNET_BASE_URL",
    "devin": "DEVIN_BASE_URL",
    "jules": "JULES_BASE_URL",
    "cursor": "CURSOR_BASE_URL",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def session_request(
    dispatch_id: str = "gh-delivery-1", agent: str | None = None, branch: str = BRANCH
) -> SessionRequest:
    return SessionRequest(
        dispatch_id=dispatch_id,
        title="Fix the login bug",
        prompt=f"Resolve issue #7: Fix the login bug.\n\ntembo-dispatch-id: {dispatch_id}\n",
        repository=REPO,
        target_branch="main",
        branch_name=branch,
        agent=agent,
    )


Fake = FakeTembo | FakeRecoup | FakeAgen | FakeMagnet | FakeDevin | FakeJules | FakeCursor
Fault = Callable[[httpx.Request], httpx.Response | None]


def new_fake(name: str) -> Fake:
    fakes: dict[str, Callable[[], Fake]] = {
        "tembo": FakeTembo,
        "recoup": FakeRecoup,
        "agen": FakeAgen,
        "magnet": FakeMagnet,
        "devin": FakeDevin,
        "jules": FakeJules,
        "cursor": FakeCursor,
    }
    return fakes[name]()


def adapter(name: str, fake: Any, http: httpx.AsyncClient, base_url: str | None = None) -> Any:
    base = base_url or fake.base_url
    if name == "tembo":
        return TemboPlatform(http, fake.api_key, base)
    if name == "recoup":
        return RecoupPlatform(http, fake.api_key, base, DEFAULTS.require("RECOUP_CHAT_URL"))
    if name == "agen":
        return AgenPlatform(http, fake.api_key, base, DEFAULTS.require("AGEN_SESSION_URL"))
    if name == "devin":
        return DevinPlatform(http, fake.api_key, base)
    if name == "jules":
        return JulesPlatform(http, fake.api_key, base)
    if name == "cursor":
        return CursorPlatform(http, fake.api_key, base)
    return MagnetPlatform(
        http, fake.cookie, fake.organization_id, base, DEFAULTS.require("MAGNET_SESSION_URL")
    )


@dataclass
class Rig:
    name: str
    fake: Any
    http: httpx.AsyncClient
    platform: Any
    # The job's journal: shared by every adapter this rig makes, as the store shares it.
    steps: MemorySteps = field(default_factory=MemorySteps)

    def again(self, base_url: str | None = None) -> Any:
        """Another adapter on the same fake: a restarted process, or another base URL."""
        return adapter(self.name, self.fake, self.http, base_url)

    def on_create(self, answer: Fault) -> None:
        """Let `answer` decide the create call; every other call goes through."""

        def fault(request: httpx.Request) -> httpx.Response | None:
            if request.method == "POST" and request.url.path == CREATE_PATHS[self.name]:
                return answer(request)
            return None

        self.fake.fault = fault

    def refuse_credentials(self) -> None:
        if isinstance(self.fake, FakeMagnet):
            self.fake.cookie = "another-browser-session"
        else:
            self.fake.api_key = "another-key"


@pytest.fixture(params=PLATFORMS)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    name = request.param
    fake = new_fake(name)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        yield Rig(name, fake, http, adapter(name, fake, http))


def reply(status: int, body: dict[str, Any], **headers: str) -> Fault:
    return lambda request: httpx.Response(status, json=body, headers=headers)


def raise_(error: type[httpx.TransportError]) -> Fault:
    def fault(request: httpx.Request) -> httpx.Response | None:
        raise error("injected", request=request)

    return fault


def platform_error(name: str, status: int, message: str) -> dict[str, Any]:
    """An error body in the shape each fake (and so each API, as far as known) uses."""
    if name == "agen":
        return json.loads(agen_fake.failure(status, message).content)
    if name == "recoup":
        return json.loads(recoup_fake.failure(status, message).content)
    if name == "devin":
        return {"detail": message}
    if name == "jules":
        return json.loads(jules_fake.failure(status, message).content)
    if name == "cursor":
        return json.loads(cursor_fake.failure(status, "error", message).content)
    return {"error": message}


# ---------------------------------------------------------------------------
# Success: what is sent, and the link that comes back


async def test_tembo_sends_the_documented_body_and_links_html_url() -> None:
    fake = FakeTembo()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        session = await adapter("tembo", fake, http).create_session(
            session_request(), MemorySteps()
        )
    assert fake.requests == [
        {
            "prompt": session_request().prompt,
            "repositories": [REPO.html_url],
            "targetBranch": "main",
            "branchName": BRANCH,
        }
    ]
    assert session.id == fake.sessions[0]["id"]
    assert session.url == fake.sessions[0]["htmlUrl"]


async def test_recoup_creates_the_session_clones_the_issues_repository_then_prompts() -> None:
    fake = FakeRecoup()
    steps = MemorySteps()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        session = await adapter("recoup", fake, http).create_session(session_request(), steps)
    [created] = fake.sessions
    [chat] = fake.chats
    [workflow] = fake.workflows
    assert fake.requests[:2] == [
        ("POST", "/api/sessions", {"title": "Fix the login bug"}),
        ("POST", "/api/sandbox", {"repoUrl": REPO.html_url, "sessionId": created["id"]}),
    ]
    assert fake.requests[2][:2] == ("POST", "/api/chat")
    assert fake.sandboxes == {created["id"]: REPO.html_url}
    assert (workflow["chatId"], workflow["sessionId"]) == (chat["id"], created["id"])
    [message] = workflow["messages"]
    assert message["role"] == "user"
    assert message["parts"] == [{"type": "text", "text": session_request().prompt}]
    assert [key for key, _ in steps.writes] == [
        "recoup.chat",
        "recoup.session",
        "recoup.sandbox",
        "recoup.prompt",
    ]
    assert session.notes == ()
    assert session.id == created["id"]
    assert session.url == f"https://chat.recoupable.com/sessions/{created['id']}/chats/{chat['id']}"
    assert session.status == "running"


async def test_agen_creates_the_session_then_sends_the_prompt_tagged_with_the_dispatch() -> None:
    fake = FakeAgen()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        session = await adapter("agen", fake, http).create_session(
            session_request(agent="claude-sonnet-4-5"), MemorySteps()
        )
    [created] = fake.sessions
    assert fake.requests == [
        (
            "POST",
            "/api/v1/sessions",
            {"branch_name": BRANCH, "auto_commit": True, "model": "claude-sonnet-4-5"},
        ),
        (
            "POST",
            f"/api/v1/sessions/{created['id']}/messages",
            {"message": session_request().prompt, "client_id": "gh-delivery-1"},
        ),
    ]
    assert session.id == created["id"]
    assert session.url == f"https://app.agenhq.com/sessions/{created['id']}"


async def test_magnet_creates_with_the_browser_cookie_and_links_the_session() -> None:
    fake = FakeMagnet()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        session = await adapter("magnet", fake, http).create_session(
            session_request(), MemorySteps()
        )
    assert fake.requests == [
        (
            "POST",
            "/api/sessions",
            {
                "organizationId": "org_abc123",
                "initialMessage": session_request().prompt,
                "repoUrl": REPO.html_url,
                "baseBranch": "main",
            },
        )
    ]
    assert session.id == fake.sessions[0]["id"]
    assert session.url == f"https://magnet.run/sessions/{session.id}"
    assert session.status == "active"


async def test_magnet_accepts_the_cookie_pasted_with_its_name() -> None:
    fake = FakeMagnet()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        platform = MagnetPlatform(http, f"__session={fake.cookie}", "org_abc123", fake.base_url)
        session = await platform.create_session(session_request(), MemorySteps())
    assert session.id == fake.sessions[0]["id"]


# ---------------------------------------------------------------------------
# Every error class, on every platform


async def test_a_400_shows_the_platforms_own_words(rig: Rig) -> None:
    rig.on_create(reply(400, platform_error(rig.name, 400, "the repository is archived")))
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(session_request(), rig.steps)
    assert raised.value.status == 400
    assert not raised.value.transient
    assert "the repository is archived" in raised.value.message


async def test_a_refused_credential_is_permanent_and_names_the_variable(rig: Rig) -> None:
    rig.refuse_credentials()
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(session_request(), rig.steps)
    assert raised.value.status == 401
    assert not raised.value.transient
    assert CREDENTIAL[rig.name] in raised.value.message


async def test_a_403_is_permanent_and_says_what_is_missing(rig: Rig) -> None:
    rig.on_create(reply(403, platform_error(rig.name, 403, "Forbidden")))
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(session_request(), rig.steps)
    assert raised.value.status == 403
    assert not raised.value.transient
    assert FORBIDDEN[rig.name] in raised.value.message


async def test_a_404_points_at_the_base_url(rig: Rig) -> None:
    platform = rig.again(base_url=f"{rig.fake.base_url}/v9")
    with pytest.raises(PlatformError) as raised:
        await platform.create_session(session_request(), MemorySteps())
    assert raised.value.status == 404
    assert not raised.value.transient
    assert BASE_URL_VARIABLE[rig.name] in raised.value.message


async def test_a_429_is_retried_after_the_platforms_delay(rig: Rig) -> None:
    rig.on_create(reply(429, platform_error(rig.name, 429, "slow down"), **{"Retry-After": "7"}))
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(session_request(), rig.steps)
    assert raised.value.transient
    assert raised.value.retry_after == 7.0
    assert not raised.value.ambiguous


async def test_a_500_is_transient(rig: Rig) -> None:
    rig.on_create(reply(500, platform_error(rig.name, 500, "Internal server error")))
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(session_request(), rig.steps)
    assert raised.value.transient
    assert not raised.value.ambiguous


async def test_a_timeout_after_sending_is_transient_and_ambiguous(rig: Rig) -> None:
    rig.on_create(raise_(httpx.ReadTimeout))
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(session_request(), rig.steps)
    assert raised.value.transient
    assert raised.value.ambiguous


async def test_an_unreachable_platform_is_transient_and_not_ambiguous(rig: Rig) -> None:
    rig.on_create(raise_(httpx.ConnectError))
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(session_request(), rig.steps)
    assert raised.value.transient
    assert not raised.value.ambiguous


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (400, "MAGNET_SESSION_COOKIE must hold the __session cookie of a browser"),
        (401, "sign in to magnet.run and copy a fresh __session cookie"),
        (403, "no access to MAGNET_ORGANIZATION_ID (org_abc123)"),
    ],
)
async def test_magnet_refusals_tell_the_operator_what_to_do(status: int, words: str) -> None:
    fake = FakeMagnet(fault=reply(status, {"error": "nope"}))
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        with pytest.raises(PlatformError) as raised:
            await adapter("magnet", fake, http).create_session(session_request(), MemorySteps())
    assert raised.value.status == status
    assert not raised.value.transient
    assert words in raised.value.message


# ---------------------------------------------------------------------------
# Two steps, one unit: the prompt step is retried without a second session


def fail_prompt_once(rig: Rig, answer: Fault) -> None:
    failures = [answer]

    def fault(request: httpx.Request) -> httpx.Response | None:
        is_prompt = request.url.path.endswith("/messages") or request.url.path == "/api/chat"
        if request.method == "POST" and is_prompt and failures:
            return failures.pop()(request)
        return None

    rig.fake.fault = fault


def prompts_sent(rig: Rig) -> list[str]:
    if isinstance(rig.fake, FakeRecoup):
        return [m["parts"][0]["text"] for w in rig.fake.workflows for m in w["messages"]]
    return [p for s in rig.fake.sessions for p in rig.fake.prompts(s["id"])]


@pytest.mark.parametrize("rig", ["recoup", "agen"], indirect=True)
async def test_a_failed_prompt_is_retried_without_a_second_session(rig: Rig) -> None:
    fail_prompt_once(rig, reply(503, platform_error(rig.name, 503, "busy")))
    request = session_request()
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(request, rig.steps)
    assert raised.value.transient
    assert "was created but" in raised.value.message
    # The worker looks before it creates again; the half-made session is not "found"...
    assert await rig.platform.find_session(request) is None
    # ...so it calls create_session, which only sends the prompt.
    session = await rig.platform.create_session(request, rig.steps)
    assert [s["id"] for s in rig.fake.sessions] == [session.id]
    assert prompts_sent(rig) == [request.prompt]


@pytest.mark.parametrize("rig", ["recoup", "agen"], indirect=True)
async def test_a_refused_prompt_is_permanent_and_links_the_session(rig: Rig) -> None:
    fail_prompt_once(rig, reply(400, platform_error(rig.name, 400, "prompt too long")))
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(session_request(), rig.steps)
    assert not raised.value.transient
    assert rig.fake.sessions[0]["id"] in raised.value.message


@pytest.mark.parametrize("rig", ["agen"], indirect=True)
async def test_agen_prompt_whose_answer_was_lost_is_not_sent_twice(rig: Rig) -> None:
    def delivered_then_lost(request: httpx.Request) -> httpx.Response | None:
        rig.fake.answer(request)
        raise httpx.ReadTimeout("answer lost", request=request)

    fail_prompt_once(rig, delivered_then_lost)
    request = session_request()
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(request, rig.steps)
    assert raised.value.ambiguous
    session = await rig.platform.create_session(request, rig.steps)
    assert prompts_sent(rig) == [request.prompt]
    assert [s["id"] for s in rig.fake.sessions] == [session.id]


@pytest.mark.parametrize("rig", ["agen"], indirect=True)
@pytest.mark.parametrize("looks_first", [True, False])
async def test_agen_session_unprompted_before_a_restart_is_prompted_not_duplicated(
    rig: Rig, looks_first: bool
) -> None:
    fail_prompt_once(rig, reply(503, platform_error(rig.name, 503, "busy")))
    request = session_request()
    with pytest.raises(PlatformError):
        await rig.platform.create_session(request, rig.steps)
    restarted = rig.again()
    if looks_first:
        assert await restarted.find_session(request) is None
    # Without a lookup is the worker's way after a definite 5xx (no create of unknown
    # outcome): in a new process only the journal's step knows the session exists.
    session = await restarted.create_session(request, rig.steps)
    assert [s["id"] for s in rig.fake.sessions] == [session.id]
    assert prompts_sent(rig) == [request.prompt]


class ProcessDied(BaseException):
    """The worker's process ends mid-call (kill -9): nothing after it runs."""


@pytest.mark.parametrize("rig", ["agen"], indirect=True)
async def test_agen_process_dying_before_the_prompt_resumes_from_the_journal(rig: Rig) -> None:
    def die(request: httpx.Request) -> httpx.Response | None:
        raise ProcessDied

    fail_prompt_once(rig, die)
    request = session_request()
    with pytest.raises(ProcessDied):
        await rig.platform.create_session(request, rig.steps)
    [ours] = rig.fake.sessions
    # Before the retry, a later dispatch for the same issue (same branch) made a session
    # and died too: newest first in Agen's list, and just as unprompted as ours.
    rig.fake.create({"branch_name": BRANCH, "auto_commit": True})
    # The retry runs on another replica: a new adapter, the same journal (the store's).
    replica = rig.again()
    assert await replica.find_session(request) is None
    session = await replica.create_session(request, rig.steps)
    assert session.id == ours["id"]
    assert len(rig.fake.sessions) == 2  # no session made by the retry
    assert rig.fake.prompts(ours["id"]) == [request.prompt]
    assert prompts_sent(rig) == [request.prompt]


@pytest.mark.parametrize("rig", ["agen"], indirect=True)
async def test_agen_lost_create_answer_is_reconciled_not_repeated(rig: Rig) -> None:
    def created_then_lost(request: httpx.Request) -> httpx.Response | None:
        rig.fake.answer(request)
        raise httpx.ReadTimeout("answer lost", request=request)

    rig.on_create(created_then_lost)
    request = session_request()
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(request, rig.steps)
    assert raised.value.ambiguous
    rig.fake.fault = None
    assert await rig.platform.find_session(request) is None
    session = await rig.platform.create_session(request, rig.steps)
    assert [s["id"] for s in rig.fake.sessions] == [session.id]
    assert prompts_sent(rig) == [request.prompt]


@pytest.mark.parametrize("rig", ["agen"], indirect=True)
async def test_agen_finds_a_started_session_by_branch_and_dispatch(rig: Rig) -> None:
    mine = await rig.platform.create_session(session_request(), rig.steps)
    await rig.platform.create_session(
        session_request("gh-later"), rig.steps
    )  # same issue, same branch
    assert await rig.again().find_session(session_request()) == mine


def fail_once(rig: Rig, path: str, answer: Fault) -> None:
    failures = [answer]

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == path and failures:
            return failures.pop()(request)
        return None

    rig.fake.fault = fault


@pytest.mark.parametrize("rig", ["recoup"], indirect=True)
@pytest.mark.parametrize("step", ["/api/sandbox", "/api/chat"])
async def test_recoup_resumes_at_the_failed_step_on_another_replica(rig: Rig, step: str) -> None:
    fail_once(rig, step, reply(503, platform_error("recoup", 503, "busy")))
    request = session_request()
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(request, rig.steps)
    assert raised.value.transient and not raised.value.ambiguous
    # Another process, the same journal: no second session, no second sandbox.
    replica = rig.again()
    assert await replica.find_session(request) is None
    session = await replica.create_session(request, rig.steps)
    assert [s["id"] for s in rig.fake.sessions] == [session.id]
    asked = [path for method, path, _ in rig.fake.requests if path == "/api/sandbox"]
    assert len(asked) == (2 if step == "/api/sandbox" else 1)
    assert rig.fake.sandbox_calls == 1
    assert prompts_sent(rig) == [request.prompt]
    # Every step done: a retry after a crash returns the session and sends nothing.
    sent = len(rig.fake.requests)
    assert await rig.again().create_session(request, rig.steps) == session
    assert len(rig.fake.requests) == sent


@pytest.mark.parametrize("rig", ["recoup"], indirect=True)
async def test_recoup_sandbox_whose_answer_was_lost_is_safe_to_ask_again(rig: Rig) -> None:
    def made_then_lost(request: httpx.Request) -> httpx.Response | None:
        rig.fake.answer(request)
        raise httpx.ReadTimeout("answer lost", request=request)

    fail_once(rig, "/api/sandbox", made_then_lost)
    request = session_request()
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(request, rig.steps)
    assert raised.value.transient and not raised.value.ambiguous
    session = await rig.again().create_session(request, rig.steps)
    assert list(rig.fake.sandboxes) == [session.id]
    assert prompts_sent(rig) == [request.prompt]


@pytest.mark.parametrize("rig", ["recoup"], indirect=True)
async def test_recoup_prompt_whose_answer_was_lost_is_ambiguous(rig: Rig) -> None:
    def started_then_lost(request: httpx.Request) -> httpx.Response | None:
        rig.fake.answer(request)
        raise httpx.ReadTimeout("answer lost", request=request)

    fail_once(rig, "/api/chat", started_then_lost)
    request = session_request()
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(request, rig.steps)
    assert raised.value.ambiguous
    # Sent again while the agent runs: Recoup hands back the running workflow.
    session = await rig.platform.create_session(request, rig.steps)
    assert prompts_sent(rig) == [request.prompt]
    assert [s["id"] for s in rig.fake.sessions] == [session.id]


@pytest.mark.parametrize("rig", ["recoup"], indirect=True)
async def test_recoup_waits_for_a_sandbox_not_yet_initialized(rig: Rig) -> None:
    fail_once(
        rig, "/api/chat", reply(400, platform_error("recoup", 400, "Sandbox not initialized"))
    )
    request = session_request()
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(request, rig.steps)
    assert raised.value.transient
    assert "not active yet" in raised.value.message
    await rig.platform.create_session(request, rig.steps)
    assert prompts_sent(rig) == [request.prompt]


@pytest.mark.parametrize("rig", ["recoup"], indirect=True)
async def test_recoup_private_repository_needs_recoups_token(rig: Rig) -> None:
    private = dataclasses.replace(REPO, private=True)
    request = dataclasses.replace(session_request(), repository=private)
    session = await rig.platform.create_session(request, rig.steps)
    assert any("server-side GitHub token" in note for note in session.notes)
    fail_once(rig, "/api/sandbox", reply(502, platform_error("recoup", 502, "Failed")))
    with pytest.raises(PlatformError) as raised:
        await rig.platform.create_session(session_request("gh-2"), MemorySteps())
    assert "server-side GitHub token" in raised.value.message


# ---------------------------------------------------------------------------
# Finding a session whose create answer was lost


def create_then_lose_the_answer(rig: Rig) -> None:
    def fault(request: httpx.Request) -> httpx.Response | None:
        if isinstance(rig.fake, FakeTembo):
            rig.fake.create(json.loads(request.content))
        else:
            rig.fake.answer(request)
        raise httpx.ReadTimeout("answer lost", request=request)

    rig.on_create(fault)


@pytest.mark.parametrize("rig", ["tembo", "magnet"], indirect=True)
async def test_a_session_whose_answer_was_lost_is_found_by_its_dispatch_id(rig: Rig) -> None:
    request = session_request()
    create_then_lose_the_answer(rig)
    with pytest.raises(PlatformError):
        await rig.platform.create_session(request, rig.steps)
    rig.fake.fault = None
    await rig.platform.create_session(session_request("gh-later"), rig.steps)
    found = await rig.platform.find_session(request)
    assert found is not None
    assert found.id == rig.fake.sessions[0]["id"]
    assert found.url.endswith(found.id)


async def test_tembo_looks_past_the_first_page_of_sessions() -> None:
    request = session_request()
    fake = FakeTembo()
    fake.create({"prompt": request.prompt})
    for number in range(150):  # a burst of later dispatches
        fake.create({"prompt": f"another issue\n\ntembo-dispatch-id: gh-{number}\n"})
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        found = await adapter("tembo", fake, http).find_session(request)
    assert found is not None
    assert found.id == fake.sessions[0]["id"]


async def test_tembo_list_items_without_html_url_get_the_app_link() -> None:
    request = session_request()
    item = {"id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "description": request.prompt}
    fake = FakeTembo(fault=reply(200, {"issues": [item], "meta": {}}))
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        found = await adapter("tembo", fake, http).find_session(request)
    assert found is not None
    assert found.url == f"https://app.tembo.io/sessions/{item['id']}"


async def test_magnet_finds_nothing_when_its_reads_refuse_the_cookie() -> None:
    fake = FakeMagnet()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        platform = adapter("magnet", fake, http)
        await platform.create_session(session_request(), MemorySteps())
        fake.reads_accept_cookie = False
        assert await platform.find_session(session_request()) is None


async def test_magnet_reads_with_its_api_key_where_the_cookie_is_refused() -> None:
    fake = FakeMagnet(reads_accept_cookie=False)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        platform = MagnetPlatform(
            http, fake.cookie, fake.organization_id, fake.base_url, api_key=fake.api_key
        )
        session = await platform.create_session(session_request(), MemorySteps())
        assert await platform.find_session(session_request()) == session
        assert (await platform.get_session(session.id)).phase == "working"


async def test_magnet_names_the_api_key_when_its_read_is_refused() -> None:
    fake = FakeMagnet(reads_accept_cookie=False)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        platform = MagnetPlatform(
            http, fake.cookie, fake.organization_id, fake.base_url, api_key="a-revoked-key"
        )
        session = await platform.create_session(session_request(), MemorySteps())
        with pytest.raises(PlatformError) as raised:
            await platform.get_session(session.id)
    assert raised.value.status == 401 and not raised.value.transient
    assert "MAGNET_API_KEY" in raised.value.message
    assert "MAGNET_SESSION_COOKIE" not in raised.value.message


# ---------------------------------------------------------------------------
# dry-run


async def test_dry_run_sends_nothing_and_previews_the_tembo_request() -> None:
    def nothing_leaves(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"dry-run sent {request.method} {request.url}")

    request = session_request(agent="claudeCode:claude-opus-4-5")
    async with httpx.AsyncClient(transport=httpx.MockTransport(nothing_leaves)) as http:
        tembo = TemboPlatform(http, "tembo-secret-key", "https://api.tembo.io")
        platform = DryRunPlatform(tembo)
        session = await platform.create_session(request, MemorySteps())
        assert await platform.find_session(request) is None
    assert (session.id, session.url, session.status) == ("dry-run-gh-delivery-1", "", "dry-run")
    assert session.preview is not None
    assert "tembo-secret-key" not in session.preview
    preview = json.loads(session.preview)
    assert preview["method"] == "POST"
    assert preview["url"] == "https://api.tembo.io/session/create"
    assert preview["headers"]["Authorization"].startswith("Bearer <")
    assert preview["headers"]["Content-Type"] == "application/json"
    assert preview["body"] == tembo.body(request)


# ---------------------------------------------------------------------------
# The factory


def factory(**variables: str) -> Callable[[str], Any]:
    unused = httpx.MockTransport(lambda request: httpx.Response(500))
    settings = Settings(platform_env=PlatformEnv.of(**variables))
    return platform_factory(settings, httpx.AsyncClient(transport=unused))


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("tembo", "TEMBO_API_KEY"),
        ("recoup", "RECOUP_API_KEY"),
        ("agen", "AGEN_API_KEY"),
        ("devin", "DEVIN_API_KEY"),
        ("jules", "JULES_API_KEY"),
        ("cursor", "CURSOR_API_KEY"),
    ],
)
def test_a_platform_without_its_key_names_the_variable(name: str, variable: str) -> None:
    with pytest.raises(MissingCredentials, match=f"^{variable} is not set"):
        factory()(name)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"MAGNET_ORGANIZATION_ID": "org_1"}, "MAGNET_SESSION_COOKIE is not set"),
        ({"MAGNET_SESSION_COOKIE": "c"}, "MAGNET_ORGANIZATION_ID is not set"),
        ({}, "MAGNET_SESSION_COOKIE and MAGNET_ORGANIZATION_ID are not set"),
    ],
)
def test_magnet_without_a_browser_session_says_why_one_is_needed(
    settings: dict[str, str], named: str
) -> None:
    with pytest.raises(MissingCredentials) as raised:
        factory(**settings)("magnet")
    message = str(raised.value)
    assert message.startswith(named)
    assert "does not let API keys create sessions" in message
    assert "__session cookie" in message


def test_dry_run_needs_no_credentials() -> None:
    assert isinstance(factory()("dry-run"), DryRunPlatform)


def test_an_unknown_platform_is_refused() -> None:
    with pytest.raises(MissingCredentials, match="'gitlab' is not available"):
        factory()("gitlab")


def test_each_platform_is_built_once_so_its_memory_outlives_a_job() -> None:
    make = factory(
        TEMBO_API_KEY="t",
        RECOUP_API_KEY="r",
        AGEN_API_KEY="a",
        MAGNET_SESSION_COOKIE="c",
        MAGNET_ORGANIZATION_ID="org_1",
        DEVIN_API_KEY="d",
        JULES_API_KEY="j",
        CURSOR_API_KEY="c",
    )
    kinds = {
        "tembo": TemboPlatform,
        "recoup": RecoupPlatform,
        "agen": AgenPlatform,
        "magnet": MagnetPlatform,
        "devin": DevinPlatform,
        "jules": JulesPlatform,
        "cursor": CursorPlatform,
        "dry-run": DryRunPlatform,
    }
    for name, kind in kinds.items():
        assert isinstance(make(name), kind)
        assert make(name) is make(name)


# ---------------------------------------------------------------------------
# The fakes hold the adapters to the pages


@pytest.mark.parametrize(
    ("fake", "path", "headers", "body"),
    [
        (FakeRecoup(), "/api/sessions", {"x-api-key": "recoup-test-key"}, {"repoOwner": "x"}),
        (FakeRecoup(), "/api/sessions", {"x-api-key": "recoup-test-key"}, {"artistId": "y"}),
        (
            FakeRecoup(),
            "/api/sandbox",
            {"x-api-key": "recoup-test-key"},
            {"repoUrl": "https://gitlab.com/acme/web-app"},
        ),
        (FakeRecoup(), "/api/chat", {"x-api-key": "recoup-test-key"}, {"messages": []}),
        (FakeAgen(), "/api/v1/sessions", {"x-api-key": "agen-test-key"}, {"auto_commit": True}),
        (FakeAgen(), "/api/v1/sessions", {"x-api-key": "agen-test-key"}, {"branch_name": 3}),
        (
            FakeAgen(),
            "/api/v1/sessions",
            {"x-api-key": "agen-test-key"},
            {"branch_name": "b", "repo": "r"},
        ),
        (FakeMagnet(), "/api/sessions", {"cookie": "__session=magnet-browser-session"}, {}),
        (
            FakeMagnet(),
            "/api/sessions",
            {"cookie": "__session=magnet-browser-session"},
            {"organizationId": "org_abc123", "branchName": "b"},
        ),
    ],
)
def test_fakes_refuse_bodies_their_page_does_not_allow(
    fake: Any, path: str, headers: dict[str, str], body: dict[str, Any]
) -> None:
    answer = fake(httpx.Request("POST", f"{fake.base_url}{path}", headers=headers, json=body))
    assert answer.status_code == 400
    assert answer.json()


def test_magnet_fake_refuses_an_api_key_for_creating() -> None:
    fake = FakeMagnet()
    request = httpx.Request(
        "POST",
        f"{fake.base_url}/api/sessions",
        headers={"x-api-key": "mk_live"},
        json={"organizationId": fake.organization_id},
    )
    assert fake(request).status_code == 400
    assert magnet_fake.failure(400, "x").json() == {"error": "x"}


def no_search(request: httpx.Request) -> httpx.Response | None:
    if request.url.path == "/session/search":
        return httpx.Response(404, json={"error": "Not found"})
    return None


async def test_tembo_lookup_reads_back_to_the_first_send_however_deep() -> None:
    """Where Tembo has no search, the list is read back to the first send."""
    clock = [1_800_000_000.0]
    fake = FakeTembo(clock=lambda: clock[0], fault=no_search)
    request = dataclasses.replace(session_request("gh-lost"), first_sent_at=clock[0])
    fake.create({"prompt": request.prompt})  # the session whose answer was lost...
    for n in range(700):  # ...buried under a burst of others
        clock[0] += 0.1
        fake.create({"prompt": f"other {n}"})
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        tembo = TemboPlatform(http, fake.api_key, fake.base_url)
        found = await tembo.find_session(request)
        blind = await tembo.find_session(session_request("gh-lost"))  # send time unknown
        missing = dataclasses.replace(request, dispatch_id="gh-never-sent")
        assert await tembo.find_session(missing) is None
    assert found is not None and found.id == fake.sessions[0]["id"]
    assert blind is None  # five pages only
    assert tembo.last_lookup == "list"


async def test_tembo_looks_a_lost_answer_up_with_search_before_any_list() -> None:
    fake = FakeTembo()
    request = session_request("gh-lost")
    fake.create({"prompt": request.prompt})
    for n in range(300):
        fake.create({"prompt": f"other {n}"})
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        tembo = TemboPlatform(http, fake.api_key, fake.base_url)
        found = await tembo.find_session(request)
        assert tembo.last_lookup == "search"
        assert await tembo.find_session(session_request("gh-never-sent")) is None
    assert found is not None and found.id == fake.sessions[0]["id"]
    assert ("GET", "/session/list") not in fake.calls
    assert fake.calls.count(("GET", "/session/search")) == 2


def v1_tembo(fake: FakeTembo, http: httpx.AsyncClient) -> TemboPlatform:
    return TemboPlatform(http, fake.api_key, fake.base_url, api="v1")


async def test_tembo_v1_creates_with_our_id_on_the_enabled_repository() -> None:
    fake = FakeTembo()
    repo_id = fake.enable(REPO.full_name)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        tembo = v1_tembo(fake, http)
        session = await tembo.create_session(session_request(), MemorySteps())
        await tembo.create_session(session_request("gh-2"), MemorySteps())
    assert fake.requests[0] == {
        "id": tembo.v1_id("gh-delivery-1"),
        "description": session_request().prompt,
        "codeRepositoryIds": [repo_id],
        "baseBranch": "main",
        "targetBranch": "main",
        "branchName": BRANCH,
    }
    assert session.id == tembo.v1_id("gh-delivery-1")
    assert session.url == f"https://app.tembo.io/sessions/{session.id}"
    # The repository's id is asked once, then kept.
    assert fake.calls.count(("GET", "/v1/repositories")) == 1
    assert not [call for call in fake.calls if call[1].startswith("/session/")]


async def test_tembo_v1_lost_answer_is_settled_by_reading_our_id() -> None:
    fake = FakeTembo()
    fake.enable(REPO.full_name)
    request = session_request()

    def created_then_lost(http_request: httpx.Request) -> httpx.Response | None:
        if http_request.url.path == "/v1/sessions" and http_request.method == "POST":
            fake.create_v1(json.loads(http_request.content))
            raise httpx.ReadTimeout("answer lost", request=http_request)
        return None

    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        tembo = v1_tembo(fake, http)
        assert await tembo.find_session(request) is None  # 404: never made, safe to send
        fake.fault = created_then_lost
        with pytest.raises(PlatformError) as raised:
            await tembo.create_session(request, MemorySteps())
        assert raised.value.ambiguous
        fake.fault = None
        found = await tembo.find_session(request)
        # Sent again anyway (another replica that did not look): 409, and it is ours.
        again = await v1_tembo(fake, http).create_session(request, MemorySteps())
    assert found is not None and found.id == tembo.v1_id(request.dispatch_id)
    assert again == found
    assert len(fake.sessions) == 1
    assert not [call for call in fake.calls if call[1].startswith("/session/")]


async def test_tembo_v1_without_the_repository_enabled_says_so() -> None:
    fake = FakeTembo()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        with pytest.raises(PlatformError) as raised:
            await v1_tembo(fake, http).create_session(session_request(), MemorySteps())
    assert not raised.value.transient
    assert "no enabled repository acme/web-app" in raised.value.message


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "x"},
        {"description": ""},
        {"description": "x", "repositories": ["https://github.com/a/b"]},
        {"description": "x", "id": "gh-1"},
        {"description": "x", "codeRepositoryIds": ["not-a-uuid"]},
    ],
)
def test_tembo_v1_fake_refuses_what_the_schema_refuses(body: dict[str, Any]) -> None:
    fake = FakeTembo()
    answer = fake(
        httpx.Request(
            "POST",
            f"{fake.base_url}/v1/sessions",
            headers={"Authorization": f"Bearer {fake.api_key}"},
            json=body,
        )
    )
    assert answer.status_code == 400
