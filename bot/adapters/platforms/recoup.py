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
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from bot.adapters.platforms.transport import send
from bot.ports import PlatformError, Session, SessionRequest

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
MEMORY = 1000

T = TypeVar("T")


@dataclass(frozen=True)
class _Created:
    session_id: str
    chat_id: str
    status: str


class RecoupPlatform:
    name = NAME
    can_find = False  # Recoup documents no call that lists sessions

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
            _remember(self._undelivered, request.dispatch_id, created)
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
            raise PlatformError(
                f"the Recoup session {session.url} was created but the prompt could not be "
                f"sent: {exc.message}",
                status=exc.status,
                transient=exc.transient,
                retry_after=exc.retry_after,
                ambiguous=exc.ambiguous,
            ) from exc
        self._undelivered.pop(request.dispatch_id, None)
        _remember(self._started, request.dispatch_id, session)
        return session

    async def find_session(self, request: SessionRequest) -> Session | None:
        # No list call: only what this process saw. A session created but not yet
        # prompted is not "found", so the worker calls create_session, which resumes.
        return self._started.get(request.dispatch_id)


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


def _remember(memory: OrderedDict[str, T], key: str, value: T) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > MEMORY:
        memory.popitem(last=False)
