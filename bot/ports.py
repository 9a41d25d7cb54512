"""The Protocols between the core and the outside world, and the values they carry.

Adapters in `bot/adapters/` implement these; tests drive the real adapters against
fakes that speak the remote HTTP contracts. Nothing here performs I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.events import Comment, Repository

# ---------------------------------------------------------------------------
# Errors shared by every remote service


class RemoteError(Exception):
    """A remote call failed. `transient` says whether trying again later can help."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        # The request may have been carried out although its answer was lost.
        self.ambiguous = ambiguous


class GitHubError(RemoteError):
    pass


class PlatformError(RemoteError):
    pass


def is_transient_status(status: int) -> bool:
    return status in (408, 409, 425, 429) or status >= 500


# ---------------------------------------------------------------------------
# GitHub


class GitHub(Protocol):
    """The REST calls the worker makes, each on behalf of one installation."""

    async def create_reaction(
        self,
        installation_id: int,
        repo: str,
        *,
        content: str,
        issue: int | None = None,
        comment_id: int | None = None,
    ) -> None: ...

    async def create_comment(
        self, installation_id: int, repo: str, issue: int, body: str
    ) -> int: ...

    async def update_comment(
        self, installation_id: int, repo: str, comment_id: int, body: str
    ) -> None: ...

    async def list_comments(self, installation_id: int, repo: str, issue: int) -> list[Comment]: ...

    async def permission(self, installation_id: int, repo: str, login: str) -> str: ...

    async def read_file(self, installation_id: int, repo: str, path: str) -> str | None: ...


# ---------------------------------------------------------------------------
# Session platforms


@dataclass(frozen=True)
class SessionRequest:
    """What every platform needs to start work; each adapter sends the part its API takes."""

    dispatch_id: str
    title: str
    prompt: str
    repository: Repository
    target_branch: str
    branch_name: str
    agent: str | None = None


@dataclass(frozen=True)
class Session:
    id: str
    url: str
    status: str = ""
    # dry-run only: the request that would have been sent, secrets redacted.
    preview: str | None = None


class SessionPlatform(Protocol):
    name: str
    # Whether find_session can see sessions made by earlier processes. Without it, a
    # create whose answer was lost is sent again at most once (it may duplicate).
    can_find: bool

    async def create_session(self, request: SessionRequest) -> Session:
        """Start a session. Raises `PlatformError` (transient or not, maybe ambiguous)."""
        ...

    async def find_session(self, request: SessionRequest) -> Session | None:
        """The session an earlier, ambiguous create made for this dispatch, if any.

        Platforms without a list call return None; the worker then retries at most once.
        """
        ...


class MissingCredentials(Exception):
    """The chosen platform has no credentials; the message names the variable."""


PlatformFactory = Callable[[str], SessionPlatform]


# ---------------------------------------------------------------------------
# Store


@dataclass
class Job:
    id: int
    delivery_id: str
    event: str
    payload: dict[str, Any]
    attempts: int
    progress: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionRecord:
    dispatch_id: str
    repo: str
    issue: int
    platform: str
    session_id: str
    url: str
    created_at: float
    status: str = ""


class Store(Protocol):
    """Durable state: deliveries, jobs, sessions. Every method is one transaction."""

    async def migrate(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    async def enqueue(
        self,
        delivery_id: str,
        event: str,
        action: str | None,
        payload: bytes,
        lock_key: str | None,
        now: float,
    ) -> bool:
        """Record a delivery and its job; False (and nothing written) when already seen."""
        ...

    async def has_delivery(self, delivery_id: str) -> bool: ...

    async def claim(self, worker: str, now: float, lease_seconds: float) -> Job | None:
        """Lease the oldest due job whose lock key no live job holds."""
        ...

    async def extend(self, job_id: int, worker: str, until: float) -> bool: ...

    async def save_progress(self, job_id: int, progress: dict[str, Any]) -> None: ...

    async def finish(self, job_id: int, now: float) -> None: ...

    async def retry(self, job_id: int, error: str, run_at: float) -> None: ...

    async def fail(self, job_id: int, error: str, now: float, *, dead: bool) -> None: ...

    async def release(self, job_id: int) -> None:
        """Give a leased job back untouched (shutdown), without counting an attempt."""
        ...

    async def next_run_at(self) -> float | None:
        """When the next job is due (now or later); None when nothing is pending."""
        ...

    async def record_session(self, record: SessionRecord) -> None: ...

    async def sessions_for_issue(self, repo: str, issue: int) -> list[SessionRecord]: ...

    async def remember_notice(self, repo: str, issue: int, kind: str, now: float) -> bool:
        """True the first time this notice is recorded for the issue, False after."""
        ...

    async def record_installation(
        self, installation_id: int, account: str, action: str, now: float
    ) -> None: ...

    async def record_repositories(
        self, installation_id: int, added: tuple[str, ...], removed: tuple[str, ...]
    ) -> None: ...

    async def job_counts(self) -> dict[str, int]: ...

    async def stats(self) -> dict[str, Any]:
        """Installations, repositories and the last deliveries, for the status page."""
        ...


class Clock(Protocol):
    def now(self) -> float: ...
