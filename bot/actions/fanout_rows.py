"""A fan-out's rows: what each platform's branch came to, the one table they make, and
their records in the store (from which every later edit of the table is rendered).

A platform that could not start is recorded too (no session id, `failed`, so never live:
nothing to stop, follow or pick), so its row stays when other sessions' follows edit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bot import dispatch_status, policy
from bot.actions import Context, dispatch_id, group_views
from bot.actions.dispatch import announced, follow_later
from bot.actions.status_comment import StatusComment
from bot.journal import Branch, Progress
from bot.ports import Priority, RemoteError, Session, SessionRecord, SessionView


@dataclass(frozen=True)
class Row:
    """What one platform's branch came to in this attempt, before it is recorded."""

    branch: Branch
    ident: str
    view: SessionView
    session: Session | None = None  # None: refused (`view.reason` says why)
    error: RemoteError | None = None  # passing: the job is tried again for this branch


async def post_table(
    ctx: Context, progress: Progress, decision: policy.Dispatch, rows: list[Row], priority: Priority
) -> tuple[list[SessionView], int]:
    """Post (or edit) the one table: the rows of this attempt over those stored."""
    found, base = decision.trigger, dispatch_id(progress.job)
    repo, number = found.repository.full_name, found.issue.number
    newer = {row.branch.platform: row.view for row in rows}
    views = await group_views(ctx, repo, number, base, newer, decision.fanout)
    status = StatusComment(ctx, progress, found.installation_id, repo, number)
    return views, await status.post(dispatch_status.fanout_status(views, base), priority)


def as_row(view: SessionView, platforms: tuple[str, ...], base: str, now: float) -> SessionView:
    """`view` made a row of its fan-out's table."""
    return dataclasses.replace(view, group=base, fanout=platforms, started_at=now)


def refused_row(branch: Branch, ident: str, platforms: tuple[str, ...], reason: str) -> Row:
    base = ident.removesuffix(f"-{branch.platform}")
    view = SessionView(platform=branch.platform, phase="refused", reason=reason)
    return Row(branch, ident, as_row(view, platforms, base, 0.0))


async def record_row(ctx: Context, decision: policy.Dispatch, row: Row, comment_id: int) -> None:
    """The table is on the issue: record this platform's row (a session, or one that
    could not start) and start following it."""
    if row.error is not None or row.branch.journal.reported:
        return
    found = decision.trigger
    one = dataclasses.replace(decision, platform=row.branch.platform, fanout=())
    if row.session is not None:
        await announced(ctx, row.branch, one, row.session, row.ident, comment_id, row.view)
        if ctx.platforms(row.branch.platform).can_read:
            await follow_later(ctx, row.branch, found, row.branch.platform, row.ident)
        return
    await ctx.store.record_session(
        SessionRecord(
            dispatch_id=row.ident,
            repo=found.repository.full_name,
            issue=found.issue.number,
            platform=row.branch.platform,
            session_id="",
            url="",
            created_at=ctx.clock(),
            status="failed",
            comment_id=comment_id,
            installation_id=found.installation_id,
            view=row.view,
        )
    )
    await row.branch.write(dataclasses.replace(row.branch.journal, reported=True))
