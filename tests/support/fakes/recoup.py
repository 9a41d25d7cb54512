"""A fake of Recoup's API (seed 002: POST /api/sessions; developers.recoupable.com
api-reference/chat/runs: POST /api/chat/runs).

Strict about the request: `x-api-key`, JSON bodies holding only the fields the pages list
with the types they give (Recoup's own validation drops unknown keys silently; refusing
them here catches a field the adapter should not send), and answers with every field of
the pages' examples. Errors use the API's shape, `{status: "error", error}`
(github.com/recoupable/api lib/sessions/validateCreateSessionBody.ts).

`POST /api/chat/runs` also takes `sessionId` and `chatId`, which the adapter sends to aim
the prompt at the session it created. The chat/runs page lists them only in its answer;
see `CHAT_RUNS_PATH` in bot/adapters/platforms/recoup.py.

Following a session (github.com/recoupable/docs api-reference/openapi/sessions.json and
api-reference/chat/*, handlers in github.com/recoupable/api lib/chat/):
`GET /api/sessions/{sessionId}` -> `{session}`; `GET /api/sessions/{sessionId}/chats` ->
`{chats, defaultModelId}`; `POST /api/chat/workflow {messages, chatId, sessionId,
context?}` answers a stream, 400 while the session's sandbox is not active
(`lifecycleState` other than `active`), 409 while the chat streams another reply;
`POST /api/chat/{chatId}/stop` (chatId a UUID, body empty or `{assistantMessage}`)
answers `{success, stopped}`. Sessions move on with `advance(id, **fields)` or a `script`
of such changes, one taken per read of that session; `reply_done(chat_id)` ends a
streaming reply. Workflows started and chats stopped are recorded in `workflows` and
`stops`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

SESSION_FIELDS: dict[str, tuple[type, ...]] = {
    "title": (str,),
    "repoOwner": (str,),
    "repoName": (str,),
    "branch": (str,),
    "cloneUrl": (str,),
    "isNewBranch": (bool,),
    "sandboxType": (str,),
}
RUN_FIELDS: dict[str, tuple[type, ...]] = {
    "prompt": (str,),
    "messages": (list,),
    "artistId": (str,),
    "model": (str,),
    # Not on the page's request schema; see the module docstring.
    "sessionId": (str,),
    "chatId": (str,),
}
WORKFLOW_FIELDS: dict[str, tuple[type, ...]] = {
    "messages": (list,),
    "chatId": (str,),
    "sessionId": (str,),
    "context": (dict,),
}
NOW = "2026-11-26T06:00:00Z"
ONE = re.compile(r"^/api/sessions/([^/]+)$")
CHATS = re.compile(r"^/api/sessions/([^/]+)/chats$")
STOP = re.compile(r"^/api/chat/([^/]+)/stop$")
DEFAULT_MODEL = "anthropic/claude-haiku-4.5"


def problems(body: Any, fields: dict[str, tuple[type, ...]]) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be an object"]
    found = [f"unknown field {key}" for key in body if key not in fields]
    found += [
        f"{key} has the wrong type"
        for key, kinds in fields.items()
        if key in body and not isinstance(body[key], kinds)
    ]
    return found


def session_problems(body: Any) -> list[str]:
    found = problems(body, SESSION_FIELDS)
    if isinstance(body, dict) and body.get("sandboxType", "vercel") != "vercel":
        found.append("sandboxType must be vercel")
    return found


def run_problems(body: Any) -> list[str]:
    found = problems(body, RUN_FIELDS)
    if isinstance(body, dict):
        prompt = body.get("prompt")
        has_prompt = isinstance(prompt, str) and bool(prompt.strip())
        if has_prompt == bool(body.get("messages")):
            found.append("Exactly one of prompt or messages must be provided")
    return found


def workflow_problems(body: Any) -> list[str]:
    """recoupable/api lib/chat/validateChatWorkflowBody.ts, and a UIMessage per item."""
    found = problems(body, WORKFLOW_FIELDS)
    if not isinstance(body, dict):
        return found
    for key in ("messages", "chatId", "sessionId"):
        if key not in body:
            found.append(f"{key} is required")
    for key in ("chatId", "sessionId"):
        if body.get(key) == "":
            found.append(f"{key} is required")
    for message in body.get("messages") or []:
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("id"), str)
            or message.get("role") not in ("user", "assistant")
            or not isinstance(message.get("parts"), list)
        ):
            found.append("messages must be UIMessages {id, role, parts}")
    return found


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def failure(status: int, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"status": "error", "error": message}, headers=headers)


@dataclass
class FakeRecoup:
    api_key: str = "recoup-test-key"
    host: str = "api.recoup.test"
    sessions: list[dict[str, Any]] = field(default_factory=list)
    chats: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    # Called after the request passed validation; may answer instead, or raise.
    fault: Callable[[httpx.Request], httpx.Response | None] | None = None
    # Per session id: changes for `advance`, one applied at each read of that session.
    script: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    workflows: list[dict[str, Any]] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("x-api-key") != self.api_key:
            return failure(401, "Unauthorized")
        method, path = request.method, request.url.path
        body: Any = None
        if method == "POST" and path in ("/api/sessions", "/api/chat/runs", "/api/chat/workflow"):
            try:
                body = json.loads(request.content)
            except ValueError:
                return failure(400, "Invalid JSON body")
            checks = {
                "/api/sessions": session_problems,
                "/api/chat/runs": run_problems,
                "/api/chat/workflow": workflow_problems,
            }
            found = checks[path](body)
        elif method == "GET" and (ONE.match(path) or CHATS.match(path)):
            found = ["no query parameters are documented"] if request.url.params else []
        elif method == "POST" and STOP.match(path):
            if request.content:
                try:
                    body = json.loads(request.content)
                except ValueError:
                    return failure(400, "Invalid JSON body")
            found = problems(body, {"assistantMessage": (dict,)}) if body is not None else []
        else:
            return failure(404, "Not found")
        self.requests.append((method, path, body))
        if found:
            return failure(400, "; ".join(found))
        if self.fault is not None:
            injected = self.fault(request)
            if injected is not None:
                return injected
        return self.answer(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        """Carry the (valid) request out, as Recoup would; tests call it from a fault
        to model an answer lost after the work was done."""
        path = request.url.path
        if request.method == "GET" or STOP.match(path):
            return self.follow(request)
        body = json.loads(request.content)
        if path == "/api/sessions":
            return httpx.Response(200, json=self.create(body))
        if path == "/api/chat/workflow":
            return self.workflow(body)
        if not any(s["id"] == body.get("sessionId") for s in self.sessions) or not any(
            c["id"] == body.get("chatId") for c in self.chats
        ):
            return failure(404, "Session or chat not found")
        run = {"runId": f"wrun_{uuid.uuid4().hex[:26]}", **_ids(body)}
        self.runs.append({**run, "prompt": body["prompt"]})
        return httpx.Response(202, json=run)

    def follow(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        stop = STOP.match(path)
        if stop:
            chat_id = stop.group(1)
            if not is_uuid(chat_id):
                return failure(400, "chatId must be a valid UUID")
            chat = self.chat(chat_id)
            if chat is None:
                return failure(404, "Chat not found")
            stopped = chat["activeStreamId"] is not None
            chat["activeStreamId"] = None
            if stopped:
                self.stops.append(chat_id)
            return httpx.Response(200, json={"success": True, "stopped": stopped})
        matched = ONE.match(path) or CHATS.match(path)
        assert matched is not None
        session = self.session(matched.group(1))
        if session is None:
            return failure(404, "Session not found")
        if ONE.match(path):
            steps = self.script.get(session["id"])
            if steps:
                self.advance(session["id"], **steps.pop(0))
            return httpx.Response(200, json={"session": session})
        chats = [
            {**chat, "hasUnread": False, "isStreaming": chat["activeStreamId"] is not None}
            for chat in self.chats
            if chat["sessionId"] == session["id"]
        ]
        return httpx.Response(200, json={"chats": chats, "defaultModelId": DEFAULT_MODEL})

    def workflow(self, body: dict[str, Any]) -> httpx.Response:
        """recoupable/api lib/chat/handleChatWorkflowStream.ts, in its order of checks."""
        session = self.session(body["sessionId"])
        if session is None:
            return failure(404, "Session not found")
        if session["lifecycleState"] != "active":
            return failure(400, "Sandbox not initialized")
        chat = self.chat(body["chatId"])
        if chat is None or chat["sessionId"] != session["id"]:
            return failure(404, "Chat not found")
        if chat["activeStreamId"] is not None:
            return failure(409, "Another workflow is already running for this chat")
        run_id = f"wrun_{uuid.uuid4().hex[:26]}"
        chat["activeStreamId"] = run_id
        self.workflows.append({"runId": run_id, **body})
        stream = 'data: {"type":"start"}\n\ndata: {"type":"start-step"}\n\n'
        return httpx.Response(
            200,
            content=stream.encode(),
            headers={"content-type": "text/event-stream", "x-workflow-run-id": run_id},
        )

    def session(self, session_id: str) -> dict[str, Any] | None:
        return next((s for s in self.sessions if s["id"] == session_id), None)

    def chat(self, chat_id: str) -> dict[str, Any] | None:
        return next((c for c in self.chats if c["id"] == chat_id), None)

    def advance(self, session_id: str, **fields: Any) -> None:
        """Move a session on: `status`, `lifecycleState`, `lifecycleError`, ..."""
        session = self.session(session_id)
        assert session is not None, session_id
        session.update(fields)

    def reply_done(self, chat_id: str) -> None:
        chat = self.chat(chat_id)
        assert chat is not None, chat_id
        chat["activeStreamId"] = None

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        session_id = str(uuid.uuid4())
        session = {
            "id": session_id,
            "userId": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
            "title": body.get("title") or "Lisbon",
            "status": "running",
            "isNewBranch": body.get("isNewBranch", False),
            "globalSkillRefs": [],
            "lifecycleVersion": 1,
            "createdAt": NOW,
            "updatedAt": NOW,
            "repoOwner": body.get("repoOwner"),
            "repoName": body.get("repoName"),
            "branch": "rc/ab12cd34" if body.get("isNewBranch") else body.get("branch"),
            "cloneUrl": body.get("cloneUrl"),
            "sandboxState": {},
            "lifecycleState": "provisioning",
            "lastActivityAt": NOW,
            "sandboxExpiresAt": None,
            "hibernateAfter": None,
            "lifecycleRunId": None,
            "lifecycleError": None,
            "linesAdded": 0,
            "linesRemoved": 0,
            "snapshotUrl": None,
            "snapshotCreatedAt": None,
            "snapshotSizeBytes": None,
            "cachedDiff": None,
            "cachedDiffUpdatedAt": None,
        }
        chat = {
            "id": str(uuid.uuid4()),
            "sessionId": session_id,
            "title": "New chat",
            "modelId": "anthropic/claude-haiku-4.5",
            "createdAt": NOW,
            "updatedAt": NOW,
            "activeStreamId": None,
            "lastAssistantMessageAt": None,
        }
        self.sessions.append(session)
        self.chats.append(chat)
        return {"session": session, "chat": chat}


def _ids(body: dict[str, Any]) -> dict[str, str]:
    return {"chatId": body["chatId"], "sessionId": body["sessionId"]}
