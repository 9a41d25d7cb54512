"""Fan-out: one trigger starts a session on each of several platforms (`platform: [a, b]`
or `/tembo platform=a,b`), announced in one status comment holding a table.

Each platform is a branch of the job: its own dispatch id (`<trigger's id>-<platform>`),
its own branch name, its own budget reservation, and its own journal (`journal.fanout`),
so its create happens exactly once whatever happens to the others. A platform that says
no for good gets a row saying so and never stops the others; one that fails in passing
makes the job retry, and the retry leaves the platforms already journaled alone.

The table is rendered from stored state (`bot.actions.group_views`): the session
records, one per platform (a platform that could not start is recorded as such), so the
follow of each session edits its own row and renders the others as they are stored.
Fallback (`fallback:`) does not apply here: the other platforms are the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any

from bot import policy, prompt
from bot.actions import Context, Outcome, dispatch_id, limits, react_failure
from bot.actions import create as create_step
from bot.actions.create import create, settle
from bot.actions.dispatch import eyes, view_of
from bot.actions.fanout_rows import Row, as_row, post_table, record_row, refused_row
from bot.actions.request import build_request, discussion
from bot.actions.usage import gave_up as gave_up_usage
from bot.actions.usage import note
from bot.events import Comment, CommentEvent, IssueEvent
from bot.journal import Branch, Progress
from bot.ledger import Kind
from bot.logs import log
from bot.ports import (
    GitHubError,
    Job,
    MissingCredentials,
    PlatformError,
    Priority,
    RemoteError,
    SessionView,
)
from bot.repo_config import RepoConfig

logger = logging.getLogger("bot.actions.fanout")


async def fan_out(
    ctx: Context,
    progress: Progress,
    decision: policy.Dispatch,
    config: RepoConfig,
    fields: dict[str, Any],
) -> Outcome:
    found = decision.trigger
    if progress.journal.reported:
        return Outcome("done", "fan-out said so on the issue earlier")
    comments = await discussion(ctx.github, found, config)  # once, for every platform
    reacting = asyncio.create_task(eyes(ctx, progress, found))
    try:
        rows = await _announced_slow(ctx, progress, decision, config, comments)
    except BaseException:
        await settle(reacting, cancel=True)
        raise
    await settle(reacting, cancel=False)

    views, comment_id = await post_table(ctx, progress, decision, rows, Priority.LINK)
    for row in rows:
        await record_row(ctx, decision, row, comment_id)
    errors = [row.error for row in rows if row.error is not None]
    if errors:
        raise errors[0]  # the job's retry starts the platforms still missing
    await progress.write(dataclasses.replace(progress.journal, reported=True))
    started = [v for v in views if v.url]
    if not started:
        await react_failure(ctx, found)
    log(logger, "dispatch.fanout", platforms=list(decision.fanout), started=len(started), **fields)
    return Outcome("done" if started else "failed", f"{len(started)} of {len(views)} started")


async def _announced_slow(
    ctx: Context,
    progress: Progress,
    decision: policy.Dispatch,
    config: RepoConfig,
    comments: list[Comment],
) -> list[Row]:
    """Start every platform; if that takes longer than STARTING_AFTER, post the table
    meanwhile with every row starting (best effort: the links follow either way)."""
    base = dispatch_id(progress.job)
    starting = asyncio.create_task(_start_all(ctx, progress, decision, config, comments, base))
    try:
        done, _ = await asyncio.wait({starting}, timeout=create_step.STARTING_AFTER)
        if not done and progress.journal.status_comment_id is None:
            with contextlib.suppress(GitHubError):
                await post_table(ctx, progress, decision, [], Priority.LINK)
        return await starting
    except BaseException:
        await settle(starting, cancel=True)
        raise


async def _start_all(
    ctx: Context,
    progress: Progress,
    decision: policy.Dispatch,
    config: RepoConfig,
    comments: list[Comment],
    base: str,
) -> list[Row]:
    """Every platform not yet announced, side by side. A passing failure of one is kept in
    its row (the others still get theirs); anything else (a lost lease) ends the job."""
    branches = [Branch(progress, name) for name in decision.fanout]
    pending = [branch for branch in branches if not branch.journal.reported]
    results = await asyncio.gather(
        *(_start(ctx, branch, decision, config, comments, base) for branch in pending),
        return_exceptions=True,
    )
    rows = []
    for branch, result in zip(pending, results, strict=True):
        if isinstance(result, RemoteError) and result.transient:
            view = SessionView(platform=branch.platform, phase="starting", fanout=decision.fanout)
            rows.append(Row(branch, f"{base}-{branch.platform}", view, error=result))
        elif isinstance(result, BaseException):
            raise result
        else:
            rows.append(result)
    return rows


async def _start(
    ctx: Context,
    branch: Branch,
    decision: policy.Dispatch,
    config: RepoConfig,
    comments: list[Comment],
    base: str,
) -> Row:
    """One platform's session, created exactly once (the single dispatch's `create`, on
    this branch's journal), or why it cannot start."""
    name = branch.platform
    ident = f"{base}-{name}"
    one = dataclasses.replace(decision, platform=name, fanout=())
    if branch.journal.refused is not None:
        return refused_row(branch, ident, decision.fanout, branch.journal.refused)
    try:
        platform = ctx.platforms(name)
    except MissingCredentials as exc:
        return await _refuse(ctx, branch, ident, decision, str(exc), "refusal", "unconfigured")
    if branch.journal.session is None:
        answer = await limits.reserve(ctx, one, config, ident)
        if not answer.granted and answer.over is not None:
            over = answer.over
            text = f"limits.{over.name} is used up ({over.count} of {over.limit})"
            return await _refuse(ctx, branch, ident, decision, text, "limited", "refused")
    nonce = branch.journal.prompt_nonce
    if nonce is None:
        nonce = prompt.new_nonce()
        await branch.write(dataclasses.replace(branch.journal, prompt_nonce=nonce))
    request = build_request(one, config, comments, ident, nonce, branch_suffix=name)
    session = branch.journal.session
    if session is None:
        try:
            session = await create(ctx, branch, platform, request)
        except PlatformError as exc:
            if exc.transient:
                raise
            if not branch.journal.creates_unknown:
                await ctx.store.end_reservation(ident, "released")  # nothing started
            reason = f"{exc.status}: {exc.message}" if exc.status else exc.message
            return await _refuse(ctx, branch, ident, decision, reason, "refusal", "refused")
        await branch.write(dataclasses.replace(branch.journal, session=session))
    view = as_row(view_of(session, name, request), decision.fanout, base, ctx.clock())
    return Row(branch, ident, view, session)


