"""Tembo, with a Bearer key, through one of two APIs (`TEMBO_API`):

- `legacy` (the default, seeds 000/001): `POST /session/create`; the answer's `htmlUrl`
  is the link posted back. After a lost answer the dispatch id is looked up with
  `GET /session/search?q=` (title and description), and only if Tembo has no search,
  by reading `GET /session/list` back to the first send (tembo/docs
  openapi.documented.yml at 53d0749dc44ca6e1c20887036e8369e62e6660ee);
- `v1` (the Public API; tembo/sdk openapi/openapi.json at
  1502e3587c61010bdcb5299dff1f4d3b950fde82, operationId createSession):
  `POST /v1/sessions {id, description, codeRepositoryIds, baseBranch, targetBranch,
  branchName, agent?}` where `id` is a UUID derived from the dispatch id and the
  repository's Tembo id is found once per repository with
  `GET /v1/repositories?search=` (listRepositories) and kept. After a lost answer,
  `GET /v1/sessions/{id}` says whether the session exists (404: safe to send again), and
  a 409 on create means the id is taken: ours. No list is read on this path. The default
  stays `legacy` until a real account has confirmed `v1` end to end.

Following a session (issue 10) uses Tembo's Public API, documented at
docs.tembo.io/api/v1 (OpenAPI: api.tembo.io/public-api/openapi/public) and generated into
github.com/tembo/sdk src/resources/sessions/sessions.ts and src/resources/messages/messages.ts.
Its session ids are the ones `/session/create` answers (both are the UUID in `htmlUrl`),
and it takes the same Bearer key:

- followed: the session's state (`state.current`, else its `is*` flags) and the URLs of
  the pull requests it opened (`artifacts[].pullRequests[].url`), read with
  `GET /v1/sessions/{sessionId}`. Tembo gives no failure reason, so `reason` stays empty;
  `sourcePullRequest` (the pull request a session was started *from*) is not reported;
- follow-up messages: `POST /v1/messages {content, sessionId}`. The body has no field for
  our dispatch id, so a message whose answer was lost may arrive twice if sent again;
- stop: `POST /v1/sessions/{sessionId}/stop?cancelQueued=true`, which interrupts the
  running work and cancels queued messages too (without the flag Tembo would go on with
  the next queued message).

The Developer API that `/session/create` belongs to also documents
`POST /session/{sessionId}/stop` and `POST /session/{sessionId}/messages`
(docs.tembo.io/api/stop-session, .../send-session-message) but no call that reads one
session, so the three follow calls stay together in the Public API.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from bot.adapters.platforms.transport import (
    Api,
    follow_explain,
    items,
    ours_on_conflict,
    state,
)
from bot.events import dig
from bot.ports import (
    Phase,
    PlatformError,
    Session,
    SessionRequest,
    SessionState,
    Steps,
    has_trailer,
)

if TYPE_CHECKING:
    from bot.settings import PlatformEnv

NAME = "tembo"
CREATE_PATH = "/session/create"
# Listing sessions lets a create whose answer was lost be found instead of repeated.
# Tembo's API pages (seeds 000/001, docs.tembo.io) document only /session/create. The
# nearest documented list is its predecessor in the same Stainless SDK, `GET /task/list`
# ?limit (max 100)&page -> {"issues": [...], "meta": {...}} (github.com/tembo/sdk-python
# src/tembo/resources/task.py and types/task_list_response.py; tembo/sdk
# src/resources/task.ts), whose items carry id, title, description, status, createdAt,
# updatedAt and organizationId. /session/list is assumed to be its renamed twin; the
# shapes guessed before (`sessions`, `data`, a bare list) are still read.
LIST_PATH = "/session/list"
LIST_LIMIT = 100
# Newest first, so a lost answer's session is near the top, but a burst of dispatches
# (and a retry waiting behind a backlog) can push it far down: read back to a little
# before the first send, at most this many pages; 5 when the send time is unknown.
LIST_PAGES = 50
LIST_PAGES_BLIND = 5
CLOCK_SKEW = 300.0  # seconds Tembo's clock may differ from ours
# The link's form in seed 001's example, for list items that carry no htmlUrl.
APP_SESSION_URL = "https://app.tembo.io/sessions/{id}"
# docs.tembo.io/api/v1/sessions/retrieve-a-session (operationId retrieveSession).
SESSION_PATH = "/v1/sessions/{id}"
# docs.tembo.io/api/v1/messages/create-a-message (operationId createMessage): body
# {content (1..1000000 characters), sessionId (uuid), ...optional fields we do not send}.
MESSAGES_PATH = "/v1/messages"
# docs.tembo.io/api/v1/sessions/stop-a-session (operationId stopSession): query
# cancelQueued (const "true"); answers {cancelledSessions, cancelledJobs,
# stoppedRuntimeSessions, interruptedRuntimeTurns, cancelledRuntimeTurns}.
STOP_PATH = "/v1/sessions/{id}/stop"
# `state.current` of SessionRetrieveResponse (tembo/sdk sessions.ts, interface State).
PHASES: dict[str, Phase] = {
    "queued": "queued",
    "inProgress": "working",
    "completed": "finished",
    "failed": "failed",
    "cancelled": "stopped",
}
# openapi.documented.yml: GET /session/search?q (minLength 1)&limit (max 100)&page.
SEARCH_PATH = "/session/search"
# openapi.json createSession / listRepositories.
V1_CREATE_PATH = "/v1/sessions"
REPOSITORIES_PATH = "/v1/repositories"
# A v1 session id is ours if it is derived from our dispatch id.
V1_NAMESPACE = uuid.UUID("6f1d1a52-54c3-4b55-9c0f-7d0e0a3b4c21")
EXPLAIN = {
    401: "TEMBO_API_KEY was refused; create a new key in Tembo's settings",
    403: "the Tembo key may not create sessions for this organisation",
    404: "TEMBO_BASE_URL does not point at Tembo's API",
}


class TemboPlatform:
    name = NAME
    can_find = True  # its session list is searched for the dispatch id
    can_read = True  # GET /v1/sessions/{sessionId}
    can_message = True  # POST /v1/messages
    can_stop = True  # POST /v1/sessions/{sessionId}/stop

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: str,
        base_url: str = "https://api.tembo.io",
        default_agent: str | None = None,
        *,
        api: str = "legacy",
    ) -> None:
        self.client = Api(http, "Tembo", base_url, {"Authorization": f"Bearer {api_key}"})
        self.base_url = self.client.base_url
        self.default_agent = default_agent
        self.api = api
        # Repository full name (lower case) -> its Tembo id, for v1 creates.
        self._repository_ids: dict[str, str] = {}
        # Which call answered the last lookup (search or list), for logs and tests.
        self.last_lookup = ""

    def body(self, request: SessionRequest) -> dict[str, Any]:
        """The create body, valid against seed 001's schema."""
        return self._with_agent(
            request,
            {
                "prompt": request.prompt,
                "repositories": [request.repository.html_url],
                "targetBranch": request.target_branch,
                "branchName": request.branch_name,
            },
        )

    def _with_agent(self, request: SessionRequest, body: dict[str, Any]) -> dict[str, Any]:
        """`body` with the agent asked for, else the operator's default, if any."""
        agent = request.agent or self.default_agent
        return {**body, "agent": agent} if agent else body

    def v1_id(self, dispatch_id: str) -> str:
        return str(uuid.uuid5(V1_NAMESPACE, dispatch_id))

    async def v1_body(self, request: SessionRequest) -> dict[str, Any]:
        """The v1 create body (additionalProperties: false in the schema)."""
        body = {
            "id": self.v1_id(request.dispatch_id),
            "description": request.prompt,
            "codeRepositoryIds": [await self._repository_id(request)],
            "baseBranch": request.target_branch,
            "targetBranch": request.target_branch,
            "branchName": request.branch_name,
        }
        return self._with_agent(request, body)

    async def _repository_id(self, request: SessionRequest) -> str:
        repo = request.repository
        key = repo.full_name.lower()
        if key not in self._repository_ids:
            data = await self.client.get(
                REPOSITORIES_PATH,
                params={"search": repo.name, "limit": 100},
                explain=EXPLAIN,
            )
            items = data.get("items") if isinstance(data, dict) else None
            for item in items if isinstance(items, list) else []:
                if not isinstance(item, dict) or not item.get("id"):
                    continue
                name = f"{item.get('owner') or ''}/{item.get('name') or ''}".lower()
                url = str(item.get("url") or "").lower().removesuffix(".git").rstrip("/")
                if name == key or url == repo.html_url.lower().rstrip("/"):
                    self._repository_ids[key] = str(item["id"])
                    break
            else:
                raise PlatformError(
                    f"Tembo has no enabled repository {repo.full_name}: enable it in Tembo "
                    "(Integrations) for the organisation that owns TEMBO_API_KEY",
                    transient=False,
                )
        return self._repository_ids[key]

    async def create_session(self, request: SessionRequest, steps: Steps) -> Session:
        if self.api == "v1":
            return await self._create_v1(request)
        data = await self.client.post(
            CREATE_PATH,
            json=self.body(request),
            explain=EXPLAIN,
        )
        return _session(data)

    async def _create_v1(self, request: SessionRequest) -> Session:
        # The id is derived from our dispatch: a 409 means an earlier send made it.
        return await ours_on_conflict(self._post_v1(request), lambda: self._find_v1(request))

    async def _post_v1(self, request: SessionRequest) -> Session:
        body = await self.v1_body(request)
        return _session(await self.client.post(V1_CREATE_PATH, json=body, explain=EXPLAIN))

    async def _find_v1(self, request: SessionRequest) -> Session | None:
        session_id = self.v1_id(request.dispatch_id)
        try:
            data = await self.client.get(
                SESSION_PATH.format(id=session_id),
                explain=_follow_explain(session_id),
            )
        except PlatformError as exc:
            if exc.status == 404:
                return None  # never made: safe to send again
            raise
        self.last_lookup = "get"
        return _session(data)

    async def find_session(self, request: SessionRequest) -> Session | None:
        if self.api == "v1":
            return await self._find_v1(request)
        try:
            data = await self.client.get(
                SEARCH_PATH,
                params={"q": request.dispatch_id, "limit": LIST_LIMIT},
                explain=EXPLAIN,
            )
        except PlatformError as exc:
            # A Tembo without the search call (404/405/501): read the list instead.
            if exc.status not in (404, 405, 501):
                raise
        else:
            self.last_lookup = "search"
            return _marked(data, request.dispatch_id)
        self.last_lookup = "list"
        cutoff = request.first_sent_at - CLOCK_SKEW if request.first_sent_at else None
        for page in range(1, (LIST_PAGES if cutoff else LIST_PAGES_BLIND) + 1):
            data = await self.client.get(
                LIST_PATH,
                params={"limit": LIST_LIMIT, "page": page},
                explain=EXPLAIN,
            )
            listed = _items(data)
            found = _marked(data, request.dispatch_id)
            if found is not None:
                return found
            if dig(data, "meta", "hasNext") is not True:
                break
            oldest = _created_at(listed[-1]) if listed else None
            if cutoff is not None and oldest is not None and oldest < cutoff:
                break  # older than our first send: it cannot be further down
        return None

    async def get_session(self, session_id: str) -> SessionState:
        data = await self.client.get(
            SESSION_PATH.format(id=session_id),
            explain=_follow_explain(session_id),
        )
        if not isinstance(data, dict) or not isinstance(data.get("state"), dict):
            raise PlatformError(
                "Tembo answered a session read without the session's state", transient=True
            )
        return session_state(data)

    async def send_message(self, session_id: str, text: str, dispatch_id: str) -> None:
        await self.client.post(
            MESSAGES_PATH,
            json={"content": text, "sessionId": session_id},
            explain=_follow_explain(session_id),
        )

    async def stop_session(self, session_id: str) -> None:
        await self.client.post(
            STOP_PATH.format(id=session_id),
            params={"cancelQueued": "true"},
            explain=_follow_explain(session_id),
        )


