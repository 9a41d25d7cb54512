"""Dispatching: start a session for a trigger, post its link, start following it.

Sessions come first. The 👀 reaction goes out beside the create, never before it, so the
session never waits on GitHub's content budget; the status comment is posted once, with
the link, when the session exists. A "starting…" comment is posted first only when the
create is still not done after `STARTING_AFTER` seconds. In steady state a dispatch costs
two content-creating calls: the reaction and the comment.

Exactly once: every outside effect is in the journal before and after it happens; a create
whose answer was lost is looked up on the platform before anything is sent again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from bot import dispatch_status, fleet, policy, prompt
from bot.actions import Context, Outcome, dispatch_id, limits, react, react_failure
from bot.actions.create import create_announced, settle
from bot.actions.follow import FOLLOW_FIRST
from bot.actions.request import read_request
from bot.actions.status_comment import StatusComment
from bot.actions.usage import note
from bot.events import job_lock
from bot.journal import Progress
from bot.logs import log
from bot.ports import (
    MissingCredentials,
    PlatformError,
    Priority,
    Session,
    SessionRecord,
    SessionRequest,
    SessionView,
)
from bot.repo_config import RepoConfig

logger = logging.getLogger("bot.actions.dispatch")


async def dispatch(
    ctx: Context,
    progress: Progress,
    decision: policy.Dispatch,
    config: RepoConfig,
    fields: dict[str, Any],
) -> Outcome:
    found = decision.trigger
    ident = dispatch_id(progress.job)
    status = StatusComment(
        ctx, progress, found.installation_id, found.repository.full_name, found.issue.number
    )
    try:
        platform = ctx.platforms(decision.platform)
    except MissingCredentials as exc:
        return await _refused(ctx, progress, status, decision, str(exc), fields)

    session = progress.journal.session
    if session is None and progress.journal.reported:
        # An earlier attempt was refused (a budget, the platform) and said so on the issue.
        return Outcome("done", "refused earlier; said so on the issue")
    if session is None:
        answer = await limits.reserve(ctx, decision, config, ident)
        if not answer.granted:
            return await limits.limited(ctx, progress, status, decision, config, answer, fields)
    nonce = progress.journal.prompt_nonce
    if nonce is None:
        nonce = prompt.new_nonce()
        await progress.write(dataclasses.replace(progress.journal, prompt_nonce=nonce))
    request = await read_request(ctx, decision, config, ident, nonce)
    if session is None:
        reacting = asyncio.create_task(eyes(ctx, progress, found))
        try:
            session = await create_announced(
                ctx, progress, status, platform, request, found.sender.login
            )
        except PlatformError as exc:
            await settle(reacting, cancel=True)
            if exc.transient:
                moved = await limits.spent(
                    ctx, progress, decision, config, platform, request, exc, ident
                )
                if moved is None:
                    raise
                return moved
            journal = progress.journal
            after = fleet.fallback_to(
                decision.platform,
                config.fallback,
                journal.tried,
                exc.status,
                journal.creates_unknown,
            )
            if after is None:
                return await _refused(ctx, progress, status, decision, exc.message, fields, exc)
            await limits.fall_back(ctx, progress, decision, exc, after, ident)
            return await dispatch(
                ctx, progress, dataclasses.replace(decision, platform=after), config, fields
            )
        except BaseException:
            await settle(reacting, cancel=True)
            raise
        await settle(reacting, cancel=False)
        await progress.write(dataclasses.replace(progress.journal, session=session))
    elif not progress.journal.reacted:
        await eyes(ctx, progress, found)

    if not progress.journal.reported:
        await _link(ctx, progress, status, decision, session, request)
    if platform.can_read:
        await follow_later(ctx, progress, found, decision.platform, ident)
    log(
        logger,
        "dispatch.created",
        platform=decision.platform,
        session_id=session.id,
        url=session.url,
        **fields,
    )
    return Outcome("done", session.url)


async def _link(
    ctx: Context,
    progress: Progress,
    status: StatusComment,
    decision: policy.Dispatch,
    session: Session,
    request: SessionRequest,
) -> None:
    """The one status comment with the session's link, then the session's record."""
    ident = status.ident
    view = view_of(session, decision.platform, request, progress.journal.fell_back)
    if session.preview is not None:
        body = dispatch_status.dry_run(
            session.preview, branch=request.branch_name, target=request.target_branch, ident=ident
        )
    else:
        body = dispatch_status.status_comment(view, ident)
    comment_id = await status.post(body, Priority.LINK)
    # Recorded once its comment exists, so whoever edits the session next (the poller,
    # a follow-up, a stop) finds the comment; recording twice is a no-op.
    await announced(ctx, progress, decision, session, ident, comment_id, view)


async def eyes(ctx: Context, progress: Progress, found: policy.Trigger) -> None:
    if progress.journal.reacted:
        return
    await react(ctx, found, "eyes", Priority.LINK)  # the link comment waits for it
    await progress.write(dataclasses.replace(progress.journal, reacted=True))


def view_of(
    session: Session, platform: str, request: SessionRequest, notes: tuple[str, ...] = ()
) -> SessionView:
    """What the session's status comment shows (and its record keeps); `notes`, e.g.
    "Tembo answered 401; started on Agen instead"."""
    return dispatch_status.session_view(session, request, platform=platform, notes=notes)


async def announced(
    ctx: Context,
    progress: Progress,
    decision: policy.Dispatch,
    session: Session,
    ident: str,
    comment_id: int,
    view: SessionView,
) -> None:
    """The session's link is on the issue: record the session (with its comment and what
    the comment shows) and its ledger row, then journal that both are done."""
    found = decision.trigger
    await ctx.store.record_session(
        SessionRecord(
            dispatch_id=ident,
            repo=found.repository.full_name,
            issue=found.issue.number,
            platform=view.platform,
            session_id=session.id,
            url=session.url,
            created_at=ctx.clock(),
            status=session.status,
            comment_id=comment_id,
            installation_id=found.installation_id,
            view=view,
        )
    )
    await note(
        ctx,
        found,
        "dispatch",
        "dry run" if session.preview is not None else "created",
        key=f"{ident}:dispatch",
        platform=view.platform,
        dispatch_id=ident,
        session_id=session.id,
        detail="started with force=true past a used-up budget" if decision.force else "",
    )
    await progress.write(dataclasses.replace(progress.journal, reported=True))
    if ctx.metrics is not None and progress.job.created_at:
        ctx.metrics.observe_dispatch(ctx.clock() - progress.job.created_at)


async def follow_later(
    ctx: Context, progress: Progress, found: policy.Trigger, platform: str, ident: str
) -> None:
    """Queue the session's follow job, once."""
    if progress.journal.following:
        return
    now = ctx.clock()
    repo, number = found.repository.full_name, found.issue.number
    follow = {
        "dispatch_id": ident,
        "repo": repo,
        "issue": number,
        "platform": platform,
        "started_at": now,
    }
    await ctx.store.schedule("follow", follow, job_lock(repo, number), now + FOLLOW_FIRST, now)
    await progress.write(dataclasses.replace(progress.journal, following=True))


async def _refused(
    ctx: Context,
    progress: Progress,
    status: StatusComment,
    decision: policy.Dispatch,
    reason: str,
    fields: dict[str, Any],
    error: PlatformError | None = None,
) -> Outcome:
    """The platform cannot be used or said no for good: say so where the link would be."""
    notes = progress.journal.fell_back
    await status.post(
        dispatch_status.failed(decision.platform, reason, ident=status.ident, notes=notes)
    )
    if not progress.journal.creates_unknown:
        # No create reached the platform without an answer: nothing started, nothing spent.
        await ctx.store.end_reservation(status.ident, "released")
    await note(
        ctx,
        decision.trigger,
        "refusal",
        "refused" if error else "unconfigured",
        key=f"{status.ident}:refusal",
        platform=decision.platform,
        dispatch_id=status.ident,
        detail=f"{error.status}: {reason}" if error and error.status else reason,
    )
    await progress.write(dataclasses.replace(progress.journal, reported=True))
    await react_failure(ctx, decision.trigger)
    log(
        logger,
        "dispatch.refused" if error else "dispatch.unconfigured",
        logging.WARNING,
        platform=decision.platform,
        status=error.status if error else None,
        error=reason,
        **fields,
    )
    return Outcome("failed", reason)