async def _refuse(
    ctx: Context,
    branch: Branch,
    ident: str,
    decision: policy.Dispatch,
    reason: str,
    kind: Kind,
    outcome: str,
) -> Row:
    """This platform will not start: journal why (so no retry asks it again) and write its
    ledger row; the table shows it, the other platforms go on."""
    await branch.write(dataclasses.replace(branch.journal, refused=reason))
    await note(
        ctx,
        decision.trigger,
        kind,
        outcome,
        key=f"{ident}:{kind}",
        platform=branch.platform,
        dispatch_id=ident,
        detail=reason,
    )
    log(logger, "dispatch.fanout_refused", logging.WARNING, platform=branch.platform, error=reason)
    return refused_row(branch, ident, decision.fanout, reason)


async def gave_up(
    ctx: Context, job: Job, event: IssueEvent | CommentEvent, text: str, error: BaseException
) -> None:
    """The job used its attempts: each platform still missing gets a row saying so in the
    same table (never a comment of its own) and a refusal in the ledger; its budget goes
    back unless a create may have reached it. A session made but never announced is."""
    progress = Progress(job, ctx.store)
    pin = progress.journal.pin
    assert pin is not None
    decision = policy.Dispatch(_trigger(event), pin.platform, pin.agent, pin.force, pin.platforms)
    base = dispatch_id(job)
    rows: list[Row] = []
    for branch in (Branch(progress, name) for name in pin.platforms):
        ident, session = f"{base}-{branch.platform}", branch.journal.session
        if branch.journal.reported:
            continue
        if session is not None:
            view = SessionView(branch.platform, session.url, session.id, phase="started")
            rows.append(Row(branch, ident, as_row(view, pin.platforms, base, 0.0), session))
            continue
        unknown = branch.journal.creates_unknown
        await gave_up_usage(
            ctx, job, event, branch.platform, text, error, ident=ident, creates_unknown=unknown
        )
        await branch.write(dataclasses.replace(branch.journal, refused=text))
        rows.append(refused_row(branch, ident, pin.platforms, text))
    _, comment_id = await post_table(ctx, progress, decision, rows, Priority.REPLY)
    for row in rows:
        await record_row(ctx, decision, row, comment_id)
    await progress.write(dataclasses.replace(progress.journal, reported=True))


def _trigger(event: IssueEvent | CommentEvent) -> policy.Trigger:
    """Enough of the trigger for the ledger rows of a job that gave up."""
    return policy.Trigger(
        kind="label" if isinstance(event, IssueEvent) else "command",
        installation_id=event.installation_id,
        repository=event.repository,
        issue=event.issue,
        sender=event.sender,
    )
