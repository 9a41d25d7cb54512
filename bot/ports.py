"""The Protocols between the core and the outside world, and the values they carry.

Adapters in `bot/adapters/` implement these; tests drive the real adapters against
fakes that speak the remote HTTP contracts. Nothing here performs I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal, Protocol

from bot import fleet
from bot.events import Comment, Repository
from bot.ledger import LedgerRow

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
    # A primary rate limit (per installation, x-ratelimit-remaining: 0), not a secondary one.
    primary: bool = False


class PlatformError(RemoteError):
    pass


def is_transient_status(status: int) -> bool:
    return status in (408, 409, 425, 429) or status >= 500


# ---------------------------------------------------------------------------
# GitHub


class Priority(IntEnum):
    """Who gets GitHub's content budget first when it is short (lower goes first)."""

    LINK = 0  # a new session's link comment (and the 👀 that goes with it)
    REPLY = 1  # answers to people: refusals, help, status, stops, follow-up notes
    FOLLOW = 2  # follow-through edits of a status comment while a session runs


class BudgetShort(Exception):
    """A content call that was asked not to wait found no slot in GitHub's budget; a slot
    may be free at `retry_at` (epoch seconds)."""

    def __init__(self, retry_at: float) -> None:
        super().__init__(f"GitHub's content budget is spent until {retry_at:.1f}")
        self.retry_at = retry_at


class GitHub(Protocol):
    """The REST calls the worker makes, each on behalf of one installation.

    Content-creating calls (reactions, comments, edits) take their `priority` in GitHub's
    content budget. With `wait` (the default) they wait for a slot; without, they raise
    `BudgetShort` at once when none is free.
    """

    async def create_reaction(
        self,
        installation_id: int,
        repo: str,
        *,
        content: str,
        issue: int | None = None,
        comment_id: int | None = None,
        priority: Priority = Priority.REPLY,
        wait: bool = True,
    ) -> None: ...

    async def create_comment(
        self,
        installation_id: int,
        repo: str,
        issue: int,
        body: str,
        *,
        priority: Priority = Priority.REPLY,
    ) -> int: ...

    async def update_comment(
        self,
        installation_id: int,
        repo: str,
        comment_id: int,
        body: str,
        *,
        priority: Priority = Priority.REPLY,
        wait: bool = True,
    ) -> None: ...

    async def list_comments(self, installation_id: int, repo: str, issue: int) -> list[Comment]: ...

    async def permission(self, installation_id: int, repo: str, login: str) -> str: ...

    async def app_login(self) -> str:
        """The App's own bot user (`<slug>[bot]`), the author of the App's comments."""
        ...

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


# The last line of every prompt: a lookup after a lost answer matches that whole line.
TRAILER = "tembo-dispatch-id: "


def trailer(dispatch_id: str) -> str:
    return f"{TRAILER}{dispatch_id}"


def has_trailer(text: str, dispatch_id: str) -> bool:
    """Whether `text` (a prompt as a platform gives it back) ends with this dispatch's
    trailer line: the whole last non-blank line, so a longer id, or an id quoted inside
    the issue text, never matches."""
    lines = text.rstrip().rsplit("\n", 1)
    return lines[-1].strip() == trailer(dispatch_id)


@dataclass(frozen=True)
class Session:
    id: str
    url: str
    status: str = ""
    # dry-run only: the request that would have been sent, secrets redacted.
    preview: str | None = None
    # What a maintainer should know from the start (shown in the status comment).
    notes: tuple[str, ...] = ()


# Where a session stands, as its status comment says it: `started` until a platform
# first reports one of the others.
Phase = Literal["started", "queued", "working", "finished", "failed", "stopped"]
PHASES: tuple[Phase, ...] = ("started", "queued", "working", "finished", "failed", "stopped")
# A status comment's phases: a platform's, plus a fan-out row's before its session exists
# ("starting") and when its platform said no ("refused").
ViewPhase = Literal[
    "started", "queued", "working", "finished", "failed", "stopped", "starting", "refused"
]
VIEW_PHASES: tuple[ViewPhase, ...] = (*PHASES, "starting", "refused")


@dataclass(frozen=True)
class SessionState:
    """What a platform says about a running session, reduced to what the issue shows."""

    phase: Phase
    pull_requests: tuple[str, ...] = ()
    reason: str = ""  # why it failed or stopped, in the platform's words
    raw_status: str = ""

    @property
    def terminal(self) -> bool:
        return self.phase in ("finished", "failed", "stopped")


class Steps(Protocol):
    """A dispatch's notes for a create that takes several calls (Recoup: session, sandbox,
    chat). Kept in the job's journal in the store, so a retry on any replica, after any
    crash, resumes at the step that failed instead of redoing the ones that succeeded.
    A single-call create ignores it."""

    def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str) -> None:
        """Record `value` durably before returning."""
        ...


