"""One `Case` per entry of the platform registry (and per API or credential variant of
one), for the suite that runs each platform through a real `python -m bot serve`
(tests/e2e/test_platforms_serve.py).

A case knows its platform's contract fake (tests/support/fakes/<platform>.py) and says,
in that fake's words, what the suite checks through it: the environment that points the
app at the fake, which request is the create, the sessions made and the repository and
prompt each got, the link the status comment must hold, how the session reaches its pull
request, and where follow-ups and stops land. Cases read the fakes only; the server
thread that serves a fake holds its lock, so callers read through `FakeServer.snapshot`.

`Remote` wraps a fake as it is served: it times the creates, remembers the headers of
every read, and plays faults armed on the create call or another POST (an answer, or
`LOSE`: the fake carries the call out and the answer never leaves).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from tests.support import payloads
from tests.support.fakes import Handler
from tests.support.fakes.agen import FakeAgen
from tests.support.fakes.cursor import FakeCursor
from tests.support.fakes.devin import FakeDevin
from tests.support.fakes.jules import FakeJules
from tests.support.fakes.magnet import FakeMagnet
from tests.support.fakes.recoup import FakeRecoup
from tests.support.fakes.tembo import FakeTembo

REPO = "acme/web"
REPO_URL = f"https://github.com/{REPO}"
PULL = f"{REPO_URL}/pull/9"
# The repository's default branch in the labelled-issue fixture (tests/support/payloads.py).
DEFAULT_BRANCH = payloads.labeled()["repository"]["default_branch"]

Lose = Literal["lose"]
LOSE: Lose = "lose"
Fault = httpx.Response | Lose


@dataclass
class Remote:
    """A platform's fake as served over HTTP, with faults on one of its calls (the
    create, unless `arm` names another)."""

    fake: Handler
    is_create: Callable[[httpx.Request], bool]
    # One entry per call to come, taken in order; none left: the fake answers.
    faults: list[Fault] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)  # monotonic time of each such call
    lost: int = 0
    read_headers: list[httpx.Headers] = field(default_factory=list)
    target: Callable[[httpx.Request], bool] | None = None  # None: the create

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.read_headers.append(request.headers)
        if not (self.target or self.is_create)(request):
            return self.fake(request)
        self.sent_at.append(time.monotonic())
        fault = self.faults.pop(0) if self.faults else None
        if fault is None:
            return self.fake(request)
        if fault == LOSE:
            self.fake(request)  # the platform does the work...
            self.lost += 1
            raise httpx.ReadTimeout("the answer was lost", request=request)  # ...unheard
        return fault

    def arm(self, *faults: Fault, path: str | None = None) -> None:
        """Play `faults` on the next calls to the create, or to `POST path` (a regular
        expression)."""
        self.faults = list(faults)
        self.target = None if path is None else _post(path)
        self.sent_at.clear()
        self.lost = 0


def _post(path: str) -> Callable[[httpx.Request], bool]:
    pattern = re.compile(path)
    return lambda request: request.method == "POST" and bool(pattern.fullmatch(request.url.path))


class Case:
    """What the suite needs to know about one platform, in its fake's words."""

    id: str  # the test id
    platform: str  # the registry name, as .github/tembo.yml writes it
    create_path: str | None = None  # None: nothing may leave the machine
    fake_type: Callable[[], Any]  # the contract fake, as most cases build it
    prefix: str  # of the platform's variables: <prefix>_API_KEY, <prefix>_BASE_URL
    names_pull_requests = True  # the platform reports the pull request its session opened
    create_is_lookup = False  # a lost create is looked up by sending it again (idempotent)
    # The calls after the first that starting a session takes (regular expressions of
    # POST paths); empty: one call starts it.
    later_steps: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.fake: Any = self.make_fake()
        path = self.create_path
        self.remote = Remote(self.fake, _post(path) if path else lambda request: False)

    def make_fake(self) -> Any:
        return self.fake_type()

    def env(self, url: str) -> dict[str, str]:
        """The variables that point the app at the fake, served at `url`."""
        return {f"{self.prefix}_API_KEY": self.fake.api_key, f"{self.prefix}_BASE_URL": url}

    def sessions(self) -> list[dict[str, Any]]:
        return list(self.fake.sessions)

    def session_id(self, session: dict[str, Any]) -> str:
        return str(session["id"])

    def link(self, session: dict[str, Any]) -> str:
        """What the status comment must link to."""
        return str(session["url"])

    def repository(self, session: dict[str, Any]) -> str | None:
        """The repository the platform was told to work on (None: the prompt says it)."""
        return None

    def prompt(self, session: dict[str, Any]) -> str:
        return str(session["prompt"])

    def check_create(self, session: dict[str, Any]) -> None:
        """Assert what the platform's page asks of the create beyond the fake's schema
        (the fake already refused anything its schema does not allow)."""

    def check_lookup(self, session: dict[str, Any]) -> None:
        """Assert that a lost create was looked up the way the platform documents."""

    def check_reads(self) -> None:
        """Assert how the platform's reads (follow, lookups) were authenticated."""

    def finish_with_pull_request(self, session_id: str) -> None:
        """The platform ends the session, having opened PULL where it reports one."""
        raise NotImplementedError

    def before_follow_up(self, session_id: str) -> None:
        """Whatever the platform needs before it takes a message (nothing by default)."""

    def prompts(self, session: dict[str, Any]) -> int:
        """How many times the session was given its prompt (multi-step creates)."""
        return 1

    def messages(self) -> list[tuple[str, str]]:
        """(session id, text) of each follow-up the platform received (Devin's and
        Jules's fakes record them so)."""
        return list(self.fake.messages)

    def stopped(self) -> list[str]:
        """The session ids the platform was asked to stop (and did)."""
        return []


