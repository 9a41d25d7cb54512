"""A fake of Tembo's public API (seeds 000/001: POST /session/create).

Strict about the request: Bearer key, JSON body valid against the OpenAPI schema of
seed 001 (prompt minLength 1, types of every field, no unknown fields), and answers
with every field the schema marks required.
"""

from __future__ import annotations

import json
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
        return httpx.Response(404, json={"error": "Not found"})

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
        session = {
            "id": session_id,
            "title": body.get("prompt", "")[:60],
            "description": body.get("prompt", ""),
            "prompt": body.get("prompt", ""),
            "status": "queued",
            "createdAt": "2026-11-26T06:00:00Z",
            "updatedAt": "2026-11-26T06:00:00Z",
            "organizationId": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
            "htmlUrl": f"https://app.tembo.io/sessions/{session_id}",
        }
        self.sessions.append(session)
        return session