class SessionPlatform(Protocol):
    name: str
    # Whether find_session can see sessions made by earlier processes. Without it, a
    # create whose answer was lost is sent again at most once (it may duplicate).
    can_find: bool

    async def create_session(self, request: SessionRequest, steps: Steps) -> Session:
        """Start a session. Raises `PlatformError` (transient or not, maybe ambiguous).

        `steps` is this dispatch's journal of finished steps (see `Steps`)."""
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
class SessionView:
    """What a session's status comment shows, kept with the session (`SessionRecord.view`)
    so that whoever edits the comment next (the poller, a follow-up, a stop) starts from
    it. Stored as JSON (`to_json`/`from_json`, one place): lists for the tuples, so rows
    written before this type existed load unchanged."""

    # The session: its platform's name, link and id.
    platform: str = ""
    url: str = ""
    session_id: str = ""
    # Where it stands, as last read from its platform.
    phase: ViewPhase = "started"
    pull_requests: tuple[str, ...] = ()
    # What it was asked for: the agent (None: the platform's default) and the branches.
    agent: str | None = None
    branch: str = ""
    target: str = ""
    # Lines a maintainer should read (a fallback taken, a follow-up sent, ...).
    notes: tuple[str, ...] = ()
    reason: str = ""  # why it failed or stopped, in the platform's words
    # A fan-out's row: its trigger's dispatch id (None: a session alone), the platforms in
    # the table's order, when the fan-out started and this row's PR opened (time to PR),
    # and whether `/tembo pick` chose it.
    group: str | None = None
    fanout: tuple[str, ...] = ()
    started_at: float | None = None
    pr_at: float | None = None
    picked: bool = False

    def to_json(self) -> dict[str, Any]:
        fanout: dict[str, Any] = {}
        if self.group is not None:
            fanout = {
                "group": self.group,
                "fanout": list(self.fanout),
                "started_at": self.started_at,
                "pr_at": self.pr_at,
                "picked": self.picked,
            }
        return {
            "platform": self.platform,
            "url": self.url,
            "session_id": self.session_id,
            "agent": self.agent,
            "branch": self.branch,
            "target": self.target,
            "phase": self.phase,
            "pull_requests": list(self.pull_requests),
            "reason": self.reason,
            "notes": list(self.notes),
            **fanout,
        }

    @classmethod
    def from_json(cls, data: Any) -> SessionView:
        """A stored view; keys it does not know are dropped, missing ones take defaults."""
        data = data if isinstance(data, dict) else {}
        phase = data.get("phase")
        agent = data.get("agent")
        group = data.get("group")
        return cls(
            platform=str(data.get("platform") or ""),
            url=str(data.get("url") or ""),
            session_id=str(data.get("session_id") or ""),
            agent=str(agent) if agent else None,
            branch=str(data.get("branch") or ""),
            target=str(data.get("target") or ""),
            phase=next((p for p in VIEW_PHASES if p == phase), "started"),
            pull_requests=tuple(str(u) for u in data.get("pull_requests") or ()),
            reason=str(data.get("reason") or ""),
            notes=tuple(str(n) for n in data.get("notes") or ()),
            group=group if isinstance(group, str) else None,
            fanout=tuple(str(name) for name in data.get("fanout") or ()),
            started_at=_number(data.get("started_at")),
            pr_at=_number(data.get("pr_at")),
            picked=data.get("picked") is True,
        )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


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
    view: SessionView = field(default_factory=SessionView)


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

    async def prune(self, jobs_before: float, deliveries_before: float, batch: int) -> int:
        """Delete up to `batch` each of: finished jobs (done, failed, dead) last written
        before `jobs_before`, with their payloads; deliveries received before
        `deliveries_before` that no job is left for; replay keys last seen before it.
        Queued and running jobs and their deliveries are never touched. The number of rows
        deleted; any replica may call it at any time, alone or at once with others."""
        ...

    async def record_session(self, record: SessionRecord) -> None: ...

    async def sessions_for_issue(self, repo: str, issue: int) -> list[SessionRecord]: ...

    async def update_session(self, dispatch_id: str, status: str, view: SessionView) -> None:
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

    # LedgerRow ledger and budgets (bot.ledger, bot.fleet)

    async def record_usage(self, usage: LedgerRow) -> None:
        """Add a ledger row; a row whose key is already there is not added again."""
        ...

    async def usage(
        self, since: float, *, repo: str | None = None, issue: int | None = None
    ) -> list[LedgerRow]:
        """Ledger rows from `since` on, oldest first; one repository's or issue's if given."""
        ...

    async def usage_pull_request(self, dispatch_id: str, url: str) -> None: ...

    async def reserve(
        self, reservation: fleet.Reservation, limits: fleet.Limits, now: float
    ) -> fleet.Answer:
        """Count the budgets and reserve one dispatch, atomically across replicas; the
        same dispatch id reserving again is answered `again` and counted once."""
        ...

    async def end_reservation(self, dispatch_id: str, state: str) -> None:
        """`ended` (the session is over) or `released` (it never started)."""
        ...

    async def budget_counts(self, org: str, repo: str, sender: str, now: float) -> fleet.Counts: ...

    # GitHub's content budget, shared by every replica (bot.budget owns the policy).

    async def take_budget(
        self, key: str, clock: Callable[[], float], windows: BudgetWindows
    ) -> float | None:
        """Take one slot of `key`'s budget if every window has room and no pause holds:
        None when taken; otherwise when a slot may be free, and nothing written. One
        transaction, so replicas never take the same slot. The grant is stamped with
        `clock()` read as late as the store can (once it may write), not before waiting for
        its lock: a stale stamp would let the window look emptier than GitHub sees it."""
        ...

    async def pause_budget(self, key: str, until: float) -> None:
        """GitHub said to stop: no slot of `key` is given before `until`."""
        ...


@dataclass(frozen=True)
class BudgetWindows:
    """Sliding windows a slot must fit: at most `minute_limit` grants in the last
    `minute_seconds`, and `hour_limit` in the last `hour_seconds`."""

    minute_limit: int
    minute_seconds: float
    hour_limit: int
    hour_seconds: float


class Clock(Protocol):
    def now(self) -> float: ...
