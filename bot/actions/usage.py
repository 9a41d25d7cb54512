"""Writing the usage ledger from the actions: one row per act, keyed so a retried job
writes it once (see bot.ledger)."""

from __future__ import annotations

from typing import Any

from bot import fleet
from bot.actions import Context, dispatch_id
from bot.events import CommentEvent, IssueEvent
from bot.journal import load
from bot.ledger import Kind, LedgerRow
from bot.policy import Trigger
from bot.ports import Job, RemoteError, SessionRecord
from bot.repo_config import RepoConfig


async def note(
    ctx: Context,
    found: Trigger | IssueEvent | CommentEvent,
    kind: Kind,
    outcome: str,
    *,
    key: str,
    platform: str = "",
    dispatch_id: str | None = None,
    session_id: str = "",
    detail: str = "",
) -> None:
    await ctx.store.record_usage(
        LedgerRow(
            key=key,
            at=ctx.clock(),
            installation_id=found.installation_id,
            repo=found.repository.full_name,
            issue=found.issue.number,
            sender=found.sender.login,
            platform=platform,
            kind=kind,
            dispatch_id=dispatch_id,
            session_id=session_id,
            outcome=outcome,
            detail=detail[:500],
        )
    )


async def note_session(
    ctx: Context,
    found: Trigger,
    kind: Kind,
    outcome: str,
    record: SessionRecord,
    *,
    key: str,
    detail: str = "",
) -> None:
    """`note` for an act on one session the app started (a follow-up to it, a stop of it)."""
    await note(
        ctx,
        found,
        kind,
        outcome,
        key=key,
        platform=record.platform,
        dispatch_id=record.dispatch_id,
        session_id=record.session_id,
        detail=detail,
    )


async def gave_up(
    ctx: Context,
    job: Job,
    event: IssueEvent | CommentEvent,
    platform: str,
    text: str,
    error: BaseException,
    *,
    ident: str | None = None,
    creates_unknown: int | None = None,
) -> None:
    """A dispatch that used its attempts: a refusal row. Its budget reservation is handed
    back only when no create may have reached the platform (otherwise a session may exist
    and keeps counting). A fan-out's platform names its own `ident` and count of creates
    of unknown outcome (its part of the journal)."""
    ident = ident or dispatch_id(job)
    if creates_unknown is None:
        creates_unknown = load(job.progress).creates_unknown
    await note(
        ctx,
        event,
        "refusal",
        "gave up",
        key=f"{ident}:refusal",
        platform=platform,
        dispatch_id=ident,
        detail=text,
    )
    # The job's journal as claimed, plus the last attempt's own error: either may say a
    # create's outcome is unknown.
    ambiguous = isinstance(error, RemoteError) and error.ambiguous
    if not creates_unknown and not ambiguous:
        await ctx.store.end_reservation(ident, "released")


async def status_facts(ctx: Context, found: Trigger, config: RepoConfig) -> dict[str, Any]:
    """What `/tembo status` shows beyond the sessions: the issue's ledger rows and the
    budget left for the sender in this repository. Read only for that command."""
    if found.command is None or found.command.name != "status":
        return {}
    repo, now = found.repository.full_name, ctx.clock()
    rows = await ctx.store.usage(0.0, repo=repo, issue=found.issue.number)
    counts = await ctx.store.budget_counts(fleet.org_of(repo), repo, found.sender.login, now)
    left = fleet.remaining(config.limits, counts) if config.limits.any else None
    return {"usage": tuple(rows), "budget_left": left}