class Tembo(Case):
    platform = "tembo"
    prefix = "TEMBO"

    def __init__(self, api: str) -> None:
        self.api = api
        self.id = "tembo" if api == "legacy" else f"tembo-{api}"
        self.create_path = "/session/create" if api == "legacy" else "/v1/sessions"
        super().__init__()

    def make_fake(self) -> FakeTembo:
        fake = FakeTembo()
        self.repository_id = fake.enable(REPO)
        return fake

    def env(self, url: str) -> dict[str, str]:
        return {**super().env(url), "TEMBO_API": self.api}

    def link(self, session: dict[str, Any]) -> str:
        return str(session["htmlUrl"])

    def repository(self, session: dict[str, Any]) -> str | None:
        if self.api == "v1":
            ids = session["codeRepositoryIds"]
            return REPO if ids == [self.repository_id] else f"Tembo repositories {ids}"
        [body] = [b for b in self.fake.requests if b.get("prompt") == session["prompt"]]
        [url] = body["repositories"]
        return str(url).removeprefix("https://github.com/")

    def check_lookup(self, session: dict[str, Any]) -> None:
        calls = self.fake.calls
        if self.api == "v1":
            # The caller-chosen id is read back; no list or search on this path.
            assert ("GET", f"/v1/sessions/{session['id']}") in calls
            assert not [call for call in calls if call[1].startswith("/session/")]
        else:
            assert ("GET", "/session/search") in calls  # search first, list only as fallback
            assert ("GET", "/session/list") not in calls

    def finish_with_pull_request(self, session_id: str) -> None:
        self.fake.advance(session_id, state="completed", pull_requests=[PULL])

    def messages(self) -> list[tuple[str, str]]:
        return [(m["sessionId"], m["content"]) for m in self.fake.messages]

    def stopped(self) -> list[str]:
        return [session_id for session_id, _ in self.fake.stops]


