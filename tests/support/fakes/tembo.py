"""A fake of Tembo's public API (seeds 000/001: POST /session/create).

Strict about the request: Bearer key, JSON body valid against the OpenAPI schema of
seed 001 (prompt minLength 1, types of every field, no unknown fields), and answers
with every field the schema marks required.

Following a session speaks Tembo's Public API (docs.tembo.io/api/v1; its types in
github.com/tembo/sdk src/resources/sessions/sessions.ts and messages/messages.ts):
`GET /v1/sessions/{sessionId}` answers a SessionRetrieveResponse, `POST /v1/messages`
takes {content (1..1000000 characters), sessionId (uuid), optional fields} and
`POST /v1/sessions/{sessionId}/stop` takes only the query `cancelQueued=true`. Sessions
move on when a test says so: `advance(id, state=..., pull_requests=[...])`, or a
`script` of such changes, one taken per read of that session. Messages and stops are
recorded in `messages` and `stops`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

FIELDS: dict[str, tuple[type, ...]] = {
    "prompt": (str,),
    "description": (str,),
    "agent": (str,),
    "repositories": (list,),
    "codeRepoIds": (list,),
    "targetBranch": (str, type(None)),
    "branchName": (str, type(None)),
    "queueRightAway": (bool, type(None)),
}


# tembo/sdk sessions.ts MessageCreateParams.
MESSAGE_FIELDS: dict[str, tuple[type, ...]] = {
    "content": (str,),
    "sessionId": (str,),
    "artifactId": (str,),
    "mcpServers": (list,),
    "pullRequestId": (str,),
    "agentOptions": (dict,),
    "deliveryMode": (str,),
    "richContent": (dict,),
    "slashCommand": (dict,),
}
ONE = re.compile(r"^/v1/sessions/([^/]+)$")
STOP = re.compile(r"^/v1/sessions/([^/]+)/stop$")
# State.current -> the State flags (sessions.ts, interface State).
STATES = ("queued", "inProgress", "completed", "failed", "cancelled")
CREATE_FIELDS = (
    "id",
    "title",
    "description",
    "prompt",
    "status",
    "createdAt",
    "updatedAt",
    "organizationId",
    "htmlUrl",
)
NOW = "2026-11-26T06:00:00Z"


def state(current: str) -> dict[str, Any]:
    assert current in STATES, current
    return {
        "isQueued": current == "queued",
        "isCancelled": current == "cancelled",
        "isCompleted": current == "completed",
        "isFailed": current == "failed",
        "inProgress": current == "inProgress",
        "current": current,
    }


def is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def message_errors(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be an object"]
    problems = [f"unknown field {key}" for key in body if key not in MESSAGE_FIELDS]
    problems += [
        f"{key} has the wrong type"
        for key, kinds in MESSAGE_FIELDS.items()
        if key in body and not isinstance(body[key], kinds)
    ]
    content = body.get("content")
    if not isinstance(content, str) or not 1 <= len(content) <= 1_000_000:
        problems.append("content must hold 1 to 1000000 characters")
    if not is_uuid(body.get("sessionId")):
        problems.append("sessionId must be a uuid")
    if body.get("deliveryMode", "queue") not in ("queue", "steer"):
        problems.append("deliveryMode must be queue or steer")
    return problems


def schema_errors(body: Any) -> list[str]:
    """What seed 001's request schema says is wrong with `body`."""
    if not isinstance(body, dict):
        return ["body must be an object"]
    problems = [f"unknown field {key}" for key in body if key not in FIELDS]
    for key, kinds in FIELDS.items():
        if key in body and not isinstance(body[key], kinds):
            problems.append(f"{key} has the wrong type")
    for key in ("prompt", "description"):
        if key in body and isinstance(body[key], str) and len(body[key]) < 1:
            problems.append(f"{key} must not be empty")
    for key in ("repositories", "codeRepoIds"):
        if isinstance(body.get(key), list) and not all(isinstance(x, str) for x in body[key]):
            problems.append(f"{key} must hold strings")
    if "prompt" not in body and "description" not in body:
        problems.append("prompt or description is required")
    return problems


