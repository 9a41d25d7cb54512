"""A fake of Devin's v1 API (docs.devin.ai api-reference/v1/sessions: create-a-new-devin-
session, retrieve-details-about-an-existing-session, send-a-message-to-an-existing-devin-
session, terminate-a-session; their OpenAPI is `v1-openapi.yaml`).

Strict about the request: a Bearer key, a JSON body with only the fields the create page
lists, with their types, `prompt` required; `{message}` for a message; no body for a
read or a termination. Answers with the fields the pages show: create
`{session_id, url, is_new_session}`, read the session with `status_enum` and
`pull_request`. Errors are FastAPI's `{detail}` (the pages' 422 is HTTPValidationError).

Idempotency: with `idempotent: true`, a create whose body equals an earlier idempotent
create's answers that session with `is_new_session: false`. The pages do not say what
Devin compares; the whole body is the strictest reading, and the adapter sends the same
body every time.

`GET /v1/sessions` (list-sessions: `limit` 1..1000, `offset`, `tags`) answers
`{sessions: [...]}`, each without its messages; that key is an assumption (the page's
schema was not read in full). Terminating a session that has already ended answers
400: the page says only that "the session must not already be in an exited state".
Sessions move on with
`advance(id, status_enum=..., pull_request=...)` or a `script` of such changes, one
taken per read of that session.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

FIELDS: dict[str, tuple[type, ...]] = {
    "prompt": (str,),
    "idempotent": (bool, type(None)),
    "title": (str, type(None)),
    "tags": (list, type(None)),
    "knowledge_ids": (list, type(None)),
    "secret_ids": (list, type(None)),
    "session_secrets": (list, type(None)),
    "playbook_id": (str, type(None)),
    "snapshot_id": (str, type(None)),
    "max_acu_limit": (int, type(None)),
    "structured_output_schema": (dict, type(None)),
    "unlisted": (bool, type(None)),
}
STATUSES = (
    "working",
    "blocked",
    "expired",
    "finished",
    "suspend_requested",
    "suspend_requested_frontend",
    "resume_requested",
    "resume_requested_frontend",
    "resumed",
)
ENDED = ("expired", "finished")
ONE = re.compile(r"^/v1/sessions/([^/]+)$")
MESSAGE = re.compile(r"^/v1/sessions/([^/]+)/message$")
NOW = "2026-11-26T06:00:00.000000+00:00"


def failure(status: int, detail: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"detail": detail}, headers=headers)


def problems(body: Any, fields: dict[str, tuple[type, ...]], required: str) -> list[Any]:
    """FastAPI-style validation errors, one per problem."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be an object", "type": "dict_type"}]
    found: list[Any] = [
        {"loc": ["body", key], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
        for key in body
        if key not in fields
    ]
    found += [
        {"loc": ["body", key], "msg": "Input has the wrong type", "type": "type_error"}
        for key, kinds in fields.items()
        if key in body and not isinstance(body[key], kinds)
    ]
    if not isinstance(body.get(required), str):
        found.append({"loc": ["body", required], "msg": "Field required", "type": "missing"})
    return found


@dataclass
class FakeDevin:
    api_key: str = "apk_user_devin-test-key"
    host: str = "api.devin.test"
    sessions: list[dict[str, Any]] = field(default_factory=list)
    # Every create body that passed validation, in order.
    requests: list[dict[str, Any]] = field(default_factory=list)
    messages: list[tuple[str, str]] = field(default_factory=list)
    terminations: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    # Called after the request passed validation; may answer instead, or raise.
    fault: Callable[[httpx.Request], httpx.Response | None] | None = None
    script: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return failure(401, "Invalid API key")
        method, path = request.method, request.url.path
        if method == "POST" and path == "/v1/sessions":
            body = _json(request)
            found = problems(body, FIELDS, "prompt")
            if found:
                return failure(422, found)
            self.requests.append(body)
        elif method == "POST" and MESSAGE.match(path):
            found = problems(_json(request), {"message": (str,)}, "message")
            if found:
                return failure(422, found)
        elif method == "GET" and path == "/v1/sessions":
            params = dict(request.url.params)
            if set(params) - {"limit", "offset", "tags"}:
                return failure(422, "unknown query parameter")
            if not 1 <= int(params.get("limit", "100")) <= 1000:
                return failure(422, "limit must be between 1 and 1000")
        elif method in ("GET", "DELETE") and ONE.match(path):
            if request.content:
                return failure(422, "this call takes no body")
        else:
            return failure(404, "Not Found")
        if self.fault is not None:
            injected = self.fault(request)
            if injected is not None:
                return injected
        return self.answer(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        """Carry the (valid) request out, as Devin would; tests call it from a fault to
        model an answer lost after the work was done."""
        method, path = request.method, request.url.path
        if method == "POST" and path == "/v1/sessions":
            return httpx.Response(200, json=self.create(_json(request)))
        if path == "/v1/sessions":
            params = request.url.params
            start = int(params.get("offset", "0"))
            shown = self.sessions[start : start + int(params.get("limit", "100"))]
            listed = [{k: v for k, v in retrieved(s).items() if k != "messages"} for s in shown]
            return httpx.Response(200, json={"sessions": listed})
        matched = MESSAGE.match(path) or ONE.match(path)
        assert matched is not None
        session = self.find(matched.group(1))
        if session is None:
            return failure(404, f"Session {matched.group(1)} not found")
        if method == "GET":
            self.reads.append(session["session_id"])
            steps = self.script.get(session["session_id"])
            if steps:
                self.advance(session["session_id"], **steps.pop(0))
            return httpx.Response(200, json=retrieved(session))
        if method == "POST":
            self.messages.append((session["session_id"], _json(request)["message"]))
            if session["status_enum"] != "expired":
                session["status_enum"] = "working"  # a message wakes the session
            return httpx.Response(200, json={"detail": "Message sent"})
        if session["status_enum"] in ENDED or session["exited"]:
            return failure(400, "Session has already exited")
        self.terminations.append(session["session_id"])
        session["exited"] = True
        return httpx.Response(200, json={"detail": "Session terminated successfully"})

    def find(self, session_id: str) -> dict[str, Any] | None:
        return next((s for s in self.sessions if s["session_id"] == session_id), None)

    def advance(self, session_id: str, **fields: Any) -> None:
        """Move a session on: `status_enum`, `pull_request` (a URL or None), ..."""
        session = self.find(session_id)
        assert session is not None, session_id
        if "status_enum" in fields:
            assert fields["status_enum"] in STATUSES, fields["status_enum"]
        if "pull_request" in fields:
            url = fields.pop("pull_request")
            session["pull_request"] = {"url": url} if url else None
        session.update(fields)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("idempotent"):
            for session in self.sessions:
                if session["body"] == body:
                    return {
                        "session_id": session["session_id"],
                        "url": session["url"],
                        "is_new_session": False,
                    }
        session_id = f"devin-{next(self.ids):012x}"
        session = {
            "session_id": session_id,
            "url": f"https://app.devin.ai/sessions/{session_id.removeprefix('devin-')}",
            "body": body,
            "status_enum": "working",
            "pull_request": None,
            "exited": False,
        }
        self.sessions.append(session)
        answer: dict[str, Any] = {"session_id": session_id, "url": session["url"]}
        if body.get("idempotent"):
            answer["is_new_session"] = True
        return answer


def retrieved(session: dict[str, Any]) -> dict[str, Any]:
    """`GET /v1/sessions/{session_id}`, with the fields of the page's example."""
    body = session["body"]
    return {
        "session_id": session["session_id"],
        "status": "running",
        "title": body.get("title") or "Devin session",
        "created_at": NOW,
        "updated_at": NOW,
        "snapshot_id": None,
        "playbook_id": None,
        "tags": body.get("tags") or [],
        "pull_request": session["pull_request"],
        "structured_output": None,
        "status_enum": session["status_enum"],
        "messages": [
            {
                "type": "initial_user_message",
                "event_id": f"event-{session['session_id']}",
                "message": body["prompt"],
                "timestamp": NOW,
                "username": "bot@example.com",
                "origin": "api",
            }
        ],
    }


def _json(request: httpx.Request) -> Any:
    try:
        return json.loads(request.content)
    except ValueError:
        return None
