"""GitHub's secondary rate limit in front of the contract fake, for bench-burst.

`SecondaryLimit` wraps `tests.support.fakes.github.FakeGitHub` (unchanged) and is served like it
over real HTTP by `tests.support.fakes.server.FakeServer`. It allows at most `limit`
content-creating requests (POST, PATCH, PUT, DELETE outside `/app`) per installation in
any `window` seconds, and answers the next one 403 with `Retry-After`, as GitHub does.
GitHub's figure is 80 a minute; the benchmark keeps the 80 and shrinks the minute, so a
burst that would take an hour takes a minute. It also notes when each issue got its link,
and counts calls by kind, telling the edits that follow a session after its link apart.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from tests.support.fakes import error
from tests.support.fakes.github import FakeGitHub

CONTENT_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
SESSION_LINK = "https://app.tembo.io/sessions/"
# Paths with their ids folded, to count calls by kind.
_IDS = re.compile(r"/repos/[^/]+/[^/]+|/\d+(?=/|$)|/contents/.+$|/collaborators/[^/]+")


def call_kind(method: str, path: str) -> str:
    def fold(match: re.Match[str]) -> str:
        text = match[0]
        if text.startswith("/repos/"):
            return "/repos/{repo}"
        if text.startswith("/contents/"):
            return "/contents/{path}"
        if text.startswith("/collaborators/"):
            return "/collaborators/{user}"
        return "/{id}"

    return f"{method} {_IDS.sub(fold, path)}"


@dataclass
class SecondaryLimit:
    github: FakeGitHub
    limit: int = 80
    window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    violations: int = 0
    content_calls: Counter[int] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    linked_at: dict[tuple[str, int], float] = field(default_factory=dict)
    _recent: dict[int, deque[float]] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.limit / self.window

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        kind = call_kind(request.method, path)
        last = path.rsplit("/", 1)[-1]
        if request.method == "PATCH" and last.isdigit():
            comment = self.github.comments.get(int(last))
            if comment is not None and (comment.repo, comment.issue) in self.linked_at:
                kind += " (after the link)"  # following the session, not dispatching it
        self.calls[kind] += 1
        now = self.clock()
        if request.method in CONTENT_METHODS and not path.startswith("/app"):
            installation = self._installation(request)
            if installation is not None:
                recent = self._recent.setdefault(installation, deque())
                while recent and recent[0] <= now - self.window:
                    recent.popleft()
                if len(recent) >= self.limit:
                    self.violations += 1
                    wait = recent[0] + self.window - now
                    return error(
                        403,
                        "You have exceeded a secondary rate limit. Please wait a few minutes "
                        "before you try again.",
                        **{"retry-after": str(max(1, math.ceil(wait)))},
                    )
                recent.append(now)
                self.content_calls[installation] += 1
        response = self.github(request)
        if request.method == "PATCH" and response.status_code == 200 and last.isdigit():
            comment = self.github.comments.get(int(last))
            if comment is not None and SESSION_LINK in comment.body:
                self.linked_at.setdefault((comment.repo, comment.issue), now)
        if request.method == "POST" and last == "comments" and response.status_code == 201:
            # The link is usually in the comment's first version: sessions come first.
            comment = self.github.comments.get(int(response.json()["id"]))
            if comment is not None and SESSION_LINK in comment.body:
                self.linked_at.setdefault((comment.repo, comment.issue), now)
        return response

    def _installation(self, request: httpx.Request) -> int | None:
        token = request.headers.get("authorization", "").removeprefix("token ")
        issued = self.github.tokens.get(token)
        return None if issued is None else issued[0]