class Recoup(Case):
    id = platform = "recoup"
    create_path = "/api/sessions"
    fake_type, prefix = FakeRecoup, "RECOUP"
    later_steps = ("/api/sandbox", "/api/chat")
    names_pull_requests = False  # a Recoup session names no pull request

    def link(self, session: dict[str, Any]) -> str:
        [chat] = [c for c in self.fake.chats if c["sessionId"] == session["id"]]
        return f"https://chat.recoupable.com/sessions/{session['id']}/chats/{chat['id']}"

    def repository(self, session: dict[str, Any]) -> str | None:
        url = self.fake.sandboxes.get(session["id"], "(no sandbox)")
        return str(url).removeprefix("https://github.com/")

    def prompt(self, session: dict[str, Any]) -> str:
        texts = [
            part["text"]
            for run in self.fake.workflows
            if run["sessionId"] == session["id"]
            for part in run["messages"][0]["parts"]
        ]
        return texts[0] if texts else ""

    def prompts(self, session: dict[str, Any]) -> int:
        return sum(run["sessionId"] == session["id"] for run in self.fake.workflows)

    def finish_with_pull_request(self, session_id: str) -> None:
        self.fake.advance(session_id, status="completed")

    def before_follow_up(self, session_id: str) -> None:
        # Recoup drops a message sent while the agent still answers: let the reply end.
        for chat in self.fake.chats:
            if chat["sessionId"] == session_id:
                self.fake.reply_done(chat["id"])

    def messages(self) -> list[tuple[str, str]]:
        first = {run["sessionId"]: run["runId"] for run in reversed(self.fake.workflows)}
        return [
            (run["sessionId"], run["messages"][0]["parts"][0]["text"])
            for run in self.fake.workflows
            if run["runId"] != first[run["sessionId"]]  # the prompt itself is not one
        ]

    def stopped(self) -> list[str]:
        return [c["sessionId"] for c in self.fake.chats if c["id"] in self.fake.stops]


class Agen(Case):
    id = platform = "agen"
    create_path = "/api/v1/sessions"
    fake_type, prefix = FakeAgen, "AGEN"
    later_steps = ("/api/v1/sessions/[^/]+/messages",)
    names_pull_requests = False  # the timeline's payloads name no merge request URL

    def link(self, session: dict[str, Any]) -> str:
        return f"https://app.agenhq.com/sessions/{session['id']}"

    def prompt(self, session: dict[str, Any]) -> str:
        prompts = self.fake.prompts(session["id"])
        return str(prompts[0]) if prompts else ""

    def prompts(self, session: dict[str, Any]) -> int:
        return len(self.fake.prompts(session["id"]))

    def finish_with_pull_request(self, session_id: str) -> None:
        self.fake.add_event(session_id, "session_finished")

    def messages(self) -> list[tuple[str, str]]:
        return [
            (session["id"], text)
            for session in self.fake.sessions
            for text in self.fake.prompts(session["id"])[1:]
        ]


class Magnet(Case):
    platform = "magnet"
    create_path = "/api/sessions"

    def __init__(self, api_key: bool) -> None:
        self.api_key = api_key
        self.id = "magnet-api-key" if api_key else "magnet"
        super().__init__()

    def make_fake(self) -> FakeMagnet:
        # With a key, reads must use it: the fake refuses the browser cookie on them.
        return FakeMagnet(reads_accept_cookie=not self.api_key)

    def env(self, url: str) -> dict[str, str]:
        env = {
            "MAGNET_SESSION_COOKIE": self.fake.cookie,
            "MAGNET_ORGANIZATION_ID": self.fake.organization_id,
            "MAGNET_BASE_URL": url,
        }
        if self.api_key:
            env["MAGNET_API_KEY"] = self.fake.api_key
        return env

    def link(self, session: dict[str, Any]) -> str:
        return f"https://magnet.run/sessions/{session['id']}"

    def repository(self, session: dict[str, Any]) -> str | None:
        return str(session["metadata"]["repository"])

    def prompt(self, session: dict[str, Any]) -> str:
        return str(session["messages"][0]["message"]["content"])

    def finish_with_pull_request(self, session_id: str) -> None:
        self.fake.advance(session_id, status="completed", metadata={"prUrl": PULL, "prNumber": 9})

    def messages(self) -> list[tuple[str, str]]:
        return []  # Magnet documents no call that adds a message

    def check_reads(self) -> None:
        reads = self.remote.read_headers
        assert reads
        if self.api_key:  # documented for API keys: the key, never the browser cookie
            assert all(h.get("x-api-key") == self.fake.api_key for h in reads)
            assert not [h for h in reads if "cookie" in h]
        else:
            assert not [h for h in reads if "x-api-key" in h]


