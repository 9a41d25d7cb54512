"""A fake of Tembo's two APIs.

The Developer API (seeds 000/001; tembo/docs openapi.documented.yml at
53d0749dc44ca6e1c20887036e8369e62e6660ee): `POST /session/create`, `GET /session/list` and
`GET /session/search?q=` (title and description, case-insensitive here), both paged
`{sessions, meta}` (search adds `query`; `q` is required, minLength 1).

The Public API's create (tembo/sdk openapi/openapi.json at
1502e3587c61010bdcb5299dff1f4d3b950fde82, operationId createSession): `POST /v1/sessions`
with a body of `additionalProperties: false`, `description` required, an optional
caller-chosen `id` (uuid; taken again: 409), answered 201 with the session;
`GET /v1/repositories?search=` (listRepositories) over the repositories a test enables
with `enable(full_name)`.

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
# openapi.json createSession requestBody (additionalProperties: false).
V1_FIELDS: dict[str, tuple[type, ...]] = {
    "agent": (str,),
    "baseBranch": (str, type(None)),
    "projectId": (str, type(None)),
    "sandboxSize": (str,),
    "targetBranch": (str, type(None)),
    "visibility": (str,),
    "agentOptions": (dict,),
    "autoDetectRepositories": (bool,),
    "branchName": (str, type(None)),
    "codeRepositoryIds": (list,),
    "description": (str,),
    "memoryEnabled": (bool,),
    "id": (str,),
    "richContent": (dict,),
    "mcpServers": (list,),
    "pullRequestId": (str,),
    "queueRightAway": (bool,),
    "sessionMode": (str,),
    "startupAgent": (str,),
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


def v1_errors(body: Any) -> list[str]:
    """What createSession's request schema says is wrong with `body`."""
    if not isinstance(body, dict):
        return ["body must be an object"]
    problems = [f"unknown field {key}" for key in body if key not in V1_FIELDS]
    for key, kinds in V1_FIELDS.items():
        if key in body and not isinstance(body[key], kinds):
            problems.append(f"{key} has the wrong type")
    description = body.get("description")
    if not isinstance(description, str) or not 1 <= len(description) <= 1_000_000:
        problems.append("description must hold 1 to 1000000 characters")
    for key in ("agent", "baseBranch", "targetBranch", "branchName"):
        if isinstance(body.get(key), str) and not 1 <= len(body[key]) <= 500:
            problems.append(f"{key} must hold 1 to 500 characters")
    ids = body.get("codeRepositoryIds", [])
    if not isinstance(ids, list) or len(ids) > 100 or not all(is_uuid(i) for i in ids):
        problems.append("codeRepositoryIds must be at most 100 uuids")
    if "id" in body and not is_uuid(body["id"]):
        problems.append("id must be a uuid")
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
    repositories: list[dict[str, Any]] = field(default_factory=list)
    # Which calls were made, as (method, path), for tests that count lookups.
    calls: list[tuple[str, str]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return httpx.Response(401, json={"error": "Unauthorized"})
        self.calls.append((request.method, request.url.path))
        if request.method == "POST" and request.url.path == "/v1/sessions":
            try:
                body = json.loads(request.content)
            except ValueError:
                return httpx.Response(400, json={"error": "Invalid JSON body"})
            self.requests.append(body)
            problems = v1_errors(body)
            if problems:
                return httpx.Response(400, json={"error": "; ".join(problems)})
            if self.fault is not None:
                injected = self.fault(request)
                if injected is not None:
                    return injected
            return self.create_v1(body)
        if request.method == "GET" and request.url.path == "/v1/repositories":
            return httpx.Response(200, json=self.repository_list(request))
        if request.method == "GET" and request.url.path == "/session/search":
            if not request.url.params.get("q"):
                return httpx.Response(400, json={"error": "q is required"})
            if self.fault is not None:
                injected = self.fault(request)
                if injected is not None:
                    return injected
            return httpx.Response(200, json=self.listing(request, request.url.params["q"]))
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

    def listing(self, request: httpx.Request, query: str | None = None) -> dict[str, Any]:
        """`GET /session/list` (or `/session/search` with `query`), newest first, as
        openapi.documented.yml answers it: `{sessions: [...], meta: {...}}`."""
        limit = min(int(request.url.params.get("limit", "10")), 100)
        page = max(int(request.url.params.get("page", "1")), 1)
        newest = list(reversed(self.sessions))
        if query is not None:
            wanted = query.lower()
            newest = [
                s
                for s in newest
                if wanted in s["title"].lower() or wanted in s["description"].lower()
            ]
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
        answer: dict[str, Any] = {
            "sessions": [{key: item[key] for key in fields} for item in shown],
            "meta": {
                "currentPage": page,
                "hasNext": page < pages,
                "hasPrevious": page > 1,
                "pageSize": limit,
                "totalCount": len(newest),
                "totalPages": pages,
            },
        }
        if query is not None:
            answer["query"] = query
        return answer

    def enable(self, full_name: str) -> str:
        """Enable a GitHub repository in the organization; its Tembo id."""
        owner, name = full_name.split("/", 1)
        repo_id = str(uuid.uuid4())
        self.repositories.append(
            {
                "baseBranch": "main",
                "createdAt": NOW,
                "description": None,
                "enabledAt": NOW,
                "id": repo_id,
                "name": name,
                "owner": owner,
                "provider": {
                    "displayName": "GitHub",
                    "integrationId": "6307d53a-b99d-4e90-ab89-f29114f33d53",
                    "type": "github",
                },
                "targetBranch": None,
                "updatedAt": NOW,
                "url": f"https://github.com/{full_name}",
            }
        )
        return repo_id

    def repository_list(self, request: httpx.Request) -> dict[str, Any]:
        """listRepositories: `search` over the name (the page does not say which fields)."""
        search = (request.url.params.get("search") or "").lower()
        items = [r for r in self.repositories if search in r["name"].lower()]
        return {"items": items, "nextCursor": None}

    def create_v1(self, body: dict[str, Any]) -> httpx.Response:
        session_id = body.get("id") or str(uuid.uuid4())
        if self.find(session_id) is not None:
            return httpx.Response(409, json={"error": "Session already exists"})
        known = {r["id"] for r in self.repositories}
        if not set(body.get("codeRepositoryIds", [])) <= known:
            return httpx.Response(404, json={"error": "Code repository not found"})
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))
        session = {
            "id": session_id,
            "title": body["description"][:60],
            "description": body["description"],
            "prompt": body["description"],
            "status": "queued",
            "createdAt": stamp,
            "updatedAt": stamp,
            "organizationId": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
            "htmlUrl": f"https://app.tembo.io/sessions/{session_id}",
            "agent": body.get("agent"),
            "branchName": body.get("branchName"),
            "targetBranch": body.get("targetBranch"),
            "codeRepositoryIds": body.get("codeRepositoryIds", []),
            "state": state("queued"),
            "artifacts": [],
        }
        self.sessions.append(session)
        return httpx.Response(201, json=retrieved(session))

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
        "mcpServers": [],
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
