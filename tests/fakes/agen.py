"""A fake of Agen's API (seed 003: POST /api/v1/sessions; docs.agenhq.com
api-reference/sessions: list-sessions, send-a-user-message-to-the-agent-in-a-session,
get-the-session-timeline-events).

Strict about the request: `x-api-key`, JSON bodies holding only the fields the pages list
with their types (`branch_name` required, string or null; `message` required, at least
one character), no unknown query parameters; answers with every field the pages mark
required. The pages' "Default Response" wording is Fastify's, so errors take Fastify's
shape, `{statusCode, error, message}` (an assumption: no page shows an error body).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

SESSION_FIELDS: dict[str, tuple[type, ...]] = {
    "branch_name": (str, type(None)),
    "auto_commit": (bool,),
    "model": (str,),
}
MESSAGE_FIELDS: dict[str, tuple[type, ...]] = {"message": (str,), "client_id": (str,)}
LIST_QUERY = {"status", "user_id", "include"}
NOW = "2026-11-26T06:00:00Z"
MESSAGES = re.compile(r"^/api/v1/sessions/([^/]+)/messages$")
EVENTS = re.compile(r"^/api/v1/sessions/([^/]+)/events$")


def failure(status: int, message: str, **headers: str) -> httpx.Response:
    reason = httpx.codes.get_reason_phrase(status)
    return httpx.Response(
        status, json={"statusCode": status, "error": reason, "message": message}, headers=headers
    )


def problems(body: Any, fields: dict[str, tuple[type, ...]], required: str) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be object"]
    found = [f"body must NOT have additional property '{key}'" for key in body if key not in fields]
    found += [
        f"body/{key} has the wrong type"
        for key, kinds in fields.items()
        if key in body and not isinstance(body[key], kinds)
    ]
    if required not in body:
        found.append(f"body must have required property '{required}'")
    return found


def message_problems(body: Any) -> list[str]:
    found = problems(body, MESSAGE_FIELDS, "message")
    if isinstance(body, dict) and body.get("message") == "":
        found.append("body/message must NOT have fewer than 1 characters")
    return found


@dataclass
class FakeAgen:
    api_key: str = "agen-test-key"
    host: str = "api.agen.test"
    sessions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    # Called after the request passed validation; may answer instead, or raise.
    fault: Callable[[httpx.Request], httpx.Response | None] | None = None
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("x-api-key") != self.api_key:
            return failure(401, "Invalid API key")
        path, method = request.url.path, request.method
        body: Any = None
        if method == "POST":
            try:
                body = json.loads(request.content)
            except ValueError:
                return failure(400, "Body is not valid JSON")
        self.requests.append((method, path, body))
        if method == "POST" and path == "/api/v1/sessions":
            found = problems(body, SESSION_FIELDS, "branch_name")
        elif method == "POST" and MESSAGES.match(path):
            found = message_problems(body)
        elif method == "GET" and path == "/api/v1/sessions":
            found = [
                f"querystring/{k} is not allowed" for k in request.url.params if k not in LIST_QUERY
            ]
        elif method == "GET" and EVENTS.match(path):
            found = []
        else:
            return failure(404, f"Route {method}:{path} not found")
        if found:
            return failure(400, "; ".join(found))
        if self.fault is not None:
            injected = self.fault(request)
            if injected is not None:
                return injected
        return self.answer(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        """Carry the (valid) request out, as Agen would; tests call it from a fault to
        model an answer lost after the work was done."""
        path = request.url.path
        if request.method == "POST" and path == "/api/v1/sessions":
            return httpx.Response(200, json=self.create(json.loads(request.content)))
        if request.method == "GET" and path == "/api/v1/sessions":
            return httpx.Response(
                200, json={"items": list(reversed(self.sessions)), "next_cursor": None}
            )
        matched = MESSAGES.match(path) or EVENTS.match(path)
        assert matched is not None
        session_id = matched.group(1)
        if not any(s["id"] == session_id for s in self.sessions):
            return failure(404, "Session not found")
        if request.method == "GET":
            return httpx.Response(
                200, json=[e for e in self.events if e["session_id"] == session_id]
            )
        body = json.loads(request.content)
        event = {
            "id": f"evt_{next(self.ids)}",
            "session_id": session_id,
            "type": "user_message",
            "payload": {"type": "user_message", "message": body["message"]},
            "status": "queued",
            "client_id": body.get("client_id"),
            "session_goal_id": None,
            "session_task_id": None,
            "created_at": NOW,
            "updated_at": NOW,
        }
        self.events.append(event)
        return httpx.Response(200, json=event)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        session = {
            "id": f"ses_{next(self.ids)}",
            "title": "New session",
            "workspace_id": "wks_1",
            "user_id": "usr_1",
            "branch_name": body["branch_name"],
            "auto_commit": body.get("auto_commit", False),
            "status": "active",
            "origin": "api",
            "created_at": NOW,
            "updated_at": NOW,
            "sandbox_id": None,
            "model": body.get("model", "claude-sonnet-4-5"),
            "agent_status": "idle",
            "merged_at": None,
            "deep_work_id": None,
        }
        self.sessions.append(session)
        return session

    def prompts(self, session_id: str) -> list[str]:
        return [
            e["payload"]["message"]
            for e in self.events
            if e["session_id"] == session_id and e["type"] == "user_message"
        ]