class Devin(Case):
    id = platform = "devin"
    create_path = "/v1/sessions"
    fake_type, prefix = FakeDevin, "DEVIN"
    create_is_lookup = True  # `idempotent: true`: Devin answers the first session again

    def session_id(self, session: dict[str, Any]) -> str:
        return str(session["session_id"])

    def prompt(self, session: dict[str, Any]) -> str:
        return str(session["body"]["prompt"])

    def check_create(self, session: dict[str, Any]) -> None:
        body = session["body"]
        assert set(body) == {"prompt", "idempotent", "title"}
        assert body["idempotent"] is True
        assert REPO_URL in body["prompt"]  # Devin's create names no repository

    def finish_with_pull_request(self, session_id: str) -> None:
        self.fake.advance(session_id, status_enum="finished", pull_request=PULL)

    def stopped(self) -> list[str]:
        return list(self.fake.terminations)


class Jules(Case):
    id = platform = "jules"
    create_path = "/v1alpha/sessions"
    fake_type, prefix = FakeJules, "JULES"

    def repository(self, session: dict[str, Any]) -> str | None:
        return str(session["sourceContext"]["source"]).removeprefix("sources/github/")

    def check_create(self, session: dict[str, Any]) -> None:
        [body] = [b for b in self.fake.requests if b["prompt"] == session["prompt"]]
        assert body["automationMode"] == "AUTO_CREATE_PR"
        assert body["sourceContext"]["githubRepoContext"] == {"startingBranch": DEFAULT_BRANCH}

    def finish_with_pull_request(self, session_id: str) -> None:
        self.fake.advance(session_id, state="COMPLETED", pull_requests=[PULL])


class Cursor(Case):
    id = platform = "cursor"
    create_path = "/v1/agents"
    fake_type, prefix = FakeCursor, "CURSOR"

    def repository(self, session: dict[str, Any]) -> str | None:
        [repo] = session["repos"]
        return str(repo["url"]).removeprefix("https://github.com/")

    def check_create(self, session: dict[str, Any]) -> None:
        assert session["repos"] == [{"url": REPO_URL, "startingRef": DEFAULT_BRANCH}]
        assert session["autoCreatePR"] is True
        assert session["id"].startswith("bc-")  # our own id: a lost create is found by it
        assert set(self.fake.auth_schemes) == {"Basic"}  # as the endpoints page shows

    def finish_with_pull_request(self, session_id: str) -> None:
        self.fake.advance(session_id, status="FINISHED", pull_requests=[PULL])

    def before_follow_up(self, session_id: str) -> None:
        # Cursor takes a new run only once the last one ended.
        self.fake.advance(session_id, status="FINISHED")

    def messages(self) -> list[tuple[str, str]]:
        return list(self.fake.followups)

    def stopped(self) -> list[str]:
        return [agent_id for agent_id, _ in self.fake.cancels]


class DryRun(Case):
    """Nothing leaves the machine: Tembo's fake is served, and must hear nothing."""

    id = platform = "dry-run"
    fake_type, prefix = FakeTembo, "TEMBO"


def cases() -> list[Case]:
    """A fresh set of cases (each with fresh fakes), one per platform variant."""
    return [
        Tembo("legacy"),
        Tembo("v1"),
        Recoup(),
        Agen(),
        Magnet(api_key=False),
        Magnet(api_key=True),
        Devin(),
        Jules(),
        Cursor(),
        DryRun(),
    ]
