"""A fake of Agen's API (seed 003: POST /api/v1/sessions; docs.agenhq.com
api-reference/sessions: list-sessions, send-a-user-message-to-the-agent-in-a-session,
get-the-session-timeline-events).

Strict about the request: `x-api-key`, JSON bodies holding only the fields the pages list
with their types (`branch_name` required, string or null; `message` required, at least
one character), no unknown query parameters; answers with every field the pages mark
required. The pages' "Default Response" wording is Fastify's, so errors take Fastify's
shape, `{statusCode, error, message}` (an assumption: no page shows an error body).

Following a session reads its timeline. Events move it on when a test says so:
`add_event(id, type, status=...)` (the types and statuses the events page enumerates),
`mark_messages(id, status)` for the user messages' status, or a `script` of
`add_event` arguments, one taken per timeline read of that session. Agen documents no
call that stops a session, so this fake has none.
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
# docs.agenhq.com/api-reference/sessions/get-the-session-timeline-events.
EVENT_TYPES = frozenset(
    [
        "user_message",
        "agent_message",
        "system_message",
        "session_finished",
        "session_closed",
        "merge_request_merged",
        "merge_request_closed",
        "agent_file_tree_browse",
        "agent_file_read",
        "agent_file_edit",
        "agent_file_create",
        "agent_file_remove",
        "agent_file_move",
        "agent_file_copy",
        "agent_file_read_range",
        "agent_read_around_match",
        "agent_search_files",
        "agent_search_files_v2",
        "agent_plan_execution_update",
        "agent_ask_user",
        "user_ask_user_response",
        "agent_branch_diff",
        "agent_uncommitted_changes",
        "agent_conflict_state",
        "agent_check_target_branch_mergeability",
        "agent_merge_remote_branch",
        "agent_pull_from_remote",
        "agent_push_to_remote",
        "agent_abort_conflict_resolution",
        "agent_rollback_uncommitted_changes",
        "agent_http_request",
        "agent_web_browse",
        "agent_run_repository_command",
        "agent_alert_created",
    ]
)
EVENT_STATUSES = frozenset({"completed", "queued", "processing", "canceled"})


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
    # Per session id: `add_event` keyword arguments, one applied per timeline read.
    script: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

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
            steps = self.script.get(session_id)
            if steps:
                self.add_event(session_id, **steps.pop(0))
            return httpx.Response(
                200, json=[e for e in self.events if e["session_id"] == session_id]
            )
        body = json.loads(request.content)
        event = self.add_event(
            session_id,
            "user_message",
            status="queued",
            payload={"type": "user_message", "message": body["message"]},
            client_id=body.get("client_id"),
        )
        return httpx.Response(200, json=event)

    def add_event(
        self,
        session_id: str,
        type: str,
        status: str = "completed",
        payload: dict[str, Any] | None = None,
        client_id: str | None = None,
    ) -> dict[str, Any]:
        """Append an event to a session's timeline, as Agen would."""
        assert type in EVENT_TYPES, type
        assert status in EVENT_STATUSES, status
        event = {
            "id": f"evt_{next(self.ids)}",
            "session_id": session_id,
            "type": type,
            "payload": payload if payload is not None else {"type": type},
            "status": status,
            "client_id": client_id,
            "session_goal_id": None,
            "session_task_id": None,
            "created_at": NOW,
            "updated_at": NOW,
        }
        self.events.append(event)
        return event

    def mark_messages(self, session_id: str, status: str) -> None:
        """Set the status of the session's user messages (queued -> processing -> ...)."""
        assert status in EVENT_STATUSES, status
        for event in self.events:
            if event["session_id"] == session_id and event["type"] == "user_message":
                event["status"] = status

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
