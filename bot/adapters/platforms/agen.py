"""Agen (seed 003): `POST /api/v1/sessions` with an `x-api-key`, then the prompt as the
session's first user message. The link posted back is `AGEN_SESSION_URL` with the id.

The create call names no repository: the workspace that owns the key decides it. The two
calls are one unit for the worker. A session whose prompt was not accepted is remembered
by dispatch id, so a retry sends only the prompt; the prompt carries the dispatch id as
its `client_id`, so a retry after a lost answer first looks at the session's events and
does not send it twice. After a restart, `find_session` finds the session by its branch
name in the session list: one whose events hold our `client_id` is the finished session;
one with no user message yet is ours, created but not prompted, and the next
`create_session` prompts it instead of creating another. Dispatches for the same issue
share a branch name, so the one risk left is adopting an unprompted session another
dispatch for that issue abandoned.

Documented at docs.agenhq.com/api-reference/sessions: list-sessions,
send-a-user-message-to-the-agent-in-a-session, get-the-session-timeline-events.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, TypeVar

import httpx

from bot.adapters.platforms.transport import send
from bot.ports import PlatformError, Session, SessionRequest

NAME = "agen"
LABEL = "Agen"
SESSIONS_PATH = "/api/v1/sessions"
# docs.agenhq.com/api-reference/sessions/send-a-user-message-to-the-agent-in-a-session:
# body {message (required, minLength 1), client_id}; answers the stored session event.
MESSAGES_PATH = "/api/v1/sessions/{id}/messages"
# docs.agenhq.com/api-reference/sessions/get-the-session-timeline-events: a list of events.
EVENTS_PATH = "/api/v1/sessions/{id}/events"
# Sessions sharing the branch whose events are read before giving up.
CANDIDATES = 5
CREATE_EXPLAIN = {
    401: "AGEN_API_KEY was refused; create a new key in Agen's workspace settings",
    403: "the Agen key lacks the sessions:write scope (or sessions:all, all:write, all:all)",
    404: "AGEN_BASE_URL does not point at Agen's API (https://api.agenhq.com)",
}
PROMPT_EXPLAIN = {**CREATE_EXPLAIN, 404: "Agen does not know the session it just created"}
MEMORY = 1000

T = TypeVar("T")


class AgenPlatform:
    name = NAME
    can_find = True  # its session list and events are searched

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: str,
        base_url: str = "https://api.agenhq.com",
        session_url: str = "https://app.agenhq.com/sessions/{id}",
    ) -> None:
        self._http = http
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self.session_url = session_url
        # Created, prompt not yet accepted, by dispatch id.
        self._undelivered: OrderedDict[str, Session] = OrderedDict()

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self._key, "Accept": "application/json"}

    def body(self, request: SessionRequest) -> dict[str, Any]:
        """The create body: only fields seed 003 lists. `auto_commit` so the agent's work
        lands on the branch it is given."""
        body: dict[str, Any] = {"branch_name": request.branch_name, "auto_commit": True}
        if request.agent:
            body["model"] = request.agent
        return body

    async def create_session(self, request: SessionRequest) -> Session:
        session = self._undelivered.get(request.dispatch_id)
        if session is None:
            data = await send(
                self._http,
                LABEL,
                "POST",
                f"{self.base_url}{SESSIONS_PATH}",
                headers=self._headers(),
                json=self.body(request),
                explain=CREATE_EXPLAIN,
            )
            session = self._session(data)
            _remember(self._undelivered, request.dispatch_id, session)
        elif await self._prompted(session.id, request.dispatch_id):
            # An earlier attempt's prompt arrived although its answer was lost.
            self._undelivered.pop(request.dispatch_id, None)
            return session
        try:
            await send(
                self._http,
                LABEL,
                "POST",
                self.base_url + MESSAGES_PATH.format(id=session.id),
                headers=self._headers(),
                json={"message": request.prompt, "client_id": request.dispatch_id},
                explain=PROMPT_EXPLAIN,
            )
        except PlatformError as exc:
            if not exc.transient:
                self._undelivered.pop(request.dispatch_id, None)
            raise PlatformError(
                f"the Agen session {session.url} was created but the prompt could not be "
                f"sent: {exc.message}",
                status=exc.status,
                transient=exc.transient,
                retry_after=exc.retry_after,
                ambiguous=exc.ambiguous,
            ) from exc
        self._undelivered.pop(request.dispatch_id, None)
        return session

    async def find_session(self, request: SessionRequest) -> Session | None:
        if request.dispatch_id in self._undelivered:
            return None  # create_session resumes with the prompt
        data = await self._get(SESSIONS_PATH)
        items = data.get("items") if isinstance(data, dict) else None
        mine = [
            item
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict)
            and item.get("id")
            and item.get("branch_name") == request.branch_name
        ]
        unprompted: Session | None = None
        for item in mine[:CANDIDATES]:
            events = await self._events(str(item["id"]))
            users = [e for e in events if e.get("type") == "user_message"]
            if any(e.get("client_id") == request.dispatch_id for e in users):
                return self._session(item)
            if not users and unprompted is None:
                unprompted = self._session(item)
        if unprompted is not None:
            # Created before a crash, never prompted: prompt it rather than make another.
            _remember(self._undelivered, request.dispatch_id, unprompted)
        return None

    async def _prompted(self, session_id: str, dispatch_id: str) -> bool:
        return any(
            e.get("type") == "user_message" and e.get("client_id") == dispatch_id
            for e in await self._events(session_id)
        )

    async def _events(self, session_id: str) -> list[dict[str, Any]]:
        data = await self._get(EVENTS_PATH.format(id=session_id))
        return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []

    async def _get(self, path: str) -> Any:
        """A read for reconciling; None when Agen refuses it (a key without the
        sessions:read scope must still be able to create sessions: the worker then sends
        again, which may duplicate)."""
        try:
            return await send(
                self._http,
                LABEL,
                "GET",
                f"{self.base_url}{path}",
                headers=self._headers(),
            )
        except PlatformError as exc:
            if exc.transient:
                raise
            return None

    def _session(self, data: Any) -> Session:
        if not isinstance(data, dict) or not data.get("id"):
            raise PlatformError(
                "Agen answered without a session id", transient=True, ambiguous=True
            )
        session_id = str(data["id"])
        return Session(
            id=session_id,
            url=self.session_url.format(id=session_id),
            status=str(data.get("status") or ""),
        )


def _remember(memory: OrderedDict[str, T], key: str, value: T) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > MEMORY:
        memory.popitem(last=False)