@dataclass
class FakeTembo:
    api_key: str = "tembo-test-key"
    host: str = "api.tembo.test"
    sessions: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fault: Callable[[httpx.Request], httpx.Response | None] | None = None
    # Per session id: changes for `advance`, one applied at each read of that session.
    script: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    stops: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    clock: Callable[[], float] = time.time  # what createdAt says

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return httpx.Response(401, json={"error": "Unauthorized"})
        if request.method == "POST" and request.url.path == "/session/create":
            body = json.loads(request.content)
            self.requests.append(body)
            problems = schema_errors(body)
            if problems:
                return httpx.Response(400, json={"error": "; ".join(problems)})
            if self.fault is not None:
                injected = self.fault(request)
                if injected is not None:
                    return injected
            return httpx.Response(200, json=self.create(body))
        if request.method == "GET" and request.url.path == "/session/list":
            if self.fault is not None:
                injected = self.fault(request)
                if injected is not None:
                    return injected
            return httpx.Response(200, json=self.listing(request))
        return self.follow(request)

    def follow(self, request: httpx.Request) -> httpx.Response:
        """The Public API calls that follow a session after it starts."""
        method, path = request.method, request.url.path
        one, stop = ONE.match(path), STOP.match(path)
        body: Any = None
        if method == "GET" and one:
            session_id = one.group(1)
            if request.url.params or request.content:
                return httpx.Response(400, json={"error": "retrieve takes no query or body"})
            self.reads.append(session_id)
        elif method == "POST" and path == "/v1/messages":
            try:
                body = json.loads(request.content)
            except ValueError:
                return httpx.Response(400, json={"error": "Invalid JSON body"})
            problems = message_errors(body)
            if problems:
                return httpx.Response(400, json={"error": "; ".join(problems)})
            session_id = body["sessionId"]
        elif method == "POST" and stop:
            session_id = stop.group(1)
            params = dict(request.url.params)
            if set(params) - {"cancelQueued"} or params.get("cancelQueued", "true") != "true":
                return httpx.Response(400, json={"error": "only cancelQueued=true is allowed"})
            if request.content:
                return httpx.Response(400, json={"error": "stop takes no body"})
        else:
            return httpx.Response(404, json={"error": "Not found"})
        if not is_uuid(session_id):
            return httpx.Response(400, json={"error": "sessionId must be a uuid"})
        if self.fault is not None:
            injected = self.fault(request)
            if injected is not None:
                return injected
        session = self.find(session_id)
        if session is None:
            return httpx.Response(404, json={"error": "Session not found"})
        if method == "GET":
            steps = self.script.get(session_id)
            if steps:
                self.advance(session_id, **steps.pop(0))
            return httpx.Response(200, json=retrieved(session))
        if body is not None:
            return httpx.Response(200, json=self.message(session, body))
        self.stops.append((session_id, dict(request.url.params)))
        running = session["state"]["current"] in ("queued", "inProgress")
        if running:
            session["state"] = state("cancelled")
        count = 1 if running else 0
        return httpx.Response(
            200,
            json={
                "cancelledSessions": count,
                "cancelledJobs": count,
                "stoppedRuntimeSessions": count,
                "interruptedRuntimeTurns": count,
                "cancelledRuntimeTurns": 0,
            },
        )

    def find(self, session_id: str) -> dict[str, Any] | None:
        return next((s for s in self.sessions if s["id"] == session_id), None)

    def advance(
        self,
        session_id: str,
        state: str | None = None,
        pull_requests: list[str] | None = None,
        **fields: Any,
    ) -> None:
        """Move a session on: its `state.current`, the pull requests it opened, or any
        other field of the retrieve answer."""
        session = self.find(session_id)
        assert session is not None, session_id
        if state is not None:
            session["state"] = _state(state)
        if pull_requests is not None:
            session["artifacts"] = [_pull_request_artifact(url) for url in pull_requests]
        session.update(fields)

    def message(self, session: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """A follow-up message: recorded, and the session has work again."""
        self.messages.append(body)
        session["state"] = state("queued")
        message_id = str(uuid.uuid4())
        return {
            "hotPath": None,
            "job": {"id": str(uuid.uuid4()), "task": "session-message"},
            "message": {
                "artifactId": None,
                "content": body["content"],
                "createdAt": NOW,
                "createdBy": None,
                "externalAvatarUrl": None,
                "externalUrl": None,
                "id": message_id,
                "parentMessageId": None,
                "pullRequestId": None,
                "role": "user",
                "sessionId": session["id"],
                "type": "user",
                "updatedAt": NOW,
                "richContent": None,
                "slashCommand": None,
                "source": "api",
                "isQueued": True,
            },
            "session": {"id": session["id"], "title": session["title"]},
        }

    def listing(self, request: httpx.Request) -> dict[str, Any]:
        """`GET /session/list`, newest first. No Tembo page documents this call; its shape
        is that of the predecessor `GET /task/list` in Tembo's Stainless SDK
        (github.com/tembo/sdk-python src/tembo/types/task_list_response.py):
        `{issues: [{id, createdAt, description, organizationId, status, title,
        updatedAt}], meta: {currentPage, hasNext, hasPrevious, pageSize, totalCount,
        totalPages}}`, each item also carrying the session's htmlUrl (seed 001)."""
        limit = min(int(request.url.params.get("limit", "10")), 100)
        page = max(int(request.url.params.get("page", "1")), 1)
        newest = list(reversed(self.sessions))
        fields = (
            "id",
            "title",
            "description",
            "status",
            "createdAt",
            "updatedAt",
            "organizationId",
            "htmlUrl",
        )
        shown = newest[(page - 1) * limit : page * limit]
        pages = max((len(newest) + limit - 1) // limit, 1)
        return {
            "issues": [{key: item[key] for key in fields} for item in shown],
            "meta": {
                "currentPage": page,
                "hasNext": page < pages,
                "hasPrevious": page > 1,
                "pageSize": limit,
                "totalCount": len(newest),
                "totalPages": pages,
            },
        }

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        session_id = str(uuid.uuid4())
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))
        session = {
            "id": session_id,
            "title": body.get("prompt", "")[:60],
            "description": body.get("prompt", ""),
            "prompt": body.get("prompt", ""),
            "status": "queued",
            "createdAt": stamp,
            "updatedAt": stamp,
            "organizationId": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
            "htmlUrl": f"https://app.tembo.io/sessions/{session_id}",
            # What the Public API's retrieve adds.
            "agent": body.get("agent"),
            "branchName": body.get("branchName"),
            "targetBranch": body.get("targetBranch"),
            "state": state("queued"),
            "artifacts": [],
        }
        self.sessions.append(session)
        return {key: session[key] for key in CREATE_FIELDS}


