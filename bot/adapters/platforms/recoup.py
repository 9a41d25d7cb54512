"""Recoup (seed 002): `POST /api/sessions` with an `x-api-key`, then the prompt as the
first message of the chat that call returns. The link posted back is the session's chat
page (`RECOUP_CHAT_URL`).

The two calls are one unit for the worker: a session whose prompt could not be sent is
remembered by dispatch id, so the retry sends only the prompt. That memory lives in this
process only. Recoup documents no call that lists sessions, so:

- a crash (or a restart) between the two calls creates a second session on the retry,
  and the first is left without a prompt;
- a create whose answer was lost (a timeout after sending) may duplicate the session;
- a prompt whose answer was lost may be sent twice.

This module sends only the fields the pages list and turns answers into a `Session` or a
`PlatformError`; retries and the job's progress belong to the worker.

Following a session (issue 10). Sources: developers.recoupable.com/api-reference/sessions
and /chat, whose OpenAPI is github.com/recoupable/docs api-reference/openapi/sessions.json;
handlers in github.com/recoupable/api.

- followed: `status` (running, completed, failed, archived) and, while running,
  `lifecycleState` (provisioning, active, hibernating, hibernated, restoring, archived,
  failed), with `lifecycleError` as the failure reason, read with
  `GET /api/sessions/{sessionId}`. Not followed: pull requests. A Recoup session names
  its repository and `branch` but no pull request;
- follow-up messages: `POST /api/chat/workflow {messages, chatId, sessionId}`, the call
  Recoup's own chat uses to speak in an existing session's chat, aimed at the session's
  first chat (`GET /api/sessions/{sessionId}/chats`, oldest first). It starts a durable
  workflow and answers with its stream; the adapter reads only the status and closes the
  stream, and the workflow goes on (it is stopped only by the stop call below). Recoup
  refuses it (400) until the session's sandbox is active, and with 409 while another
  reply is streaming in that chat, which the worker retries. The message carries no
  dispatch id field; its UIMessage id is derived from the dispatch id;
- stop: `POST /api/chat/{chatId}/stop` (api-reference/chat/stop; answers
  `{success, stopped}`) for every chat of the session. It cancels the reply being
  streamed; the session itself stays `running`, so a read after a stop does not say
  "stopped".

The prompt itself goes through `POST /api/chat/runs`, which (see `CHAT_RUNS_PATH`)
provisions a session of its own: the session followed here is the one `POST
/api/sessions` made, which that prompt does not reach.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx

from bot import __version__
from bot.adapters.platforms.transport import (
    TIMEOUT,
    error_for,
    remember,
    send,
)
from bot.ports import (
    PlatformError,
    Session,
    SessionRequest,
    SessionState,
)

NAME = "recoup"
LABEL = "Recoup"
CREATE_PATH = "/api/sessions"
# Where the prompt goes. Documented at developers.recoupable.com/api-reference/chat/runs
# (POST /api/chat/runs, x-api-key), but that page's body lists only `prompt` | `messages`,
# `artistId` and `model`; `sessionId` and `chatId` appear only in its 202 answer
# `{runId, chatId, sessionId}`, and the page says the run provisions its own session.
# The API's source agrees (github.com/recoupable/api lib/chat/runs/validateChatRunRequest.ts
# strips unknown keys, so the two ids are dropped, not refused). The documented way to
# speak in an existing session's chat is POST /api/chat/workflow {messages, chatId,
# sessionId}, which needs a provisioned sandbox and answers with a stream. Sent here as
# the brief of issue 5 asks; see the README's Recoup paragraph.
CHAT_RUNS_PATH = "/api/chat/runs"
# sessions.json: GET /api/sessions/{sessionId} -> {session: Session}.
SESSION_PATH = "/api/sessions/{id}"
# sessions.json: GET /api/sessions/{sessionId}/chats -> {chats: [ChatSummary], defaultModelId},
# "sorted by createdAt ascending".
CHATS_PATH = "/api/sessions/{id}/chats"
# developers.recoupable.com/api-reference/chat/workflow; body schema in recoupable/api
# lib/chat/validateChatWorkflowBody.ts: {messages: UIMessage[], chatId, sessionId, context?}.
# Answers a UI-message stream (recoupable/api lib/chat/handleChatWorkflowStream.ts).
WORKFLOW_PATH = "/api/chat/workflow"
# developers.recoupable.com/api-reference/chat/stop (recoupable/docs api-reference/chat/
# stop.mdx); recoupable/api lib/chat/handleStopChatWorkflow.ts answers {success, stopped}.
STOP_PATH = "/api/chat/{id}/stop"
# sessions.json Session.status / Session.lifecycleState.
STATUS_PHASES = {"completed": "finished", "failed": "failed", "archived": "stopped"}
LIFECYCLE_PHASES = {
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
PROMPT_EXPLAIN = {
    **CREATE_EXPLAIN,
    404: "Recoup does not know the session or chat it just created",
}
# Enough for every dispatch a process retries; old entries are dropped first.


@dataclass(frozen=True)
class _Created:
    session_id: str
    chat_id: str
    status: str


class RecoupPlatform:
    name = NAME
    can_find = False  # Recoup documents no call that lists sessions
    can_read = True  # GET /api/sessions/{sessionId}
    can_message = True  # POST /api/chat/workflow, into the session's first chat
    can_stop = True  # POST /api/chat/{chatId}/stop, for each of its chats

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_key: str,
        base_url: str = "https://api.recoupable.com",
        chat_url: str = "https://chat.recoupable.com/sessions/{session_id}/chats/{chat_id}",
    ) -> None:
        self._http = http
        self._key = api_key
        self.base_url = base_url.rstrip("/")
        self.chat_url = chat_url
        # Created, prompt not yet accepted: the retry sends only the prompt.
        self._undelivered: OrderedDict[str, _Created] = OrderedDict()
        # Created and prompted: what find_session can answer without a list call.
        self._started: OrderedDict[str, Session] = OrderedDict()

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self._key, "Accept": "application/json"}

    def body(self, request: SessionRequest) -> dict[str, Any]:
        """The create body: only fields seed 002 lists. With `isNewBranch` Recoup names
        the branch itself and ignores `branch`."""
        return {
            "title": request.title,
            "repoOwner": request.repository.owner,
            "repoName": request.repository.name,
            "branch": request.branch_name,
            "cloneUrl": request.repository.clone_url,
            "isNewBranch": True,
        }

    async def create_session(self, request: SessionRequest) -> Session:
        created = self._undelivered.get(request.dispatch_id)
        if created is None:
            data = await send(
                self._http,
                LABEL,
                "POST",
                f"{self.base_url}{CREATE_PATH}",
                headers=self._headers(),
                json=self.body(request),
                explain=CREATE_EXPLAIN,
            )
            created = _created(data)
            remember(self._undelivered, request.dispatch_id, created)
        session = Session(
            id=created.session_id,
            url=self.chat_url.format(session_id=created.session_id, chat_id=created.chat_id),
            status=created.status,
        )
        try:
            await send(
                self._http,
                LABEL,
                "POST",
                f"{self.base_url}{CHAT_RUNS_PATH}",
                headers=self._headers(),
                json={
                    "prompt": request.prompt,
                    "sessionId": created.session_id,
                    "chatId": created.chat_id,
                },
                explain=PROMPT_EXPLAIN,
            )
        except PlatformError as exc:
            if not exc.transient:
                self._undelivered.pop(request.dispatch_id, None)
            raise exc.reworded(
                f"the Recoup session {session.url} was created but the prompt could not be "
                f"sent: {exc.message}"
            ) from exc
        self._undelivered.pop(request.dispatch_id, None)
        remember(self._started, request.dispatch_id, session)
        return session

    async def find_session(self, request: SessionRequest) -> Session | None:
        # No list call: only what this process saw. A session created but not yet
        # prompted is not "found", so the worker calls create_session, which resumes.
        return self._started.get(request.dispatch_id)

    async def get_session(self, session_id: str) -> SessionState:
        data = await send(
            self._http,
            LABEL,
            "GET",
            self.base_url + SESSION_PATH.format(id=session_id),
            headers=self._headers(),
            explain=_follow_explain(session_id),
        )
        session = data.get("session") if isinstance(data, dict) else None
        if not isinstance(session, dict):
            raise PlatformError("Recoup answered a session read with no session", transient=True)
        return session_state(session)

    async def send_message(self, session_id: str, text: str, dispatch_id: str) -> None:
        chats = await self._chats(session_id)
        if not chats:
            raise PlatformError(f"the Recoup session {session_id} has no chat", transient=False)
        message = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"tembo-dispatch:{dispatch_id}")),
            "role": "user",
            "parts": [{"type": "text", "text": text}],
        }
        await self._start_workflow(
            {"messages": [message], "chatId": chats[0], "sessionId": session_id},
            _follow_explain(session_id),
        )

    async def stop_session(self, session_id: str) -> None:
        for chat_id in await self._chats(session_id):
            await send(
                self._http,
                LABEL,
                "POST",
                self.base_url + STOP_PATH.format(id=chat_id),
                headers=self._headers(),
                explain=_follow_explain(session_id),
            )

    async def _chats(self, session_id: str) -> list[str]:
        """The ids of the session's chats, oldest first."""
        data = await send(
            self._http,
            LABEL,
            "GET",
            self.base_url + CHATS_PATH.format(id=session_id),
            headers=self._headers(),
            explain=_follow_explain(session_id),
        )
        chats = data.get("chats") if isinstance(data, dict) else None
        return [
            str(chat["id"])
            for chat in (chats if isinstance(chats, list) else [])
            if isinstance(chat, dict) and chat.get("id")
        ]

    async def _start_workflow(self, body: dict[str, Any], explain: dict[int, str]) -> None:
        """POST /api/chat/workflow and close its stream once the status is known.

        The same error classes as `transport.send`, which cannot be used here: it reads
        the whole body, and this one lasts as long as the agent's reply."""
        headers = {"User-Agent": f"tembo-dispatch/{__version__}", **self._headers()}
        try:
            async with self._http.stream(
                "POST",
                f"{self.base_url}{WORKFLOW_PATH}",
                headers=headers,
                json=body,
                timeout=TIMEOUT,
            ) as response:
                if response.status_code < 300:
                    return
                await response.aread()
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise PlatformError(
                f"could not reach {LABEL} ({type(exc).__name__})", transient=True
            ) from exc
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise PlatformError(
                f"{LABEL} did not answer in time ({type(exc).__name__})",
                transient=True,
                ambiguous=True,
            ) from exc
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
        401: "RECOUP_API_KEY was refused; create a new key in Recoup's developer settings",
        403: f"the Recoup key's account does not own session {session_id}",
        404: f"Recoup does not know session {session_id} (or RECOUP_BASE_URL is wrong)",
    }


def _created(data: Any) -> _Created:
    session = data.get("session") if isinstance(data, dict) else None
    chat = data.get("chat") if isinstance(data, dict) else None
    if (
        not isinstance(session, dict)
        or not isinstance(chat, dict)
        or not session.get("id")
        or not chat.get("id")
    ):
        raise PlatformError(
            "Recoup answered without a session and chat id", transient=True, ambiguous=True
        )
    status = session.get("status") or session.get("lifecycleState") or ""
    return _Created(str(session["id"]), str(chat["id"]), str(status))
