"""A fake of Recoup's API as recoupable/api (8a8fc100547de95be6ae3857a90d07dd86c80af9)
validates it and recoupable/docs api-reference/openapi/{sessions,sandbox}.json document it.

- `POST /api/sessions {title?, organizationId?, artistId?}` (lib/sessions/
  validateCreateSessionBody.ts) answers `{session, chat}`; the session works on Recoup's
  own workspace repository until a sandbox is made for it;
- `POST /api/sandbox {repoUrl, sessionId?}` (lib/sandbox/validateCreateSandboxBody.ts:
  repoUrl must be a github.com repository) answers `{createdAt, timeout, currentBranch,
  mode, timing}` once the sandbox is active, and resumes the session's sandbox when asked
  again (one per session, counted in `sandboxes`);
- `POST /api/chat` (and its alias `/api/chat/workflow`) `{messages, chatId, sessionId,
  context?, recoupAccessToken?}` (lib/chat/validateChatWorkflow.ts): 404 for an unknown
  session or chat, 400 "Sandbox not initialized" until the session's sandbox is active,
  the running workflow's stream again while one streams in that chat (recoupable/api
  lib/chat/maybeResumeChatStream.ts), else a new workflow.

Recoup's Zod schemas drop unknown keys silently; this fake refuses them, so a field the
adapter should not send (one Recoup would ignore) fails a test instead. Errors use the
API's shape, `{status: "error", error}`.

Following a session: `GET /api/sessions/{sessionId}` -> `{session}`;
`GET /api/sessions/{sessionId}/chats` -> `{chats, defaultModelId}`;
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
    "organizationId": (str,),
    "artistId": (str,),
}
SANDBOX_FIELDS: dict[str, tuple[type, ...]] = {"repoUrl": (str,), "sessionId": (str,)}
WORKFLOW_FIELDS: dict[str, tuple[type, ...]] = {
    "messages": (list,),
    "chatId": (str,),
    "sessionId": (str,),
    "context": (dict,),
    "recoupAccessToken": (str,),
}
CHAT_PATHS = ("/api/chat", "/api/chat/workflow")
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
    if isinstance(body, dict):
        for key in ("organizationId", "artistId"):
            if isinstance(body.get(key), str) and not is_uuid(body[key]):
                found.append(f"{key} must be a valid UUID")
    return found


def sandbox_problems(body: Any) -> list[str]:
    """lib/sandbox/validateCreateSandboxBody.ts and lib/github/parseGitHubRepoUrl.ts."""
    found = problems(body, SANDBOX_FIELDS)
    if not isinstance(body, dict):
        return found
    url = body.get("repoUrl")
    if not isinstance(url, str) or not url:
        return [*found, "repoUrl is required"]
    parsed = httpx.URL(url)
    segments = [part for part in parsed.path.split("/") if part]
    if parsed.host != "github.com" or len(segments) < 2:
        found.append("repoUrl must be a valid GitHub repository URL")
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
    # Session id -> the repository its sandbox cloned, and how often it was asked.
    sandboxes: dict[str, str] = field(default_factory=dict)
    sandbox_calls: int = 0
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
        if method == "POST" and path in ("/api/sessions", "/api/sandbox", *CHAT_PATHS):
            try:
                body = json.loads(request.content)
            except ValueError:
                return failure(400, "Invalid JSON body")
            if path == "/api/sessions":
                found = session_problems(body)
            elif path == "/api/sandbox":
                found = sandbox_problems(body)
            else:
                found = workflow_problems(body)
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
        if path == "/api/sandbox":
            return self.sandbox(body)
        return self.workflow(body)

    def sandbox(self, body: dict[str, Any]) -> httpx.Response:
        """lib/sandbox/createSandboxHandler.ts: bound to the session, resumed if it exists."""
        self.sandbox_calls += 1
        session_id = body.get("sessionId")
        if session_id is not None:
            session = self.session(session_id)
            if session is None:
                return failure(404, "Session not found")
            self.sandboxes[session_id] = body["repoUrl"]
            self.advance(session_id, lifecycleState="active", sandboxState={"type": "vercel"})
        answer = {
            "createdAt": 1795500000000,
            "timeout": 1800000,
            "currentBranch": "main",
            "mode": "vercel",
            "timing": {"readyMs": 4200},
        }
        return httpx.Response(200, json=answer)

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
        stream = 'data: {"type":"start"}\n\ndata: {"type":"start-step"}\n\n'
        if chat["activeStreamId"] is not None:
            # maybeResumeChatStream: the live run's stream again, no second run.
            return httpx.Response(
                200,
                content=stream.encode(),
                headers={
                    "content-type": "text/event-stream",
                    "x-workflow-run-id": chat["activeStreamId"],
                },
            )
        run_id = f"wrun_{uuid.uuid4().hex[:26]}"
        chat["activeStreamId"] = run_id
        self.workflows.append({"runId": run_id, **body})
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
            "isNewBranch": False,
            "globalSkillRefs": [],
            "lifecycleVersion": 1,
            "createdAt": NOW,
            "updatedAt": NOW,
            # The caller's own workspace repository (createSessionHandler.ts).
            "repoOwner": "recoupable",
            "repoName": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
            "branch": "main",
            "cloneUrl": "https://github.com/recoupable/3c90c3cc-0d44-4b50-8888-8dd25736052a.git",
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
