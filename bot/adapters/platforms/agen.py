"""Agen (seed 003): `POST /api/v1/sessions` with an `x-api-key`, then the prompt as the
session's first user message. The link posted back is `AGEN_SESSION_URL` with the id.

The create call names no repository: the workspace that owns the key decides it. The two
calls are one unit for the worker, each journaled in the dispatch's `Steps` (in the store),
so a retry on any replica resumes at the call that failed:

1. before the create is sent, the journal notes that it was sent; once answered, it holds
   the session's id. A retry that finds the note but no id (the answer was lost, or the
   process died) adopts the session on our branch that has no user message yet, if there
   is one, instead of creating another;
2. the prompt carries the dispatch id as its `client_id`, so a retry after a lost answer
   first looks at the session's events and does not send it twice.

`find_session` finds a finished unit: a session on our branch whose events hold our
`client_id`. Dispatches for the same issue share a branch name, so the one risk left is
adopting an unprompted session another dispatch for that issue abandoned.

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

from typing import Any

import httpx

from bot.adapters.platforms.transport import Api, follow_explain, items, session_from
from bot.ports import Phase, PlatformError, Session, SessionRequest, SessionState, Steps

NAME = "agen"
LABEL = "Agen"
SESSIONS_PATH = "/api/v1/sessions"
# docs.agenhq.com/api-reference/sessions/send-a-user-message-to-the-agent-in-a-session:
# body {message (required, minLength 1), client_id}; answers the stored session event.
MESSAGES_PATH = "/api/v1/sessions/{id}/messages"
# docs.agenhq.com/api-reference/sessions/get-the-session-timeline-events: a list of events.
EVENTS_PATH = "/api/v1/sessions/{id}/events"
# get-the-session-timeline-events: event `type`s that end a session (the phase they mean),
# and the `status` values of an event (completed, queued, processing, canceled) as the
# phase of the newest user message.
ENDINGS: dict[str, Phase] = {
    "session_finished": "finished",
    "merge_request_merged": "finished",
    "session_closed": "stopped",
    "merge_request_closed": "stopped",
}
ENDING_REASONS = {
    "session_closed": "Agen closed the session",
    "merge_request_closed": "the merge request was closed without being merged",
}
MESSAGE_PHASES: dict[str, Phase] = {
    "queued": "queued",
    "processing": "working",
    "completed": "working",
    "canceled": "stopped",
}
# The dispatch's journal keys (ports.Steps): the create was sent; the session it made.
STEP_CREATE = "agen.create"
STEP_SESSION = "agen.session"
SENT = "sent"
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
        self.client = Api(http, LABEL, base_url, {"x-api-key": api_key})
        self.base_url = self.client.base_url
        self.session_url = session_url

    def body(self, request: SessionRequest) -> dict[str, Any]:
        """The create body: only fields seed 003 lists. `auto_commit` so the agent's work
        lands on the branch it is given."""
        body: dict[str, Any] = {"branch_name": request.branch_name, "auto_commit": True}
        if request.agent:
            body["model"] = request.agent
        return body

    async def create_session(self, request: SessionRequest, steps: Steps) -> Session:
        session, resumed = await self._created(request, steps)
        if resumed and await self._prompted(session.id, request.dispatch_id):
            return session  # an earlier attempt's prompt arrived although its answer was lost
        try:
            await self.client.post(
                MESSAGES_PATH.format(id=session.id),
                json={"message": request.prompt, "client_id": request.dispatch_id},
                explain=PROMPT_EXPLAIN,
            )
        except PlatformError as exc:
            raise exc.reworded(
                f"the Agen session {session.url} was created but the prompt could not be "
                f"sent: {exc.message}"
            ) from exc
        return session

    async def _created(self, request: SessionRequest, steps: Steps) -> tuple[Session, bool]:
        """Step 1: the session this dispatch made, from the journal, else adopted after a
        lost answer, else created now; and whether an earlier attempt made it."""
        known = steps.get(STEP_SESSION)
        if known:
            return Session(id=known, url=self.session_url.format(id=known)), True
        session = await self._unprompted(request) if steps.get(STEP_CREATE) == SENT else None
        if session is None:
            # Noted before sending: a process that dies mid-call leaves it for the retry.
            await steps.put(STEP_CREATE, SENT)
            try:
                data = await self.client.post(
                    SESSIONS_PATH, json=self.body(request), explain=CREATE_EXPLAIN
                )
            except PlatformError as exc:
                if not exc.ambiguous:
                    await steps.put(STEP_CREATE, "")  # nothing was made: nothing to adopt
                raise
            made = self._session(data)
            await steps.put(STEP_SESSION, made.id)
            return made, False
        await steps.put(STEP_SESSION, session.id)
        return session, True

    async def _mine(self, request: SessionRequest) -> list[dict[str, Any]]:
        """The sessions on this dispatch's branch, as far as the list shows them."""
        return [
            item
            for item in items(await self.client.lookup(SESSIONS_PATH), "items")
            if item.get("id") and item.get("branch_name") == request.branch_name
        ][:CANDIDATES]

    async def _unprompted(self, request: SessionRequest) -> Session | None:
        """A session on our branch with no user message yet: ours, created before its
        answer was lost."""
        for item in await self._mine(request):
            if not any(e.get("type") == "user_message" for e in await self._events(item["id"])):
                return self._session(item)
        return None

    async def find_session(self, request: SessionRequest) -> Session | None:
        for item in await self._mine(request):
            if await self._prompted(str(item["id"]), request.dispatch_id):
                return self._session(item)
        return None  # create_session resumes from the journal

    async def get_session(self, session_id: str) -> SessionState:
        data = await self.client.get(
            EVENTS_PATH.format(id=session_id),
            explain=_follow_explain(session_id, "sessions:read", "all:read"),
        )
        if not isinstance(data, list):
            raise PlatformError("Agen answered a timeline read with no events", transient=True)
        return timeline_state([e for e in data if isinstance(e, dict)])

    async def send_message(self, session_id: str, text: str, dispatch_id: str) -> None:
        if await self._prompted(session_id, dispatch_id):
            return  # an earlier attempt arrived although its answer was lost
        await self.client.post(
            MESSAGES_PATH.format(id=session_id),
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
        data = await self.client.lookup(EVENTS_PATH.format(id=session_id))
        return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []

    def _session(self, data: Any) -> Session:
        return session_from(data, "Agen", self.session_url)


def timeline_state(events: list[dict[str, Any]]) -> SessionState:
    """The phase a session's timeline ends in, oldest event first as Agen lists them.

    A user message after an ending (a follow-up) starts the session again."""
    phase: Phase = "queued"
    raw, reason = "", ""
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
        **follow_explain(LABEL, CREATE_EXPLAIN[401], "AGEN_BASE_URL", session_id),
        403: f"the Agen key lacks a scope this needs: {wanted}",
    }
