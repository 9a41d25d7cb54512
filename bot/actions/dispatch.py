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
import contextlib
import dataclasses
import logging
from typing import Any

from bot import fleet, messages, policy, prompt
from bot.actions import Context, Outcome, dispatch_id, limits, react, react_failure
from bot.actions.follow import FOLLOW_FIRST
from bot.actions.status_comment import StatusComment
from bot.actions.usage import note
from bot.events import Comment, job_lock
from bot.journal import JournalSteps, Progress
from bot.logs import log
from bot.ports import (
    GitHub,
    GitHubError,
    MissingCredentials,
    PlatformError,
    Priority,
    Session,
    SessionPlatform,
    SessionRecord,
    SessionRequest,
)
from bot.repo_config import RepoConfig

logger = logging.getLogger("bot.actions.dispatch")
# Long enough that most creates answer first (no extra comment), short enough that a
# person watching the issue sees the app is on it.
STARTING_AFTER = 3.0


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
    request = await build_request(ctx, decision, config, ident, nonce)
    if session is None:
        eyes = asyncio.create_task(_eyes(ctx, progress, found))
        try:
            session = await _create_announced(
                ctx, progress, status, platform, request, found.sender.login
            )
        except PlatformError as exc:
            await _settle(eyes, cancel=True)
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
            await _settle(eyes, cancel=True)
            raise
        await _settle(eyes, cancel=False)
        await progress.write(dataclasses.replace(progress.journal, session=session))
    elif not progress.journal.reacted:
        await _eyes(ctx, progress, found)

    if not progress.journal.reported:
        notes = progress.journal.fell_back
        link = _link_comment(session, decision, request, ident, notes)
        comment_id = await status.post(link, Priority.LINK)
        # Recorded once its comment exists, so whoever edits the session next (the poller,
        # a follow-up, a stop) finds the comment; recording twice is a no-op.
        await _record(ctx, decision, request, session, ident, comment_id, notes)
        outcome = "dry run" if session.preview is not None else "created"
        await note(
            ctx,
            found,
            "dispatch",
            outcome,
            key=f"{ident}:dispatch",
            platform=decision.platform,
            dispatch_id=ident,
            session_id=session.id,
            detail="started with force=true past a used-up budget" if decision.force else "",
        )
        await progress.write(dataclasses.replace(progress.journal, reported=True))
        if ctx.metrics is not None and progress.job.created_at:
            ctx.metrics.observe_dispatch(ctx.clock() - progress.job.created_at)
    if platform.can_read and not progress.journal.following:
        now = ctx.clock()
        repo, number = found.repository.full_name, found.issue.number
        follow = {
            "dispatch_id": ident,
            "repo": repo,
            "issue": number,
            "platform": decision.platform,
            "started_at": now,
        }
        await ctx.store.schedule("follow", follow, job_lock(repo, number), now + FOLLOW_FIRST, now)
        await progress.write(dataclasses.replace(progress.journal, following=True))
    log(
        logger,
        "dispatch.created",
        platform=decision.platform,
        session_id=session.id,
        url=session.url,
        **fields,
    )
    return Outcome("done", session.url)


async def _eyes(ctx: Context, progress: Progress, found: policy.Trigger) -> None:
    if progress.journal.reacted:
        return
    await react(ctx, found, "eyes", Priority.LINK)  # the link comment waits for it
    await progress.write(dataclasses.replace(progress.journal, reacted=True))


async def _settle(task: asyncio.Task[None], *, cancel: bool) -> None:
    """Wait for a side task; when the main step failed, cancel it and drop its error (the
    journal says whether it happened, so a retry does it again if needed)."""
    if cancel:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    else:
        await task


async def _create_announced(
    ctx: Context,
    progress: Progress,
    status: StatusComment,
    platform: SessionPlatform,
    request: SessionRequest,
    who: str,
) -> Session:
    """Create the session; if it takes longer than STARTING_AFTER, say so on the issue
    meanwhile (best effort: the link comment follows either way)."""
    creating = asyncio.create_task(create(ctx, progress, platform, request))
    done, _ = await asyncio.wait({creating}, timeout=STARTING_AFTER)
    if not done and status.comment_id is None:
        with contextlib.suppress(GitHubError):
            await status.post(messages.starting(platform.name, who, status.ident), Priority.LINK)
    return await creating