def session_state(data: dict[str, Any]) -> SessionState:
    """A `GET /v1/sessions/{sessionId}` answer, reduced to what the issue shows."""
    flags = dig(data, "state")
    flags = flags if isinstance(flags, dict) else {}
    current = flags.get("current")
    if not isinstance(current, str) or current not in PHASES:
        # `current` is optional in the schema; the flags are required.
        names = (
            ("isCancelled", "cancelled"),
            ("isFailed", "failed"),
            ("isCompleted", "completed"),
            ("inProgress", "inProgress"),
            ("isQueued", "queued"),
        )
        current = next((name for flag, name in names if flags.get(flag) is True), current)
    pulls = [pull.get("url") for pull in items(data, "artifacts", "pullRequests")]
    return state(str(current or ""), PHASES, pull_requests=pulls)


def _follow_explain(session_id: str) -> dict[int, str]:
    return follow_explain("Tembo", EXPLAIN[401], "TEMBO_BASE_URL", session_id)


def _session(data: Any) -> Session:
    if not isinstance(data, dict) or not data.get("id") or not data.get("htmlUrl"):
        raise PlatformError(
            "Tembo answered without a session id and htmlUrl", transient=True, ambiguous=True
        )
    return Session(id=str(data["id"]), url=str(data["htmlUrl"]), status=str(data.get("status", "")))


