"""A fake of Magnet's API (seed 004: POST /api/sessions; docs.magnet.run
api-reference/sessions: list-sessions, get-session).

Strict about the request: creating takes a browser session cookie `__session` and never
an API key (400, as the page's error table says), `organizationId` required, only the
fields the page lists, with their types; answers 201 `{session}` with the fields of the
page's example. List and Get are documented for API keys (`x-api-key`, `api_key` here);
whether they take the browser cookie is unknown, so `reads_accept_cookie` chooses.
Errors are `{error}`, an assumption: no page shows an error body.

Following a session reads Get Session, whose `status` is active, completed or failed and
whose `metadata` carries `branch`, `prNumber`, `prUrl` and `prStatus` (get-session and
list-sessions pages). Sessions move on with `advance(id, status=..., metadata={...})`
(metadata is merged) or a `script` of such changes, one taken per read of that session.
Magnet documents no call that sends a message or stops a session, so this fake has none.
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
    "organizationId": (str,),
    "initialMessage": (str,),
    "repoUrl": (str,),
    "baseBranch": (str,),
    "model": (str,),
}
NOW = "2026-11-26T06:00:00.000Z"
STATUSES = ("active", "completed", "failed")
ONE = re.compile(r"^/api/sessions/([^/]+)$")


def failure(status: int, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": message}, headers=headers)


def problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["Invalid request body"]
    found = [f"Unrecognized key: {key}" for key in body if key not in FIELDS]
    found += [
        f"{key}: expected string"
        for key, kinds in FIELDS.items()
        if key in body and not isinstance(body[key], kinds)
    ]
    if "organizationId" not in body:
        found.append("organizationId: Required")
    return found


@dataclass
class FakeMagnet:
    cookie: str = "magnet-browser-session"
    organization_id: str = "org_abc123"
    host: str = "magnet.test"
    reads_accept_cookie: bool = True
    # List and Get Session as documented: `x-api-key` (docs.magnet.run api-reference).
    api_key: str = "magnet-api-key"
    sessions: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    # Called after the request passed validation; may answer instead, or raise.
    fault: Callable[[httpx.Request], httpx.Response | None] | None = None
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # Per session id: changes for `advance`, one applied at each Get Session of it.
    script: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    def signed_in(self, request: httpx.Request) -> bool:
        cookies = dict(
            part.strip().split("=", 1)
            for part in request.headers.get("cookie", "").split(";")
            if "=" in part
        )
        return cookies.get("__session") == self.cookie

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if method == "POST" and path == "/api/sessions":
            if "x-api-key" in request.headers and "cookie" not in request.headers:
                return failure(400, "API keys cannot create sessions; use a browser session")
            if not self.signed_in(request):
                return failure(401, "Unauthorized")
            try:
                body = json.loads(request.content)
            except ValueError:
                return failure(400, "Invalid request body")
            self.requests.append((method, path, body))
            found = problems(body)
            if found:
                return failure(400, "; ".join(found))
            if body["organizationId"] != self.organization_id:
                return failure(403, "Forbidden")
        elif method == "GET" and (path == "/api/sessions" or ONE.match(path)):
            if "x-api-key" in request.headers:
                if request.headers["x-api-key"] != self.api_key:
                    return failure(401, "Unauthorized")
            elif not (self.reads_accept_cookie and self.signed_in(request)):
                return failure(401, "Unauthorized")
            self.requests.append((method, path, dict(request.url.params)))
            organization = request.url.params.get("organizationId", self.organization_id)
            if organization != self.organization_id:
                return failure(403, "Forbidden")
        else:
            return failure(404, "Not found")
        if self.fault is not None:
            injected = self.fault(request)
            if injected is not None:
                return injected
        return self.answer(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        """Carry the (valid) request out, as Magnet would; tests call it from a fault to
        model an answer lost after the work was done."""
        path = request.url.path
        if request.method == "POST":
            return httpx.Response(201, json={"session": self.create(json.loads(request.content))})
        if path == "/api/sessions":
            listed = [_summary(s) for s in reversed(self.sessions)]
            stats = {
                "mergesPastWeek": 0,
                "authorsPastWeek": 1,
                "humansPastWeek": 1,
                "humansPromptingNow": 0,
            }
            return httpx.Response(200, json={"sessions": listed, "stats": stats})
        matched = ONE.match(path)
        assert matched is not None
        found = [s for s in self.sessions if s["id"] == matched.group(1)]
        if not found:
            return failure(404, "Session not found")
        steps = self.script.get(found[0]["id"])
        if steps:
            self.advance(found[0]["id"], **steps.pop(0))
        return httpx.Response(200, json={"session": found[0]})

    def advance(self, session_id: str, **fields: Any) -> None:
        """Move a session on: `status`, `metadata` (merged), `messages`, `tasks`, ..."""
        [session] = [s for s in self.sessions if s["id"] == session_id]
        if "status" in fields:
            assert fields["status"] in STATUSES, fields["status"]
        metadata = fields.pop("metadata", None)
        if metadata is not None:
            session["metadata"] = {**session["metadata"], **metadata}
        session.update(fields)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        message = body.get("initialMessage", "")
        repo_url = body.get("repoUrl", "")
        session = {
            "id": f"cm{next(self.ids):010d}",
            "title": message.splitlines()[0][:60] if message else "New session",
            "status": "active",
            "createdAt": NOW,
            "updatedAt": NOW,
            "model": body.get("model", "claude-opus-4-6"),
            "author": {"id": "user_123", "name": "Alice Chen"},
            "metadata": {"repository": repo_url.removeprefix("https://github.com/")},
            "messageCount": 1,
            "firstMessagePreview": message[:40] + "...",
            "messages": [{"type": "user", "message": {"content": message}}],
            "tasks": [],
        }
        self.sessions.append(session)
        return _summary(session)


def _summary(session: dict[str, Any]) -> dict[str, Any]:
    """A session as List Sessions and Create show it: without its messages."""
    return {key: value for key, value in session.items() if key not in ("messages", "tasks")}
