"""GitHub's secondary rate limit in front of the contract fake, for bench-burst and the
budget's end-to-end tests.

`SecondaryLimit` wraps `tests.support.fakes.github.FakeGitHub` (unchanged) and is served like it
over real HTTP by `tests.support.fakes.server.FakeServer` (or in-process by
`httpx.MockTransport`). It allows content-creating requests (POST, PATCH, PUT, DELETE
outside `/app`) only while every window has room — GitHub's are 80 a minute and 500 an
hour, counted for the App's bot user across its installations ("Rate limits for the REST
API", secondary rate limits) — and answers the next one 403 with `Retry-After`, as GitHub
does, counting a violation. Benchmarks keep the counts and shrink the minute and the hour.
It also notes when each issue got its link, logs content calls in order, and counts calls
by kind, telling the edits that follow a session after its link apart.
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
from tests.support.fakes.tembo import FakeTembo

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
    # (limit, seconds) windows; GitHub's: 80 a minute and 500 an hour.
    windows: tuple[tuple[int, float], ...] = ((80, 60.0), (500, 3600.0))
    per_installation: bool = False  # GitHub counts per App (its bot user)
    clock: Callable[[], float] = time.monotonic
    violations: int = 0
    content_calls: Counter[int] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    linked_at: dict[tuple[str, int], float] = field(default_factory=dict)
    # Every content call let through, in order: (time, method, path).
    content_log: list[tuple[float, str, str]] = field(default_factory=list)
    # Answer the content calls after the first `refuse_after` with these (status,
    # retry-after), whatever the windows say.
    refuse_next: list[tuple[int, int]] = field(default_factory=list)
    refuse_after: int = 0
    _recent: dict[int, deque[float]] = field(default_factory=dict)

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
            due = len(self.content_log) >= self.refuse_after
            if installation is not None and self.refuse_next and due:
                status, seconds = self.refuse_next.pop(0)
                self.content_log.append((now, "refused", path))
                return error(
                    status,
                    "You have exceeded a secondary rate limit.",
                    **{"retry-after": str(seconds)},
                )
            if installation is not None:
                key = installation if self.per_installation else 0
                recent = self._recent.setdefault(key, deque())
                longest = max(seconds for _, seconds in self.windows)
                while recent and recent[0] <= now - longest:
                    recent.popleft()
                for limit, seconds in self.windows:
                    inside = [t for t in recent if t > now - seconds]
                    if len(inside) >= limit:
                        self.violations += 1
                        wait = inside[len(inside) - limit] + seconds - now
                        return error(
                            403,
                            "You have exceeded a secondary rate limit. Please wait a few "
                            "minutes before you try again.",
                            **{"retry-after": str(max(1, math.ceil(wait)))},
                        )
                recent.append(now)
                self.content_calls[installation] += 1
                self.content_log.append((now, request.method, path))
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


@dataclass
class SessionTimes:
    """The Tembo fake, noting when each session came to exist (time.monotonic)."""

    tembo: FakeTembo
    clock: Callable[[], float] = time.monotonic
    created_at: list[float] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        before = len(self.tembo.sessions)
        response = self.tembo(request)
        now = self.clock()
        self.created_at.extend(now for _ in range(len(self.tembo.sessions) - before))
        return response
