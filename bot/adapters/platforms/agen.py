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

Following a session (issue 10):

- followed: the phase, read from the session's timeline
  (`GET /api/v1/sessions/{id}/events`, get-the-session-timeline-events): the event types
  `session_finished`, `merge_request_merged`, `session_closed` and `merge_request_closed`
  end a session, and the `status` of the newest `user_message` (queued, processing,
  completed, canceled) says whether the agent has taken up the work. Agen documents no
  call that reads one session: the session object's `status`, `agent_status` and
  `merged_at` (coding-agent-api/schemas/session) only come in the list, whose values the
  pages do not enumerate and whose pages we cannot walk (no cursor parameter is
  documented), so they are not used;
- not followed: pull-request links. The pages name no field that carries the merge
  request's URL (the timeline's payloads are documented only by their type names);
- follow-up messages: the same call as the prompt, `POST /api/v1/sessions/{id}/messages
  {message, client_id}`, with the dispatch id as `client_id`; a message already in the
  timeline under that `client_id` is not sent again;
- stop: not offered. No Agen page documents a call that stops or cancels a session.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import httpx

from bot.adapters.platforms.transport import remember, send, session_from
from bot.ports import PlatformError, Session, SessionRequest, SessionState, Steps

NAME = "agen"
LABEL = "Agen"
SESSIONS_PATH = "/api/v1/sessions"
# The journal step (ports.Steps) holding the id of a session created but maybe not prompted.
STEP_SESSION = "agen.session"
# docs.agenhq.com/api-reference/sessions/send-a-user-message-to-the-agent-in-a-session:
# body {message (required, minLength 1), client_id}; answers the stored session event.
MESSAGES_PATH = "/api/v1/sessions/{id}/messages"
# docs.agenhq.com/api-reference/sessions/get-the-session-timeline-events: a list of events.
EVENTS_PATH = "/api/v1/sessions/{id}/events"
# get-the-session-timeline-events: event `type`s that end a session (the phase they mean),
# and the `status` values of an event (completed, queued, processing, canceled) as the
# phase of the newest user message.
ENDINGS = {
    "session_finished": "finished",
    "merge_request_merged": "finished",
    "session_closed": "stopped",
    "merge_request_closed": "stopped",
}
ENDING_REASONS = {
    "session_closed": "Agen closed the session",
    "merge_request_closed": "the merge request was closed without being merged",
}
MESSAGE_PHASES = {
    "queued": "queued",
    "processing": "working",
    "completed": "working",
    "canceled": "stopped",
}
# Sessions sharing the branch whose events are read before giving up.
CANDIDATES = 5
CREATE_EXPLAIN = {
    401: "AGEN_API_KEY was refused; create a new key in Agen's workspace settings",
    403: "the Agen key lacks the sessions:write scope (or sessions:all, all:write, all:all)",
    404: "AGEN_BASE_URL does not point at Agen's API (https://api.agenhq.com)",
}
PROMPT_EXPLAIN = {**CREATE_EXPLAIN, 404: "Agen does not know the session it just created"}


class AgenPlatform:
    name = NAME
    can_find = True  # its session list and events are searched
    can_read = True  # the session's timeline events
    can_message = True  # POST /api/v1/sessions/{id}/messages
    can_stop = False  # no page documents a stop or cancel call

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

    async def create_session(self, request: SessionRequest, steps: Steps) -> Session:
        session = self._undelivered.get(request.dispatch_id)
        noted = steps.get(STEP_SESSION)
        if session is None and noted is not None:
            # Created by an earlier attempt, maybe in a process since killed: the journal
            # (not this process's memory) says so, so it is prompted, never made again.
            session = self._session({"id": noted})
            remember(self._undelivered, request.dispatch_id, session)
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
            remember(self._undelivered, request.dispatch_id, session)
            await steps.put(STEP_SESSION, session.id)
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
            raise exc.reworded(
                f"the Agen session {session.url} was created but the prompt could not be "
                f"sent: {exc.message}"
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
            remember(self._undelivered, request.dispatch_id, unprompted)
        return None

    async def get_session(self, session_id: str) -> SessionState:
        data = await send(
            self._http,
            LABEL,
            "GET",
            self.base_url + EVENTS_PATH.format(id=session_id),
            headers=self._headers(),
            explain=_follow_explain(session_id, "sessions:read", "all:read"),
        )
        if not isinstance(data, list):
            raise PlatformError("Agen answered a timeline read with no events", transient=True)
        return timeline_state([e for e in data if isinstance(e, dict)])

    async def send_message(self, session_id: str, text: str, dispatch_id: str) -> None:
        if await self._prompted(session_id, dispatch_id):
            return  # an earlier attempt arrived although its answer was lost
        await send(
            self._http,
            LABEL,
            "POST",
            self.base_url + MESSAGES_PATH.format(id=session_id),
            headers=self._headers(),
            json={"message": text, "client_id": dispatch_id},
            explain=_follow_explain(session_id, "sessions:write", "all:write"),
        )

    async def stop_session(self, session_id: str) -> None:
        raise PlatformError(
            "Agen does not offer a way to stop a session through its API; stop it in "
            f"Agen itself ({self.session_url.format(id=session_id)})",
            transient=False,
        )

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
        return session_from(data, "Agen", self.session_url)


def timeline_state(events: list[dict[str, Any]]) -> SessionState:
    """The phase a session's timeline ends in, oldest event first as Agen lists them.

    A user message after an ending (a follow-up) starts the session again."""
    phase, raw, reason = "queued", "", ""
    for event in events:
        kind = str(event.get("type") or "")
        if kind in ENDINGS:
            phase, raw, reason = ENDINGS[kind], kind, ENDING_REASONS.get(kind, "")
        elif kind == "user_message":
            status = str(event.get("status") or "")
            phase, raw = MESSAGE_PHASES.get(status, "working"), f"user_message {status}".strip()
            reason = "the message to the agent was canceled" if status == "canceled" else ""
        elif phase == "queued" and kind.startswith("agent_"):
            phase, raw = "working", kind
    return SessionState(phase=phase, raw_status=raw, reason=reason)


def _follow_explain(session_id: str, *scopes: str) -> dict[int, str]:
    wanted = " or ".join((*scopes, "sessions:all", "all:all"))
    return {
        401: "AGEN_API_KEY was refused; create a new key in Agen's workspace settings",
        403: f"the Agen key lacks a scope this needs: {wanted}",
        404: f"Agen does not know session {session_id} (or AGEN_BASE_URL is wrong)",
    }
