"""The Protocols between the core and the outside world, and the values they carry.

Adapters in `bot/adapters/` implement these; tests drive the real adapters against
fakes that speak the remote HTTP contracts. Nothing here performs I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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

    def reworded(self, message: str) -> RemoteError:
        """The same failure (same class and flags) told in other words."""
        return type(self)(
            message,
            status=self.status,
            transient=self.transient,
            retry_after=self.retry_after,
            ambiguous=self.ambiguous,
        )


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
    # When the first create for this dispatch was sent (epoch seconds), so a lookup after
    # a lost answer knows how far back to search; 0 when unknown.
    first_sent_at: float = 0.0


@dataclass(frozen=True)
class Session:
    id: str
    url: str
    status: str = ""
    # dry-run only: the request that would have been sent, secrets redacted.
    preview: str | None = None


@dataclass(frozen=True)
class SessionState:
    """What a platform says about a running session, reduced to what the issue shows.

    `phase` is one of: queued, working, finished, failed, stopped.
    """

    phase: str
    pull_requests: tuple[str, ...] = ()
    reason: str = ""  # why it failed or stopped, in the platform's words
    raw_status: str = ""

    @property
    def terminal(self) -> bool:
        return self.phase in ("finished", "failed", "stopped")


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

    # Following a session after it starts. Each capability is a flag, so the worker knows
    # what to offer without calling and failing; a method whose flag is False raises
    # PlatformError.
    can_read: bool  # get_session
    can_message: bool  # send_message
    can_stop: bool  # stop_session

    async def get_session(self, session_id: str) -> SessionState: ...

    async def send_message(self, session_id: str, text: str, dispatch_id: str) -> None: ...

    async def stop_session(self, session_id: str) -> None: ...


class MissingCredentials(Exception):
    """The chosen platform has no credentials; the message names the variable."""


PlatformFactory = Callable[[str], SessionPlatform]


# ---------------------------------------------------------------------------
# Store


JobKind = Literal["delivery", "follow"]
JobState = Literal["queued", "running", "done", "failed", "dead"]
Phase = Literal["started", "queued", "working", "finished", "failed", "stopped"]


class LostLease(Exception):
    """The job's lease ran out and another worker holds it now: this worker must stop
    touching the job (its write was refused)."""


@dataclass(frozen=True)
class Job:
    id: int
    delivery_id: str | None  # None for jobs that are not deliveries (kind != "delivery")
    event: str
    payload: dict[str, Any]
    attempts: int
    progress: dict[str, Any] = field(default_factory=dict)  # the raw journal (bot.journal)
    kind: JobKind = "delivery"
    created_at: float = 0.0  # when ingest stored it (the delivery's arrival)
    # The claim's own token: every write names it, so a worker whose lease was taken over
    # cannot write any more (procrastinate's fencing).
    lease: str = ""


@dataclass(frozen=True)
class SessionRecord:
    """A session the app started, and what its status comment shows (`view`)."""

    dispatch_id: str
    repo: str
    issue: int
    platform: str
    session_id: str
    url: str
    created_at: float
    status: str = ""
    comment_id: int | None = None  # the issue's status comment for this session
    installation_id: int | None = None
    view: dict[str, Any] = field(default_factory=dict)


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
        *,
        dedupe: tuple[str, ...] = (),
        since: float = 0.0,
    ) -> bool:
        """Record a delivery and its job; False (and nothing written) when its id was seen
        before, or any of the `dedupe` keys was recorded at or after `since`."""
        ...

    async def record_config_words(
        self, installation_id: int, repo: str, label: str, command: str, now: float
    ) -> None:
        """The label and command `repo`'s configuration uses, as the worker last read it."""
        ...

    async def config_words(self, repo: str, since: float) -> tuple[str, str] | None:
        """(label, command) recorded for `repo` at or after `since`; None if not."""
        ...

    async def has_delivery(self, delivery_id: str) -> bool: ...

    async def schedule(
        self,
        kind: str,
        payload: dict[str, Any],
        lock_key: str | None,
        run_at: float,
        now: float,
        *,
        priority: int = 0,
    ) -> None:
        """Queue a job that is not a delivery (e.g. following a session), due at run_at.
        Lower priority than deliveries by default, so it never delays a dispatch."""
        ...

    async def reschedule(self, job: Job, run_at: float, now: float) -> None:
        """A recurring job is done for now: queue it again for run_at, attempts reset."""
        ...

    async def claim(self, worker: str, now: float, lease_seconds: float) -> Job | None:
        """Lease the oldest due job whose lock key no live job holds, under a new token."""
        ...

    # Every write below is fenced by `job.lease`: when another claim took the job over, it
    # writes nothing and raises `LostLease` (extend answers False instead).

    async def extend(self, job: Job, until: float) -> bool: ...

    async def save_progress(self, job: Job, progress: dict[str, Any]) -> None: ...

    async def finish(self, job: Job, now: float) -> None: ...

    async def retry(self, job: Job, error: str, run_at: float) -> None: ...

    async def fail(self, job: Job, error: str, now: float, *, dead: bool) -> None: ...

    async def release(self, job: Job) -> None:
        """Give a leased job back untouched (shutdown), without counting an attempt."""
        ...

    async def next_run_at(self) -> float | None:
        """When the next job is due (now or later); None when nothing is pending."""
        ...

    async def record_session(self, record: SessionRecord) -> None: ...

    async def sessions_for_issue(self, repo: str, issue: int) -> list[SessionRecord]: ...

    async def update_session(self, dispatch_id: str, status: str, view: dict[str, Any]) -> None:
        """Record a session's latest status and what its status comment now shows."""
        ...

    async def remember_notice(self, repo: str, issue: int, kind: str, now: float) -> bool:
        """True the first time this notice is recorded for the issue, False after."""
        ...

    async def record_installation(
        self, installation_id: int, account: str, action: str, now: float
    ) -> None: ...

    async def record_repositories(
        self, installation_id: int, added: tuple[str, ...], removed: tuple[str, ...]
    ) -> None: ...

    async def job_counts(self, kind: str | None = None) -> dict[str, int]:
        """Jobs by state; only those of `kind` (delivery, follow) when given."""
        ...

    async def stats(self) -> dict[str, Any]:
        """Installations, repositories and the last deliveries, for the status page."""
        ...


class Clock(Protocol):
    def now(self) -> float: ...