def _items(data: Any) -> list[Any]:
    items: Any = data
    if isinstance(data, dict):
        items = next((data[key] for key in ("sessions", "issues", "data") if key in data), [])
    return items if isinstance(items, list) else []


def _marked(data: Any, dispatch_id: str) -> Session | None:
    """The listed session whose prompt ends with our dispatch id trailer (the whole last
    line, so a prompt that merely quotes the id is never taken for ours)."""
    for item in _items(data):
        if not isinstance(item, dict) or not item.get("id"):
            continue
        if any(has_trailer(str(item.get(k) or ""), dispatch_id) for k in ("prompt", "description")):
            url = item.get("htmlUrl") or APP_SESSION_URL.format(id=item["id"])
            return _session({**item, "htmlUrl": url})
    return None


def _created_at(item: Any) -> float | None:
    value = item.get("createdAt") if isinstance(item, dict) else None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def probe(env: PlatformEnv, http: httpx.AsyncClient) -> tuple[bool, str]:
    """`python -m bot check`: a cheap authenticated read. Tembo documents no call made
    only to test a key, so a 404 here means the key cannot be verified without creating
    a session."""
    base = env.require("TEMBO_BASE_URL")
    api = env.require("TEMBO_API")
    using = (
        "TEMBO_API=v1: sessions are created with POST /v1/sessions"
        if api == "v1"
        else "TEMBO_API=legacy: sessions are created with POST /session/create"
    )
    path = REPOSITORIES_PATH if api == "v1" else LIST_PATH
    key = {"Authorization": f"Bearer {env.require('TEMBO_API_KEY')}"}
    try:
        await Api(http, "Tembo", base, key).get(path, params={"limit": 1})
    except PlatformError as exc:
        status = exc.status
        if status is None:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else exc.message
            return False, f"TEMBO_BASE_URL {base} cannot be reached ({cause})"
        if status in (401, 403):
            return False, (
                f"TEMBO_API_KEY was refused by {base} ({status}): create a new key in "
                "Tembo's settings and set TEMBO_API_KEY"
            )
        if status == 404:
            return False, (
                f"TEMBO_BASE_URL {base} has no GET {path} (404): check TEMBO_BASE_URL "
                "(https://api.tembo.io); the key cannot be verified without creating a session"
            )
        return False, (
            f"Tembo answered {status} to GET {path}; the key could not be verified, try again later"
        )
    return True, f"TEMBO_API_KEY accepted by {base} (GET {path}); {using}"
