"""A fake of GitHub's REST API for one App: the calls tembo-dispatch makes.

Contract sources: docs.github.com REST reference (apps, issues, comments, reactions,
collaborators, repository contents), API version 2022-11-28. The fake enforces the
headers GitHub recommends, verifies the App JWT with the public key, and only honours
installation tokens it issued.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from tests.support.fakes import error

APP_LOGIN = "tembo-dispatch[bot]"


@dataclass
class FakeComment:
    id: int
    repo: str
    issue: int
    body: str
    login: str
    type: str = "User"
    edits: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    # GitHub's author_association; the fake's callers say which one the author has.
    association: str = "NONE"


@dataclass
class FakeGitHub:
    public_key: str
    app_id: str = "12345"
    host: str = "api.github.test"
    prefix: str = ""  # "/api/v3" for GitHub Enterprise Server
    files: dict[tuple[str, str], str] = field(default_factory=dict)
    permissions: dict[tuple[str, str], str] = field(default_factory=dict)
    comments: dict[int, FakeComment] = field(default_factory=dict)
    reactions: list[tuple[str, str, int, str]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    tokens: dict[str, tuple[int, float]] = field(default_factory=dict)
    # A hook to inject faults: return a response to answer instead of the contract.
    fault: Callable[[httpx.Request], httpx.Response | None] | None = None
    token_lifetime: float = 3600.0
    clock: Callable[[], float] = time.time
    # The App's webhook delivery log (GET /app/hook/deliveries), newest first.
    hook_deliveries: list[dict[str, Any]] = field(default_factory=list)
    redelivered: list[int] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    @property
    def base_url(self) -> str:
        return f"https://{self.host}{self.prefix}"

    # -- test helpers ----------------------------------------------------

    def add_comment(
        self,
        repo: str,
        issue: int,
        body: str,
        login: str = "octocat",
        type: str = "User",
        association: str = "NONE",
        at: float | None = None,
    ) -> FakeComment:
        now = self.clock() if at is None else at
        comment = FakeComment(
            next(self._ids), repo, issue, body, login, type, 0, now, now, association
        )
        self.comments[comment.id] = comment
        return comment

    def app_comments(self, repo: str | None = None, issue: int | None = None) -> list[FakeComment]:
        return [
            c
            for c in self.comments.values()
            if c.login == APP_LOGIN
            and (repo is None or c.repo == repo)
            and (issue is None or c.issue == issue)
        ]

    def count(self, method: str, pattern: str) -> int:
        regex = re.compile(pattern)
        return sum(1 for m, p in self.calls if m == method and regex.fullmatch(p))

    # -- the contract ----------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        assert path.startswith(self.prefix), f"{path} is not under {self.prefix}"
        path = path[len(self.prefix) :]
        self.calls.append((request.method, path))
        assert request.headers.get("accept", "").startswith("application/vnd.github"), request
        assert request.headers.get("x-github-api-version") == "2022-11-28"
        assert request.headers.get("user-agent", "").startswith("tembo-dispatch/")
        if self.fault is not None:
            injected = self.fault(request)
            if injected is not None:
                return injected
        if path.startswith("/app"):
            return self._as_app(request, path)
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("token ")
        if token not in self.tokens or self.tokens[token][1] < self.clock():
            return error(401, "Bad credentials")
        return self._as_installation(request, path)

    def _verify_jwt(self, request: httpx.Request) -> dict[str, Any] | None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return None
        claims = jwt.decode(
            auth.removeprefix("Bearer "),
            self.public_key,
            algorithms=["RS256"],
            # Times are checked below against the fake's clock, which tests may move.
            options={"require": ["iat", "exp", "iss"], "verify_exp": False, "verify_iat": False},
        )
        now = self.clock()
        assert claims["iss"] == self.app_id
        assert claims["exp"] - claims["iat"] <= 600, "GitHub refuses JWTs valid over 10 min"
        assert claims["iat"] <= now - 30, "iat should be backdated against clock drift"
        assert claims["exp"] > now, "expired JWT"
        return claims

    def _as_app(self, request: httpx.Request, path: str) -> httpx.Response:
        if self._verify_jwt(request) is None:
            return error(401, "A JSON web token could not be decoded")
        if request.method == "GET" and path == "/app":
            return httpx.Response(
                200,
                json={"id": int(self.app_id), "slug": "tembo-dispatch", "name": "tembo-dispatch"},
            )
        if request.method == "GET" and path == "/app/hook/deliveries":
            return self._hook_deliveries(request)
        if request.method == "POST" and (
            m := re.fullmatch(r"/app/hook/deliveries/(\d+)/attempts", path)
        ):
            if not any(d["id"] == int(m[1]) for d in self.hook_deliveries):
                return error(404, "Not Found")
            self.redelivered.append(int(m[1]))
            return httpx.Response(202, json={})
        match = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
        if request.method == "POST" and match:
            token = "ghs_" + secrets.token_hex(16)
            expires = self.clock() + self.token_lifetime
            self.tokens[token] = (int(match[1]), expires)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
            return httpx.Response(
                201, json={"token": token, "expires_at": stamp, "permissions": {"issues": "write"}}
            )
        return error(404, "Not Found")

    def add_hook_delivery(
        self, guid: str, status_code: int, age: float, event: str = "issues"
    ) -> dict[str, Any]:
        """One attempt in the delivery log, shaped as GitHub documents it."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock() - age))
        item = {
            "id": len(self.hook_deliveries) + 1,
            "guid": guid,
            "delivered_at": stamp,
            "redelivery": False,
            "duration": 0.2,
            "status": "OK" if status_code < 300 else "Service Unavailable",
            "status_code": status_code,
            "event": event,
            "action": "labeled",
            "installation_id": 1,
            "repository_id": 1,
        }
        self.hook_deliveries.append(item)
        self.hook_deliveries.sort(key=lambda d: d["delivered_at"], reverse=True)
        return item

    def _hook_deliveries(self, request: httpx.Request) -> httpx.Response:
        per_page = int(request.url.params.get("per_page", 30))
        start = int(request.url.params.get("cursor", "0"))
        chunk = self.hook_deliveries[start : start + per_page]
        headers = {}
        if start + per_page < len(self.hook_deliveries):
            next_url = request.url.copy_set_param("cursor", str(start + per_page))
            headers["link"] = f'<{next_url}>; rel="next"'
        return httpx.Response(200, json=chunk, headers=headers)

    def _as_installation(self, request: httpx.Request, path: str) -> httpx.Response:
        method = request.method
        body = json.loads(request.content) if request.content else None

        if m := re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments", path):
            repo, issue = m[1], int(m[2])
            if method == "POST":
                assert isinstance(body, dict) and isinstance(body.get("body"), str)
                assert set(body) == {"body"}
                comment = self.add_comment(repo, issue, body["body"], APP_LOGIN, "Bot", "NONE")
                return httpx.Response(201, json=self._comment_json(comment))
            if method == "GET":
                return self._list_comments(request, repo, issue)
        if m := re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)", path):
            comment = self.comments.get(int(m[2]))
            if comment is None or comment.repo != m[1]:
                return error(404, "Not Found")
            if method == "PATCH":
                assert isinstance(body, dict) and set(body) == {"body"}
                comment.body = body["body"]
                comment.edits += 1
                comment.updated_at = self.clock()
                return httpx.Response(200, json=self._comment_json(comment))
        if method == "POST" and (
            m := re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/(\d+)/reactions", path)
        ):
            return self._react(m[1], "issue", int(m[2]), body)
        if method == "POST" and (
            m := re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)/reactions", path)
        ):
            return self._react(m[1], "comment", int(m[2]), body)
        if method == "GET" and (
            m := re.fullmatch(r"/repos/([^/]+/[^/]+)/collaborators/([^/]+)/permission", path)
        ):
            role = self.permissions.get((m[1], m[2]), "read")
            permission = {"triage": "read", "maintain": "write"}.get(role, role)
            return httpx.Response(
                200, json={"permission": permission, "role_name": role, "user": {"login": m[2]}}
            )
        if method == "GET" and (m := re.fullmatch(r"/repos/([^/]+/[^/]+)/contents/(.+)", path)):
            return self._contents(request, m[1], m[2])
        return error(404, "Not Found")

    def _comment_json(self, comment: FakeComment) -> dict[str, Any]:
        return {
            "id": comment.id,
            "body": comment.body,
            "html_url": f"https://github.test/{comment.repo}/issues/{comment.issue}"
            f"#issuecomment-{comment.id}",
            "user": {"login": comment.login, "type": comment.type},
            "created_at": _stamp(comment.created_at),
            "updated_at": _stamp(comment.updated_at),
            "author_association": comment.association,
        }

    def _list_comments(self, request: httpx.Request, repo: str, issue: int) -> httpx.Response:
        per_page = int(request.url.params.get("per_page", 30))
        page = int(request.url.params.get("page", 1))
        found = [c for c in self.comments.values() if c.repo == repo and c.issue == issue]
        chunk = found[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(found):
            next_url = request.url.copy_set_param("page", str(page + 1))
            headers["link"] = f'<{next_url}>; rel="next"'
        return httpx.Response(200, json=[self._comment_json(c) for c in chunk], headers=headers)

    def _react(self, repo: str, kind: str, target: int, body: Any) -> httpx.Response:
        allowed = {"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}
        assert isinstance(body, dict) and body.get("content") in allowed, body
        self.reactions.append((repo, kind, target, body["content"]))
        return httpx.Response(201, json={"id": len(self.reactions), "content": body["content"]})

    def _contents(self, request: httpx.Request, repo: str, path: str) -> httpx.Response:
        text = self.files.get((repo, path))
        if text is None:
            return error(404, "Not Found")
        etag = f'"{abs(hash(text)):x}"'
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers={"etag": etag})
        assert request.headers.get("accept") == "application/vnd.github.raw+json"
        return httpx.Response(200, text=text, headers={"etag": etag})


def _stamp(epoch: float) -> str:
    """A time as GitHub's REST API writes it: ISO 8601, UTC, whole seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
