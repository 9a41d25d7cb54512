"""Recoup: three calls make one session on the issue's repository, each journaled in
the dispatch's `Steps`, so a retry on any replica resumes at the call that failed:

1. `POST /api/sessions {title}` answers `{session, chat}`. Its body takes only `title`,
   `organizationId` and `artistId` (recoupable/api lib/sessions/validateCreateSessionBody.ts
   at 8a8fc100547de95be6ae3857a90d07dd86c80af9; Zod drops any other key without a word,
   so seed 002's `repoOwner/repoName/branch/cloneUrl/isNewBranch` never reached it);
2. `POST /api/sandbox {repoUrl, sessionId}` clones the issue's repository into the
   session's sandbox and answers once it is active (lib/sandbox/createSandboxHandler.ts,
   validateCreateSandboxBody.ts; recoupable/docs api-reference/openapi/sandbox.json at
   04a2607d32c9e38da0170dbed8731f82fd61dfee). The sandbox is named after the session and
   resumed, not duplicated, when asked again, so this call is safe to repeat. Private
   repositories are cloned with Recoup's server-side GitHub token: the status comment says
   so, and a refusal names it;
3. `POST /api/chat {messages: [UIMessage], chatId, sessionId}` starts the agent in the
   session's first chat (app/api/chat/route.ts, lib/chat/validateChatWorkflow.ts,
   handleChatWorkflowStream.ts). It answers with the agent's stream: only its status is
   read, then it is closed, and the workflow goes on. 400 "Sandbox not initialized" and
   409 (another reply streaming in that chat) are retried with backoff. The message's id
   is derived from the dispatch id; a resend while the agent still runs gets the running
   workflow's stream back rather than a second run, but a resend after it finished starts
   another, so a lost answer here is resent at most once (the worker's rule).

`POST /api/chat/runs`, which the adapter used before, drops `sessionId/chatId`
(lib/chat/runs/validateChatRunRequest.ts) and provisions a session of its own, so each
dispatch made two sessions, neither on the issue's repository. `POST /api/chat/workflow`
is kept by Recoup as an alias of `/api/chat`.

Recoup documents no call that finds a session by anything we send, so `find_session`
finds nothing; the worker resends a create whose answer was lost at most once.

Following a session (recoupable/docs api-reference/openapi/sessions.json):

- followed: `status` (running, completed, failed, archived) and, while running,
  `lifecycleState` (provisioning, active, hibernating, hibernated, restoring, archived,
  failed), with `lifecycleError` as the failure reason, read with
  `GET /api/sessions/{sessionId}`. Not followed: pull requests. A Recoup session names
  no pull request;
- follow-up messages: `POST /api/chat`, as step 3, into the session's first chat
  (`GET /api/sessions/{sessionId}/chats`, oldest first);
- stop: `POST /api/chat/{chatId}/stop` (answers `{success, stopped}`) for every chat of
  the session. It cancels the reply being streamed; the session itself stays `running`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from bot.adapters.platforms.transport import (
    TIMEOUT,
    Api,
    error_for,
    error_message,
    follow_explain,
    items,
    reaching,
    with_agent,
)
from bot.events import dig
from bot.ports import Phase, PlatformError, Session, SessionRequest, SessionState, Steps

NAME = "recoup"
LABEL = "Recoup"
CREATE_PATH = "/api/sessions"
SANDBOX_PATH = "/api/sandbox"
CHAT_PATH = "/api/chat"
# sessions.json: GET /api/sessions/{sessionId} -> {session: Session}.
SESSION_PATH = "/api/sessions/{id}"
# sessions.json: GET /api/sessions/{sessionId}/chats -> {chats: [ChatSummary], defaultModelId},
# "sorted by createdAt ascending".
CHATS_PATH = "/api/sessions/{id}/chats"
# recoupable/docs api-reference/chat/stop.mdx; lib/chat/handleStopChatWorkflow.ts.
STOP_PATH = "/api/chat/{id}/stop"
# Cloning a repository into a fresh sandbox takes minutes when no snapshot exists.
SANDBOX_TIMEOUT = httpx.Timeout(600.0, connect=10.0)
# The dispatch's journal keys (ports.Steps).
STEP_SESSION = "recoup.session"
STEP_CHAT = "recoup.chat"
STEP_SANDBOX = "recoup.sandbox"
STEP_PROMPT = "recoup.prompt"
# sessions.json Session.status / Session.lifecycleState.
STATUS_PHASES: dict[str, Phase] = {
    "completed": "finished",
    "failed": "failed",
    "archived": "stopped",
}
LIFECYCLE_PHASES: dict[str, Phase] = {
    "provisioning": "queued",
    "active": "working",
    "hibernating": "working",
    "hibernated": "working",
    "restoring": "working",
    "archived": "stopped",
    "failed": "failed",
}
CREATE_EXPLAIN = {
    401: "RECOUP_API_KEY was refused; create a new key in Recoup's developer settings",
    403: "the Recoup key may not create sessions for this account",
    404: "RECOUP_BASE_URL does not point at Recoup's API (https://api.recoupable.com)",
}
SANDBOX_EXPLAIN = {
    **CREATE_EXPLAIN,
    400: "Recoup takes only github.com repositories",
    404: "Recoup does not know the session it just created",
    502: (
        "Recoup could not provision the sandbox; for a private repository, Recoup's "
        "server-side GitHub token must have access to it"
    ),
}
PROMPT_EXPLAIN = {
    **CREATE_EXPLAIN,
    404: "Recoup does not know the session or chat it just created",
}
PRIVATE_NOTE = (
    "This repository is private: Recoup clones it with its own server-side GitHub token, "
    "which must have access to {repo}."
)


class RecoupPlatform:
    name = NAME
    can_find = False  # Recoup documents no call that finds a session by our dispatch
    can_read = True  # GET /api/sessions/{sessionId}
    can_message = True  # POST /api/chat, into the session's first chat
    can_stop = True  # POST /api/chat/{chatId}/stop, for each of its chats

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: str,
        base_url: str = "https://api.recoupable.com",
        chat_url: str = "https://chat.recoupable.com/sessions/{session_id}/chats/{chat_id}",
    ) -> None:
        self.client = Api(http, LABEL, base_url, {"x-api-key": api_key})
        self.base_url = self.client.base_url
        self.chat_url = chat_url

    def body(self, request: SessionRequest) -> dict[str, Any]:
        """Step 1's body: the only field of validateCreateSessionBody.ts we have."""
        return {"title": request.title}

    async def create_session(self, request: SessionRequest, steps: Steps) -> Session:
        session_id, chat_id = steps.get(STEP_SESSION), steps.get(STEP_CHAT)
        if session_id is None or chat_id is None:
            data = await self.client.post(
                CREATE_PATH, json=self.body(request), explain=CREATE_EXPLAIN
            )
            created = _created(data)
            session_id, chat_id = created.session_id, created.chat_id
            # The chat first: a session id is only taken as made with its chat beside it.
            await steps.put(STEP_CHAT, chat_id)
            await steps.put(STEP_SESSION, session_id)
        notes = (
            (PRIVATE_NOTE.format(repo=request.repository.full_name),)
            if request.repository.private
            else ()
        )
        session = Session(
            id=session_id,
            url=self.chat_url.format(session_id=session_id, chat_id=chat_id),
            status="running",
            notes=notes,
        )
        if steps.get(STEP_PROMPT) is not None:
            return session  # every step done; only the answer to the worker was lost
        try:
            if steps.get(STEP_SANDBOX) is None:
                await self._sandbox(request, session_id)
                await steps.put(STEP_SANDBOX, "active")
            await self._start_chat(
                {
                    "messages": [_message(request.dispatch_id, request.prompt)],
                    "chatId": chat_id,
                    "sessionId": session_id,
                },
                PROMPT_EXPLAIN,
            )
        except PlatformError as exc:
            raise exc.reworded(
                f"the Recoup session {session.url} was created but could not be started: "
                f"{exc.message}"
            ) from exc
        await steps.put(STEP_PROMPT, "sent")
        return session

    async def _sandbox(self, request: SessionRequest, session_id: str) -> None:
        try:
            await self.client.post(
                SANDBOX_PATH,
                json={"repoUrl": request.repository.html_url, "sessionId": session_id},
                explain=SANDBOX_EXPLAIN,
                wait=SANDBOX_TIMEOUT,
            )
        except PlatformError as exc:
            # The sandbox is named after the session and resumed when asked again: a
            # lost answer is safe to send again, so it is not left "ambiguous".
            if exc.ambiguous:
                exc.ambiguous = False
            raise

    async def find_session(self, request: SessionRequest) -> Session | None:
        return None  # no lookup: the worker resends a lost create at most once

    async def get_session(self, session_id: str) -> SessionState:
        path, explain = SESSION_PATH.format(id=session_id), _follow_explain(session_id)
        session = await self.client.read(path, explain, inside="session", carrying=None)
        return session_state(session)

    async def send_message(self, session_id: str, text: str, dispatch_id: str) -> None:
        chats = await self._chat_list(session_id)
        if not chats:
            raise PlatformError(f"the Recoup session {session_id} has no chat", transient=False)
        first = chats[0]
        if first.get("isStreaming") is True:
            # Recoup answers a message sent now with the running reply's stream and drops
            # the message (lib/chat/maybeResumeChatStream.ts): wait for the reply to end.
            raise PlatformError(
                f"the Recoup session {session_id} is still answering; the message is sent "
                "once it finishes",
                status=409,
                transient=True,
            )
        await self._start_chat(
            {
                "messages": [_message(dispatch_id, text)],
                "chatId": str(first["id"]),
                "sessionId": session_id,
            },
            _follow_explain(session_id),
        )

    async def stop_session(self, session_id: str) -> None:
        for chat_id in await self._chats(session_id):
            await self.client.post(
                STOP_PATH.format(id=chat_id), explain=_follow_explain(session_id)
            )

    async def _chats(self, session_id: str) -> list[str]:
        """The ids of the session's chats, oldest first."""
        return [str(chat["id"]) for chat in await self._chat_list(session_id)]

    async def _chat_list(self, session_id: str) -> list[dict[str, Any]]:
        """The session's chats (ChatSummary), oldest first."""
        data = await self.client.get(
            CHATS_PATH.format(id=session_id), explain=_follow_explain(session_id)
        )
        return [chat for chat in items(data, "chats") if chat.get("id")]

    async def _start_chat(self, body: dict[str, Any], explain: dict[int, str]) -> None:
        """POST /api/chat and close its stream once the status is known.

        The same error classes as `transport.send`, which cannot be used here: it reads
        the whole body, and this one lasts as long as the agent's reply."""
        with reaching(LABEL, ambiguous=True):
            async with self.client.http.stream(
                "POST",
                self.client.url(CHAT_PATH),
                headers=with_agent(self.client.headers),
                json=body,
                timeout=TIMEOUT,
            ) as response:
                if response.status_code < 300:
                    return
                await response.aread()
        # Right after step 2 the session row may not show the sandbox yet: wait, not fail.
        if (
            response.status_code == 400
            and "sandbox not initialized" in error_message(response).lower()
        ):
            error = error_for(LABEL, response, {400: "the session's sandbox is not active yet"})
            error.transient = True
            raise error
        raise error_for(LABEL, response, explain)