_state = state  # `advance` takes a parameter of that name


def _pull_request_artifact(url: str) -> dict[str, Any]:
    """An artifact of type PullRequest (sessions.ts SessionRetrieveResponse.Artifact)."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, url)),
        "type": "PullRequest",
        "createdAt": NOW,
        "updatedAt": NOW,
        "pullRequests": [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, url + "#pr")),
                "url": url,
                "title": "Fix the login bug",
                "status": "open",
                "isDraft": False,
                "sourceBranch": "tembo/7-fix-the-login-bug",
                "createdAt": NOW,
                "agent": "claudeCode:claude-opus-4-5",
                "diff": None,
                "updatedAt": NOW,
                "baseBranch": "main",
                "headSha": None,
                "author": None,
                "codeRepository": None,
            }
        ],
    }


def retrieved(session: dict[str, Any]) -> dict[str, Any]:
    """`GET /v1/sessions/{sessionId}`: every field SessionRetrieveResponse requires."""
    return {
        "agent": session["agent"],
        "agentId": None,
        "artifactType": "PullRequest" if session["artifacts"] else None,
        "baseBranch": session["targetBranch"],
        "branchName": session["branchName"],
        "createdAt": session["createdAt"],
        "externalId": None,
        "externalUrl": None,
        "id": session["id"],
        "kind": "task",
        "lastQueuedAt": session["createdAt"],
        "lastSeenAt": session["updatedAt"],
        "level": 50,
        "mode": "normal",
        "projectId": None,
        "sandboxSize": None,
        "sessionType": "Chat",
        "targetBranch": session["targetBranch"],
        "title": session["title"],
        "updatedAt": session["updatedAt"],
        "visibility": "private",
        "artifacts": session["artifacts"],
        "description": session["description"],
        "diffSummary": None,
        "htmlUrl": session["htmlUrl"],
        "isPinned": False,
        "project": None,
        "sessionSource": {
            "id": str(uuid.uuid4()),
            "name": "API",
            "type": "api",
            "repositories": [],
        },
        "sourcePullRequest": None,
        "state": session["state"],
    }
