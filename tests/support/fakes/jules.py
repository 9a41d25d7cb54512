"""A fake of the Jules REST API v1alpha (developers.google.com/jules/api/reference/rest/
v1alpha: sessions, sessions/create, sessions/get, sessions/sendMessage, sources/list;
jules.google/docs/api/reference: sessions, sources, types).

Strict about the request: the key in `X-Goog-Api-Key`; a create body that is a Session
with only its input fields (`prompt` required, `title`, `sourceContext` with `source`
required and `githubRepoContext.startingBranch`, `requirePlanApproval`, `automationMode`
one of AUTOMATION_MODE_UNSPECIFIED or AUTO_CREATE_PR), whose source is one this account
has connected; `{prompt}` for sendMessage; `pageSize` 1..100 and `pageToken` for the
source list. Errors are Google's `{error: {code, message, status}}`. Unknown JSON fields
are refused, as Google APIs do ("Invalid JSON payload received. Unknown name").

Sessions move on with `advance(id, state=..., pull_requests=[...])` or a `script` of such
changes, one taken per read. The sessions resource documents no stop or delete, so this
fake has none.
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
    "prompt": (str,),
    "title": (str,),
    "sourceContext": (dict,),
    "requirePlanApproval": (bool,),
    "automationMode": (str,),
}
CONTEXT_FIELDS: dict[str, tuple[type, ...]] = {"source": (str,), "githubRepoContext": (dict,)}
MODES = ("AUTOMATION_MODE_UNSPECIFIED", "AUTO_CREATE_PR")
STATES = (
    "QUEUED",
    "PLANNING",
    "AWAITING_PLAN_APPROVAL",
    "AWAITING_USER_FEEDBACK",
    "IN_PROGRESS",
    "PAUSED",
    "FAILED",
    "COMPLETED",
)
ONE = re.compile(r"^/v1alpha/sessions/([^/:]+)$")
MESSAGE = re.compile(r"^/v1alpha/sessions/([^/:]+):sendMessage$")
NOW = "2026-11-26T06:00:00Z"
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def failure(status: int, message: str, **headers: str) -> httpx.Response:
    error = {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}
    return httpx.Response(status, json={"error": error}, headers=headers)


def unknown_names(body: dict[str, Any], fields: dict[str, tuple[type, ...]], at: str) -> list[str]:
    found = [
        f"Invalid JSON payload received. Unknown name \"{key}\" at '{at}'"
        for key in body
        if key not in fields
    ]
    found += [
        f"Invalid value at '{at}.{key}'"
        for key, kinds in fields.items()
        if key in body and not isinstance(body[key], kinds)
    ]
    return found


def session_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["Invalid JSON payload received."]
    found = unknown_names(body, SESSION_FIELDS, "session")
    if not body.get("prompt"):
        found.append("prompt is required")
    context = body.get("sourceContext")
    if isinstance(context, dict):
        found += unknown_names(context, CONTEXT_FIELDS, "session.source_context")
        if not context.get("source"):
            found.append("sourceContext.source is required")
        repo = context.get("githubRepoContext")
        if isinstance(repo, dict):
            found += unknown_names(
                repo, {"startingBranch": (str,)}, "session.source_context.github_repo_context"
            )
    if body.get("automationMode", "AUTOMATION_MODE_UNSPECIFIED") not in MODES:
        found.append("Invalid value at 'session.automation_mode'")
    return found


@dataclass
class FakeJules:
    api_key: str = "jules-test-key"
    host: str = "jules.googleapis.test"
    # Connected repositories, "owner/repo"; each is a source `sources/github/owner/repo`.
    repositories: list[str] = field(default_factory=lambda: ["acme/web-app", "acme/web"])
    sessions: list[dict[str, Any]] = field(default_factory=list)
    # Every create body that passed validation, in order.
    requests: list[dict[str, Any]] = field(default_factory=list)
    messages: list[tuple[str, str]] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    source_reads: list[dict[str, str]] = field(default_factory=list)
    fault: Callable[[httpx.Request], httpx.Response | None] | None = None
    script: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("x-goog-api-key") != self.api_key:
            return failure(401, "API key not valid. Please pass a valid API key.")
        method, path = request.method, request.url.path
        if method == "POST" and path == "/v1alpha/sessions":
            body = _json(request)
            found = session_problems(body)
            if found:
                return failure(400, "; ".join(found))
            self.requests.append(body)
        elif method == "POST" and MESSAGE.match(path):
            body = _json(request)
            if not isinstance(body, dict):
                return failure(400, "Invalid JSON payload received.")
            found = unknown_names(body, {"prompt": (str,)}, "request")
            if not body.get("prompt"):
                found.append("prompt is required")
            if found:
                return failure(400, "; ".join(found))
        elif method == "GET" and path == "/v1alpha/sources":
            params = dict(request.url.params)
            if set(params) - {"pageSize", "pageToken", "filter"}:
                return failure(400, "unknown query parameter")
            if not 1 <= int(params.get("pageSize", "30")) <= 100:
                return failure(400, "pageSize must be between 1 and 100")
            self.source_reads.append(params)
        elif method == "GET" and ONE.match(path):
            if request.content:
                return failure(400, "The request body must be empty.")
        else:
            return failure(404, "Method not found.")
        if self.fault is not None:
            injected = self.fault(request)
            if injected is not None:
                return injected
        return self.answer(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        """Carry the (valid) request out, as Jules would; tests call it from a fault to
        model an answer lost after the work was done."""
        method, path = request.method, request.url.path
        if path == "/v1alpha/sources":
            return httpx.Response(200, json=self.listing(dict(request.url.params)))
        if method == "POST" and path == "/v1alpha/sessions":
            body = _json(request)
            source = body["sourceContext"]["source"]
            if source not in [f"sources/github/{r}" for r in self.repositories]:
                return failure(404, f"Requested entity was not found: {source}")
            return httpx.Response(200, json=self.create(body))
        matched = MESSAGE.match(path) or ONE.match(path)
        assert matched is not None
        session = self.find(matched.group(1))
        if session is None:
            return failure(404, "Requested entity was not found.")
        if method == "GET":
            self.reads.append(session["id"])
            steps = self.script.get(session["id"])
            if steps:
                self.advance(session["id"], **steps.pop(0))
            return httpx.Response(200, json=session)
        self.messages.append((session["id"], _json(request)["prompt"]))
        if session["state"] in ("COMPLETED", "AWAITING_USER_FEEDBACK", "PAUSED"):
            session["state"] = "IN_PROGRESS"
        return httpx.Response(200, json={})

    def listing(self, params: dict[str, str]) -> dict[str, Any]:
        size = int(params.get("pageSize", "30"))
        start = int(params.get("pageToken") or 0)
        shown = self.repositories[start : start + size]
        answer: dict[str, Any] = {
            "sources": [
                {
                    "name": f"sources/github/{full}",
                    "id": f"github/{full}",
                    "githubRepo": {
                        "owner": full.split("/")[0],
                        "repo": full.split("/")[1],
                        "isPrivate": False,
                        "defaultBranch": {"displayName": "main"},
                        "branches": [{"displayName": "main"}],
                    },
                }
                for full in shown
            ]
        }
        if start + size < len(self.repositories):
            answer["nextPageToken"] = str(start + size)
        return answer

    def find(self, session_id: str) -> dict[str, Any] | None:
        return next((s for s in self.sessions if s["id"] == session_id), None)

    def advance(
        self, session_id: str, state: str | None = None, pull_requests: list[str] | None = None
    ) -> None:
        session = self.find(session_id)
        assert session is not None, session_id
        if state is not None:
            assert state in STATES, state
            session["state"] = state
        if pull_requests is not None:
            session["outputs"] = [
                {"pullRequest": {"url": url, "title": "Fix the login bug", "description": ""}}
                for url in pull_requests
            ]

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        session_id = str(10_000_000_000 + next(self.ids))
        session = {
            "name": f"sessions/{session_id}",
            "id": session_id,
            "prompt": body["prompt"],
            "title": body.get("title") or body["prompt"][:60],
            "sourceContext": body.get("sourceContext", {}),
            "state": "QUEUED",
            "url": f"https://jules.google.com/session/{session_id}",
            "createTime": NOW,
            "updateTime": NOW,
        }
        self.sessions.append(session)
        return dict(session)


def _json(request: httpx.Request) -> Any:
    try:
        return json.loads(request.content)
    except ValueError:
        return None