def session_state(session: dict[str, Any]) -> SessionState:
    """A `GET /api/sessions/{sessionId}` session, reduced to what the issue shows."""
    status = str(session.get("status") or "")
    lifecycle = str(session.get("lifecycleState") or "")
    error = session.get("lifecycleError")
    reason = error if isinstance(error, str) else ""
    if status in STATUS_PHASES:
        phase = STATUS_PHASES[status]
    else:
        # running (or a status the page does not list): the sandbox's lifecycle tells
        # more; without one the session has not been claimed yet.
        phase = LIFECYCLE_PHASES.get(lifecycle, "queued" if not lifecycle else "working")
    return SessionState(
        phase=phase,
        reason=reason if phase in ("failed", "stopped") else "",
        raw_status=f"{status} ({lifecycle})" if lifecycle else status,
    )


def _follow_explain(session_id: str) -> dict[int, str]:
    return {
        **follow_explain(LABEL, CREATE_EXPLAIN[401], "RECOUP_BASE_URL", session_id),
        403: f"the Recoup key's account does not own session {session_id}",
    }


@dataclass(frozen=True)
class _Created:
    session_id: str
    chat_id: str


def _created(data: Any) -> _Created:
    session, chat = dig(data, "session"), dig(data, "chat")
    if (
        not isinstance(session, dict)
        or not isinstance(chat, dict)
        or not session.get("id")
        or not chat.get("id")
    ):
        raise PlatformError(
            "Recoup answered without a session and chat id", transient=True, ambiguous=True
        )
    return _Created(str(session["id"]), str(chat["id"]))


def _message(dispatch_id: str, text: str) -> dict[str, Any]:
    """A UIMessage whose id is the same for every send of this dispatch."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"tembo-dispatch:{dispatch_id}")),
        "role": "user",
        "parts": [{"type": "text", "text": text}],
    }