async def create(
    ctx: Context, progress: Progress, platform: SessionPlatform, request: SessionRequest
) -> Session:
    """Create exactly once. A create whose outcome is unknown (counted before sending, so a
    crash mid-call leaves it counted; back down on a definite answer) is first looked up on
    the platform; a platform that cannot look up is sent to at most twice."""
    journal = progress.journal
    unknown = journal.creates_unknown
    request = dataclasses.replace(request, first_sent_at=journal.first_sent_at or 0.0)
    if unknown:
        existing = await platform.find_session(request)
        if existing is not None:
            return existing
        if not platform.can_find and unknown >= 2:
            raise PlatformError(
                f"{platform.name} did not answer twice and cannot be asked whether a "
                "session was started, so it is not asked again (a session may exist: "
                "check the platform before using `/tembo new`)"
            )
    first = journal.first_sent_at if journal.first_sent_at is not None else ctx.clock()
    await progress.write(
        dataclasses.replace(journal, creates_unknown=unknown + 1, first_sent_at=first)
    )
    try:
        return await platform.create_session(request, JournalSteps(progress))
    except PlatformError as exc:
        if not exc.ambiguous:
            await progress.write(dataclasses.replace(progress.journal, creates_unknown=unknown))
        raise


async def _record(
    ctx: Context,
    decision: policy.Dispatch,
    request: SessionRequest,
    session: Session,
    ident: str,
    comment_id: int,
    notes: tuple[str, ...] = (),
) -> None:
    found = decision.trigger
    view = messages.session_view(
        session,
        platform=decision.platform,
        agent=request.agent,
        branch=request.branch_name,
        target=request.target_branch,
    )
    view["notes"] = list(notes)
    await ctx.store.record_session(
        SessionRecord(
            dispatch_id=ident,
            repo=found.repository.full_name,
            issue=found.issue.number,
            platform=decision.platform,
            session_id=session.id,
            url=session.url,
            created_at=ctx.clock(),
            status=session.status,
            comment_id=comment_id,
            installation_id=found.installation_id,
            view=view,
        )
    )


def _link_comment(
    session: Session,
    decision: policy.Dispatch,
    request: SessionRequest,
    ident: str,
    notes: tuple[str, ...] = (),
) -> str:
    if session.preview is not None:
        return messages.dry_run(
            session.preview, branch=request.branch_name, target=request.target_branch, ident=ident
        )
    view = messages.session_view(
        session,
        platform=decision.platform,
        agent=request.agent,
        branch=request.branch_name,
        target=request.target_branch,
    )
    view["notes"] = list(notes)  # e.g. "Tembo answered 401; started on Agen instead"
    return messages.status_comment(view, ident)


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
    await status.post(messages.failed(decision.platform, reason, ident=status.ident))
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


async def build_request(
    ctx: Context, decision: policy.Dispatch, config: RepoConfig, ident: str, nonce: str
) -> SessionRequest:
    found = decision.trigger
    comments = await discussion(ctx.github, found, config)
    plan = prompt.build(
        issue=found.issue,
        repository=found.repository,
        comments=comments,
        command=found.command,
        requester=found.sender.login,
        config=config,
        dispatch_id=ident,
        nonce=nonce,
    )
    return SessionRequest(
        dispatch_id=ident,
        title=plan.title,
        prompt=plan.prompt,
        repository=found.repository,
        target_branch=plan.target,
        branch_name=plan.branch,
        agent=decision.agent,
    )


async def discussion(github: GitHub, found: policy.Trigger, config: RepoConfig) -> list[Comment]:
    """The issue's comments that go into the prompt, as `config.include_comments` says.

    For `collaborators`, an author counts when the collaborator permission API gives them
    triage or more; author_association is only a cheap first sieve (OWNER, MEMBER,
    COLLABORATOR are asked, the rest cannot hold such a role), since MEMBER and
    COLLABORATOR include people with read access only.
    """
    if config.include_comments == "none" or found.issue.comments <= 0:
        return []
    repo = found.repository.full_name
    comments = await github.list_comments(found.installation_id, repo, found.issue.number)
    roles: dict[str, str] = {}
    if config.include_comments == "collaborators":
        for login in prompt.authors_to_ask(comments):
            roles[login] = await github.permission(found.installation_id, repo, login)
    return prompt.discussion(
        comments,
        include=config.include_comments,
        at=found.at,
        trigger_comment_id=found.comment_id,
        roles=roles,
    )
