"""Contract tests for following a session after it starts (issue 10): each adapter's
`get_session`, `send_message` and `stop_session` against its platform's contract fake,
through `httpx.MockTransport`.

What each platform documents, and so offers, is in the adapters' docstrings; the flags
say the same, and a call whose flag is False fails for good without sending anything.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio
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
from bot.ports import PlatformError, SessionRequest, SessionState
from tests.support.fakes import agen as agen_fake
from tests.support.fakes import cursor as cursor_fake
from tests.support.fakes import jules as jules_fake
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

REPO = Repository(
    full_name="acme/web-app",
    html_url="https://github.com/acme/web-app",
    clone_url="https://github.com/acme/web-app.git",
    default_branch="main",
)
PULL = "https://github.com/acme/web-app/pull/42"
FOLLOWED = ("tembo", "recoup", "agen", "magnet", "devin", "jules", "cursor")
Fault = Callable[[httpx.Request], httpx.Response | None]


def session_request(dispatch_id: str = "gh-delivery-1") -> SessionRequest:
    return SessionRequest(
        dispatch_id=dispatch_id,
        title="Fix the login bug",
        prompt=f"Resolve issue #7: Fix the login bug.\n\ndispatch-id: {dispatch_id}\n",
        repository=REPO,
        target_branch="main",
        branch_name="tembo/7-fix-the-login-bug",
    )


def new_fake(name: str) -> Any:
    kinds: dict[str, Callable[[], Any]] = {
        "tembo": FakeTembo,
        "recoup": FakeRecoup,
        "agen": FakeAgen,
        "magnet": FakeMagnet,
        "devin": FakeDevin,
        "jules": FakeJules,
        "cursor": FakeCursor,
    }
    return kinds[name]()


def adapter(name: str, fake: Any, http: httpx.AsyncClient) -> Any:
    if name == "tembo":
        return TemboPlatform(http, fake.api_key, fake.base_url)
    if name == "recoup":
        return RecoupPlatform(http, fake.api_key, fake.base_url)
    if name == "agen":
        return AgenPlatform(http, fake.api_key, fake.base_url)
    if name == "devin":
        return DevinPlatform(http, fake.api_key, fake.base_url)
    if name == "jules":
        return JulesPlatform(http, fake.api_key, fake.base_url)
    if name == "cursor":
        return CursorPlatform(http, fake.api_key, fake.base_url)
    return MagnetPlatform(http, fake.cookie, fake.organization_id, fake.base_url)


@dataclass
class Rig:
    name: str
    fake: Any
    platform: Any
    session_id: str = ""

    async def start(self) -> str:
        self.session_id = (await self.platform.create_session(session_request(), MemorySteps())).id
        return self.session_id

    def requests_sent(self) -> int:
        if isinstance(self.fake, FakeTembo):
            return len(self.fake.requests) + len(self.fake.reads)
        return len(self.fake.requests)

    def on_read(self, answer: Fault) -> None:
        """Let `answer` decide every read of the session; other calls go through."""

        def fault(request: httpx.Request) -> httpx.Response | None:
            if request.method == "GET" and self.session_id in request.url.path:
                return answer(request)
            return None

        self.fake.fault = fault


async def make_rig(name: str) -> AsyncIterator[Rig]:
    fake = new_fake(name)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        yield Rig(name, fake, adapter(name, fake, http))


@pytest.fixture(params=FOLLOWED)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    async for made in make_rig(request.param):
        yield made


@pytest.fixture
async def tembo() -> AsyncIterator[Rig]:
    async for made in make_rig("tembo"):
        yield made


@pytest.fixture
async def recoup() -> AsyncIterator[Rig]:
    async for made in make_rig("recoup"):
        yield made


@pytest.fixture
async def agen() -> AsyncIterator[Rig]:
    async for made in make_rig("agen"):
        yield made


@pytest.fixture
async def magnet() -> AsyncIterator[Rig]:
    async for made in make_rig("magnet"):
        yield made


def reply(status: int, body: dict[str, Any], **headers: str) -> Fault:
    return lambda request: httpx.Response(status, json=body, headers=headers)


# ---------------------------------------------------------------------------
# What each platform offers


@pytest.mark.parametrize(
    ("kind", "flags"),
    [
        (TemboPlatform, (True, True, True)),
        (RecoupPlatform, (True, True, True)),
        (AgenPlatform, (True, True, False)),
        (MagnetPlatform, (True, False, False)),
        (DevinPlatform, (True, True, True)),
        (JulesPlatform, (True, True, False)),
        (CursorPlatform, (True, True, True)),
        (DryRunPlatform, (False, False, False)),
    ],
)
def test_flags_say_what_each_platform_documents(kind: Any, flags: tuple[bool, ...]) -> None:
    assert (kind.can_read, kind.can_message, kind.can_stop) == flags


async def test_what_a_platform_does_not_offer_fails_for_good_and_sends_nothing(
    rig: Rig,
) -> None:
    await rig.start()
    before = rig.requests_sent()
    calls = {
        "can_read": lambda: rig.platform.get_session(rig.session_id),
        "can_message": lambda: rig.platform.send_message(rig.session_id, "also fix x", "d-2"),
        "can_stop": lambda: rig.platform.stop_session(rig.session_id),
    }
    for flag, call in calls.items():
        if getattr(rig.platform, flag):
            continue
        with pytest.raises(PlatformError) as raised:
            await call()
        assert not raised.value.transient
        assert raised.value.message.startswith(f"{rig.name.capitalize()} does not offer")
    assert rig.requests_sent() == before


async def test_dry_run_follows_nothing_and_sends_nothing() -> None:
    def nothing_leaves(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"dry-run sent {request.method} {request.url}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(nothing_leaves)) as http:
        platform = DryRunPlatform(TemboPlatform(http, "key", "https://api.tembo.io"))
        session = await platform.create_session(session_request(), MemorySteps())
        for call in (
            platform.get_session(session.id),
            platform.send_message(session.id, "more", "d-2"),
            platform.stop_session(session.id),
        ):
            with pytest.raises(PlatformError) as raised:
                await call
            assert not raised.value.transient
            assert raised.value.message.startswith("dry-run does not offer")


# ---------------------------------------------------------------------------
# Reading: error classes, on every platform that reads


async def test_a_refused_credential_on_a_read_is_permanent(rig: Rig) -> None:
    await rig.start()
    if isinstance(rig.fake, FakeMagnet):
        rig.fake.cookie = "another-browser-session"
    else:
        rig.fake.api_key = "another-key"
    with pytest.raises(PlatformError) as raised:
        await rig.platform.get_session(rig.session_id)
    assert raised.value.status == 401
    assert not raised.value.transient
    variable = {"magnet": "MAGNET_SESSION_COOKIE"}.get(rig.name, f"{rig.name.upper()}_API_KEY")
    assert variable in raised.value.message


def error_body(name: str, status: int, message: str) -> dict[str, Any]:
    if name == "agen":
        return dict(agen_fake.failure(status, message).json())
    if name == "recoup":
        return dict(recoup_fake.failure(status, message).json())
    if name == "devin":
        return {"detail": message}
    if name == "jules":
        return dict(jules_fake.failure(status, message).json())
    if name == "cursor":
        return dict(cursor_fake.failure(status, "error", message).json())
    return {"error": message}


async def test_a_429_on_a_read_is_retried_after_the_platforms_delay(rig: Rig) -> None:
    await rig.start()
    rig.on_read(reply(429, error_body(rig.name, 429, "slow down"), **{"Retry-After": "11"}))
    with pytest.raises(PlatformError) as raised:
        await rig.platform.get_session(rig.session_id)
    assert raised.value.transient
    assert raised.value.retry_after == 11.0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_5xx_on_a_read_is_transient(rig: Rig, status: int) -> None:
    await rig.start()
    rig.on_read(reply(status, error_body(rig.name, status, "try later")))
    with pytest.raises(PlatformError) as raised:
        await rig.platform.get_session(rig.session_id)
    assert raised.value.status == status
    assert raised.value.transient


async def test_a_timeout_on_a_read_is_transient_and_not_ambiguous(rig: Rig) -> None:
    await rig.start()

    def lost(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("lost", request=request)

    rig.on_read(lost)
    with pytest.raises(PlatformError) as raised:
        await rig.platform.get_session(rig.session_id)
    assert raised.value.transient
    assert not raised.value.ambiguous  # a read changes nothing


async def test_a_session_the_platform_does_not_know_is_permanent(rig: Rig) -> None:
    await rig.start()
    unknown = str(uuid.uuid4())
    with pytest.raises(PlatformError) as raised:
        await rig.platform.get_session(unknown)
    assert raised.value.status == 404
    assert not raised.value.transient
    assert unknown in raised.value.message


async def test_an_answer_without_a_session_is_transient(rig: Rig) -> None:
    await rig.start()
    rig.on_read(reply(200, {"unexpected": True}) if rig.name != "agen" else reply(200, {}))
    with pytest.raises(PlatformError) as raised:
        await rig.platform.get_session(rig.session_id)
    assert raised.value.transient


# ---------------------------------------------------------------------------
# Tembo: GET /v1/sessions/{id}, POST /v1/messages, POST /v1/sessions/{id}/stop


@pytest.mark.parametrize(
    ("current", "phase"),
    [
        ("queued", "queued"),
        ("inProgress", "working"),
        ("completed", "finished"),
        ("failed", "failed"),
        ("cancelled", "stopped"),
    ],
)
async def test_tembo_maps_each_state(tembo: Rig, current: str, phase: str) -> None:
    session_id = await tembo.start()
    tembo.fake.advance(session_id, state=current)
    state = await tembo.platform.get_session(session_id)
    assert state == SessionState(phase=phase, raw_status=current)
    assert tembo.fake.reads == [session_id]


@pytest.mark.parametrize(
    ("flag", "phase"),
    [
        ("isQueued", "queued"),
        ("inProgress", "working"),
        ("isCompleted", "finished"),
        ("isFailed", "failed"),
        ("isCancelled", "stopped"),
    ],
)
async def test_tembo_reads_the_state_flags_when_current_is_absent(
    tembo: Rig, flag: str, phase: str
) -> None:
    session_id = await tembo.start()
    flags = ("isQueued", "isCancelled", "isCompleted", "isFailed", "inProgress")
    tembo.fake.find(session_id)["state"] = {name: name == flag for name in flags}
    assert (await tembo.platform.get_session(session_id)).phase == phase


async def test_tembo_keeps_following_a_state_it_does_not_know(tembo: Rig) -> None:
    session_id = await tembo.start()
    flags = ("isQueued", "isCancelled", "isCompleted", "isFailed", "inProgress")
    tembo.fake.find(session_id)["state"] = {"current": "paused", **dict.fromkeys(flags, False)}
    state = await tembo.platform.get_session(session_id)
    assert (state.phase, state.raw_status, state.terminal) == ("working", "paused", False)
    # The flags, which the schema requires, win over a `current` we do not know.
    tembo.fake.find(session_id)["state"]["isFailed"] = True
    assert (await tembo.platform.get_session(session_id)).phase == "failed"


async def test_tembo_reports_the_pull_requests_the_session_opened(tembo: Rig) -> None:
    session_id = await tembo.start()
    other = "https://github.com/acme/api/pull/7"
    tembo.fake.advance(
        session_id,
        state="completed",
        pull_requests=[PULL, other, PULL],
        # The pull request a session was started from is not one it opened.
        sourcePullRequest={
            "id": str(uuid.uuid4()),
            "url": "https://github.com/acme/web-app/pull/1",
        },
    )
    state = await tembo.platform.get_session(session_id)
    assert state.pull_requests == (PULL, other)
    assert state.terminal


async def test_tembo_session_moves_through_its_states_on_a_script(tembo: Rig) -> None:
    session_id = await tembo.start()
    tembo.fake.script[session_id] = [
        {"state": "inProgress"},
        {"state": "inProgress", "pull_requests": [PULL]},
        {"state": "completed"},
    ]
    seen = [await tembo.platform.get_session(session_id) for _ in range(4)]
    assert [(s.phase, s.pull_requests) for s in seen] == [
        ("working", ()),
        ("working", (PULL,)),
        ("finished", (PULL,)),
        ("finished", (PULL,)),
    ]


async def test_tembo_sends_a_follow_up_message_to_the_session(tembo: Rig) -> None:
    session_id = await tembo.start()
    tembo.fake.advance(session_id, state="completed")
    await tembo.platform.send_message(session_id, "Also add a regression test.", "gh-2")
    assert tembo.fake.messages == [
        {"content": "Also add a regression test.", "sessionId": session_id}
    ]
    assert (await tembo.platform.get_session(session_id)).phase == "queued"


async def test_tembo_stops_the_session_and_its_queued_messages(tembo: Rig) -> None:
    session_id = await tembo.start()
    tembo.fake.advance(session_id, state="inProgress")
    await tembo.platform.stop_session(session_id)
    assert tembo.fake.stops == [(session_id, {"cancelQueued": "true"})]
    assert (await tembo.platform.get_session(session_id)).phase == "stopped"


@pytest.mark.parametrize("call", ["message", "stop"])
async def test_tembo_follow_up_calls_map_errors_like_the_create(tembo: Rig, call: str) -> None:
    session_id = await tembo.start()
    tembo.fake.fault = reply(503, {"error": "busy"})

    async def act() -> None:
        if call == "message":
            await tembo.platform.send_message(session_id, "more", "gh-2")
        else:
            await tembo.platform.stop_session(session_id)

    with pytest.raises(PlatformError) as raised:
        await act()
    assert raised.value.transient
    tembo.fake.fault = None
    unknown = str(uuid.uuid4())
    with pytest.raises(PlatformError) as raised:
        if call == "message":
            await tembo.platform.send_message(unknown, "more", "gh-2")
        else:
            await tembo.platform.stop_session(unknown)
    assert raised.value.status == 404
    assert not raised.value.transient


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (("POST", "/v1/messages", {"content": "x"}), 400),
        (("POST", "/v1/messages", {"content": "", "sessionId": str(uuid.uuid4())}), 400),
        (("POST", "/v1/messages", {"content": "x", "sessionId": "s", "extra": 1}), 400),
        (("POST", f"/v1/sessions/{uuid.uuid4()}/stop?force=true", None), 400),
        (("GET", f"/v1/sessions/{uuid.uuid4()}?expand=all", None), 400),
        (("DELETE", f"/v1/sessions/{uuid.uuid4()}", None), 404),
    ],
)
def test_tembo_fake_holds_the_follow_calls_to_the_public_api(
    request_: tuple[str, str, Any], status: int
) -> None:
    fake = FakeTembo()
    method, path, body = request_
    headers = {"authorization": f"Bearer {fake.api_key}"}
    answer = fake(httpx.Request(method, f"{fake.base_url}{path}", headers=headers, json=body))
    assert answer.status_code == status


# ---------------------------------------------------------------------------
# Recoup: GET /api/sessions/{id}; chats; POST /api/chat/workflow; POST /api/chat/{id}/stop


@pytest.mark.parametrize(
    ("fields", "phase", "reason"),
    [
        ({"status": "running", "lifecycleState": "provisioning"}, "queued", ""),
        ({"status": "running", "lifecycleState": None}, "queued", ""),
        ({"status": "running", "lifecycleState": "active"}, "working", ""),
        ({"status": "running", "lifecycleState": "hibernating"}, "working", ""),
        ({"status": "running", "lifecycleState": "hibernated"}, "working", ""),
        ({"status": "running", "lifecycleState": "restoring"}, "working", ""),
        ({"status": "running", "lifecycleState": "archived"}, "stopped", ""),
        (
            {"status": "running", "lifecycleState": "failed", "lifecycleError": "no sandbox"},
            "failed",
            "no sandbox",
        ),
        ({"status": "completed", "lifecycleState": "hibernated"}, "finished", ""),
        (
            {"status": "failed", "lifecycleState": "failed", "lifecycleError": "out of credit"},
            "failed",
            "out of credit",
        ),
        ({"status": "archived", "lifecycleState": "archived"}, "stopped", ""),
    ],
)
async def test_recoup_maps_status_and_lifecycle(
    recoup: Rig, fields: dict[str, Any], phase: str, reason: str
) -> None:
    session_id = await recoup.start()
    recoup.fake.advance(session_id, **fields)
    state = await recoup.platform.get_session(session_id)
    assert (state.phase, state.reason, state.pull_requests) == (phase, reason, ())
    assert state.raw_status.startswith(fields["status"])
    assert ("GET", f"/api/sessions/{session_id}", None) in recoup.fake.requests


async def test_recoup_session_moves_through_its_states_on_a_script(recoup: Rig) -> None:
    session_id = await recoup.start()
    recoup.fake.script[session_id] = [
        {"lifecycleState": "active"},
        {"status": "completed"},
    ]
    phases = [(await recoup.platform.get_session(session_id)).phase for _ in range(3)]
    assert phases == ["working", "finished", "finished"]


def first_chat(fake: FakeRecoup, session_id: str) -> str:
    return str(next(c["id"] for c in fake.chats if c["sessionId"] == session_id))


async def test_recoup_sends_a_follow_up_into_the_sessions_first_chat(recoup: Rig) -> None:
    session_id = await recoup.start()
    chat_id = first_chat(recoup.fake, session_id)
    recoup.fake.reply_done(chat_id)
    await recoup.platform.send_message(session_id, "Also add a regression test.", "gh-2")
    [_, workflow] = recoup.fake.workflows
    message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "tembo-dispatch:gh-2"))
    assert workflow == {
        "runId": workflow["runId"],
        "messages": [
            {
                "id": message_id,
                "role": "user",
                "parts": [{"type": "text", "text": "Also add a regression test."}],
            }
        ],
        "chatId": chat_id,
        "sessionId": session_id,
    }
    assert [(m, p) for m, p, _ in recoup.fake.requests[-2:]] == [
        ("GET", f"/api/sessions/{session_id}/chats"),
        ("POST", "/api/chat"),
    ]


async def test_recoup_does_not_wait_for_the_agents_reply(recoup: Rig) -> None:
    session_id = await recoup.start()
    recoup.fake.reply_done(first_chat(recoup.fake, session_id))

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b'data: {"type":"text-delta"}\n\n'
            await anyio.sleep(0.01)

    def streaming(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/api/chat":
            return httpx.Response(200, content=endless())
        return None

    recoup.fake.fault = streaming
    with anyio.fail_after(5):
        await recoup.platform.send_message(session_id, "more", "gh-2")


async def test_recoup_message_while_the_sandbox_sleeps_waits(recoup: Rig) -> None:
    session_id = await recoup.start()
    recoup.fake.reply_done(first_chat(recoup.fake, session_id))
    recoup.fake.advance(session_id, lifecycleState="hibernated")
    with pytest.raises(PlatformError) as raised:
        await recoup.platform.send_message(session_id, "more", "gh-2")
    assert raised.value.status == 400
    assert raised.value.transient
    assert "Sandbox not initialized" in raised.value.message


async def test_recoup_message_while_a_reply_streams_waits_for_it(recoup: Rig) -> None:
    session_id = await recoup.start()  # the prompt's reply is streaming
    with pytest.raises(PlatformError) as raised:
        await recoup.platform.send_message(session_id, "second", "gh-3")
    assert raised.value.status == 409
    assert raised.value.transient
    assert len(recoup.fake.workflows) == 1
    recoup.fake.reply_done(first_chat(recoup.fake, session_id))
    await recoup.platform.send_message(session_id, "second", "gh-3")
    assert len(recoup.fake.workflows) == 2


async def test_recoup_message_to_an_unreachable_platform_is_transient(recoup: Rig) -> None:
    session_id = await recoup.start()
    recoup.fake.reply_done(first_chat(recoup.fake, session_id))

    def down(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/api/chat":
            raise httpx.ConnectError("down", request=request)
        return None

    recoup.fake.fault = down
    with pytest.raises(PlatformError) as raised:
        await recoup.platform.send_message(session_id, "more", "gh-2")
    assert raised.value.transient
    assert not raised.value.ambiguous


async def test_recoup_stops_the_reply_streaming_in_each_chat(recoup: Rig) -> None:
    session_id = await recoup.start()  # the prompt's reply is streaming
    chat_id = first_chat(recoup.fake, session_id)
    await recoup.platform.stop_session(session_id)
    assert recoup.fake.stops == [chat_id]
    assert ("POST", f"/api/chat/{chat_id}/stop", None) in recoup.fake.requests
    # Nothing streaming: the stop is answered {stopped: false} and is not an error.
    await recoup.platform.stop_session(session_id)
    assert recoup.fake.stops == [chat_id]


async def test_recoup_stop_of_an_unknown_session_is_permanent(recoup: Rig) -> None:
    await recoup.start()
    with pytest.raises(PlatformError) as raised:
        await recoup.platform.stop_session("no-such-session")
    assert raised.value.status == 404
    assert not raised.value.transient


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat", {"messages": [], "chatId": "c"}),
        ("/api/chat/workflow", {"messages": [], "chatId": "", "sessionId": "s"}),
        ("/api/chat/workflow", {"messages": ["hi"], "chatId": "c", "sessionId": "s"}),
        ("/api/chat/workflow", {"messages": [], "chatId": "c", "sessionId": "s", "x": 1}),
        ("/api/chat/not-a-uuid/stop", None),
    ],
)
def test_recoup_fake_holds_the_follow_calls_to_the_pages(path: str, body: Any) -> None:
    fake = FakeRecoup()
    request = httpx.Request(
        "POST", f"{fake.base_url}{path}", headers={"x-api-key": fake.api_key}, json=body
    )
    assert fake(request).status_code == 400


# ---------------------------------------------------------------------------
# Agen: the session's timeline events; POST /api/v1/sessions/{id}/messages


@pytest.mark.parametrize(
    ("status", "phase"),
    [("queued", "queued"), ("processing", "working"), ("completed", "working")],
)
async def test_agen_reads_the_prompts_status(agen: Rig, status: str, phase: str) -> None:
    session_id = await agen.start()
    agen.fake.mark_messages(session_id, status)
    state = await agen.platform.get_session(session_id)
    assert (state.phase, state.raw_status, state.pull_requests) == (
        phase,
        f"user_message {status}",
        (),
    )


async def test_agen_canceled_prompt_means_stopped(agen: Rig) -> None:
    session_id = await agen.start()
    agen.fake.mark_messages(session_id, "canceled")
    state = await agen.platform.get_session(session_id)
    assert (state.phase, state.reason) == ("stopped", "the message to the agent was canceled")


async def test_agen_session_without_a_prompt_is_queued(agen: Rig) -> None:
    created = agen.fake.create({"branch_name": "b"})
    assert await agen.platform.get_session(created["id"]) == SessionState(phase="queued")


@pytest.mark.parametrize(
    ("ending", "phase", "reason"),
    [
        ("session_finished", "finished", ""),
        ("merge_request_merged", "finished", ""),
        ("session_closed", "stopped", "Agen closed the session"),
        (
            "merge_request_closed",
            "stopped",
            "the merge request was closed without being merged",
        ),
    ],
)
async def test_agen_timeline_endings(agen: Rig, ending: str, phase: str, reason: str) -> None:
    session_id = await agen.start()
    agen.fake.mark_messages(session_id, "completed")
    agen.fake.add_event(session_id, "agent_message")
    agen.fake.add_event(session_id, ending)
    state = await agen.platform.get_session(session_id)
    assert state == SessionState(phase=phase, reason=reason, raw_status=ending)
    assert state.terminal


async def test_agen_agent_activity_means_working(agen: Rig) -> None:
    session_id = await agen.start()  # the prompt is still queued
    agen.fake.add_event(session_id, "agent_file_edit")
    assert (await agen.platform.get_session(session_id)).phase == "working"


async def test_agen_session_moves_through_its_timeline_on_a_script(agen: Rig) -> None:
    session_id = await agen.start()
    agen.fake.script[session_id] = [
        {"type": "agent_plan_execution_update"},
        {"type": "agent_push_to_remote"},
        {"type": "session_finished"},
        {"type": "merge_request_merged"},
    ]
    phases = [(await agen.platform.get_session(session_id)).raw_status for _ in range(4)]
    assert phases == [
        "agent_plan_execution_update",
        "agent_plan_execution_update",
        "session_finished",
        "merge_request_merged",
    ]


async def test_agen_follow_up_after_the_end_starts_the_session_again(agen: Rig) -> None:
    session_id = await agen.start()
    agen.fake.add_event(session_id, "session_finished")
    await agen.platform.send_message(session_id, "Also add a regression test.", "gh-2")
    assert agen.fake.prompts(session_id)[-1] == "Also add a regression test."
    assert agen.fake.requests[-1] == (
        "POST",
        f"/api/v1/sessions/{session_id}/messages",
        {"message": "Also add a regression test.", "client_id": "gh-2"},
    )
    assert (await agen.platform.get_session(session_id)).phase == "queued"


async def test_agen_follow_up_whose_answer_was_lost_is_not_sent_twice(agen: Rig) -> None:
    session_id = await agen.start()

    def delivered_then_lost(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path.endswith("/messages"):
            agen.fake.answer(request)
            raise httpx.ReadTimeout("lost", request=request)
        return None

    agen.fake.fault = delivered_then_lost
    with pytest.raises(PlatformError) as raised:
        await agen.platform.send_message(session_id, "more", "gh-2")
    assert raised.value.ambiguous
    agen.fake.fault = None
    await agen.platform.send_message(session_id, "more", "gh-2")
    assert agen.fake.prompts(session_id).count("more") == 1


async def test_agen_read_without_the_read_scope_names_it(agen: Rig) -> None:
    session_id = await agen.start()
    agen.on_read(reply(403, error_body("agen", 403, "Forbidden")))
    with pytest.raises(PlatformError) as raised:
        await agen.platform.get_session(session_id)
    assert not raised.value.transient
    assert "sessions:read" in raised.value.message


# ---------------------------------------------------------------------------
# Magnet: Get Session


@pytest.mark.parametrize(
    ("status", "phase"),
    [("active", "working"), ("completed", "finished"), ("failed", "failed")],
)
async def test_magnet_maps_each_status(magnet: Rig, status: str, phase: str) -> None:
    session_id = await magnet.start()
    magnet.fake.advance(session_id, status=status)
    state = await magnet.platform.get_session(session_id)
    assert state == SessionState(phase=phase, raw_status=status)
    assert magnet.fake.requests[-1] == (
        "GET",
        f"/api/sessions/{session_id}",
        {"organizationId": "org_abc123"},
    )


async def test_magnet_reports_the_sessions_pull_request(magnet: Rig) -> None:
    session_id = await magnet.start()
    magnet.fake.script[session_id] = [
        {"metadata": {"branch": "agent/fix-login"}},
        {"metadata": {"prNumber": 42, "prUrl": PULL, "prStatus": "open"}},
        {"status": "completed"},
    ]
    seen = [await magnet.platform.get_session(session_id) for _ in range(3)]
    assert [(s.phase, s.pull_requests) for s in seen] == [
        ("working", ()),
        ("working", (PULL,)),
        ("finished", (PULL,)),
    ]


async def test_magnet_keeps_following_a_status_it_does_not_know(magnet: Rig) -> None:
    session_id = await magnet.start()
    magnet.fake.sessions[0]["status"] = "paused"
    state = await magnet.platform.get_session(session_id)
    assert (state.phase, state.raw_status) == ("working", "paused")


async def test_magnet_read_refusing_the_cookie_says_what_to_do(magnet: Rig) -> None:
    session_id = await magnet.start()
    magnet.fake.reads_accept_cookie = False
    with pytest.raises(PlatformError) as raised:
        await magnet.platform.get_session(session_id)
    assert raised.value.status == 401
    assert not raised.value.transient
    assert "MAGNET_SESSION_COOKIE" in raised.value.message
