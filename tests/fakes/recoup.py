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
"""

from __future__ import annotations

import json
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
NOW = "2026-11-26T06:00:00Z"


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

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("x-api-key") != self.api_key:
            return failure(401, "Unauthorized")
        route = (request.method, request.url.path)
        if route not in (("POST", "/api/sessions"), ("POST", "/api/chat/runs")):
            return failure(404, "Not found")
        try:
            body = json.loads(request.content)
        except ValueError:
            return failure(400, "Invalid JSON body")
        self.requests.append((request.method, request.url.path, body))
        check = session_problems if route[1] == "/api/sessions" else run_problems
        found = check(body)
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
        body = json.loads(request.content)
        if request.url.path == "/api/sessions":
            return httpx.Response(200, json=self.create(body))
        if not any(s["id"] == body.get("sessionId") for s in self.sessions) or not any(
            c["id"] == body.get("chatId") for c in self.chats
        ):
            return failure(404, "Session or chat not found")
        run = {"runId": f"wrun_{uuid.uuid4().hex[:26]}", **_ids(body)}
        self.runs.append({**run, "prompt": body["prompt"]})
        return httpx.Response(202, json=run)

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
