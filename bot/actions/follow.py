"""Following a session: one poll, an edit of its status comment when a reader would see
news, then the next poll at a longer interval, until the session ends or 7 days pass.

Edits are the last in line for GitHub's content budget and never wait for it: a poll
whose edit finds no slot writes nothing and comes back when a slot may be free (or at its
usual interval, if later), then polls again and writes what is newest by then. So the
edits of one issue coalesce: however many changes happened while the budget was short,
one edit (the newest state) is written, and the issue's lock is never held while
waiting (a stop or a new dispatch on the issue is not held up by an edit)."""

from __future__ import annotations

import contextlib
import dataclasses

from bot import policy
from bot.actions import Context, Outcome, edit_view, find_record
from bot.journal import Progress
from bot.ports import BudgetShort, GitHubError, Job, MissingCredentials, PlatformError, Priority

# Polls 30 s after the session starts, then at doubling intervals up to 15 minutes.
FOLLOW_FIRST = 30.0
FOLLOW_CAP = 15 * 60.0
FOLLOW_FOR = 7 * 24 * 3600.0


async def follow(ctx: Context, job: Job, progress: Progress) -> Outcome:
    data = job.payload
    record = await find_record(ctx, data["repo"], data["issue"], data["dispatch_id"])
    if record is None or record.status in policy.TERMINAL:
        return Outcome("done", "nothing to follow")
    try:
        platform = ctx.platforms(record.platform)
    except MissingCredentials as exc:
        return Outcome("done", str(exc))
    try:
        state = await platform.get_session(record.session_id)
    except PlatformError as exc:
        if exc.transient:
            raise
        return Outcome("failed", f"stopped following: {exc.message}")
    phase = state.phase
    if phase == "queued" and record.view.phase == "started":
        phase = "started"  # nothing a reader would call news: save the edit
    view = dataclasses.replace(
        record.view,
        phase=phase,
        pull_requests=tuple(sorted(set(record.view.pull_requests) | set(state.pull_requests))),
        reason=state.reason if state.phase in ("failed", "stopped") else "",
    )
    opened_pr = view.pull_requests and not record.view.pull_requests
    if opened_pr and policy.fanout_group(record):
        view = dataclasses.replace(view, pr_at=ctx.clock())  # a fan-out's time to PR
    polls = progress.journal.polls
    try:
        await edit_view(ctx, record, view, state.phase, priority=Priority.FOLLOW, wait=False)
    except BudgetShort as short:
        # Not written: poll again when a slot may be free and write the newest state then.
        interval = min(FOLLOW_FIRST * 2**polls, FOLLOW_CAP)
        run_at = max(short.retry_at, ctx.clock() + min(interval, FOLLOW_FIRST))
        return Outcome("again", f"session {state.phase}; edit waits for GitHub", run_at=run_at)
    if opened_pr:
        await ctx.store.usage_pull_request(record.dispatch_id, view.pull_requests[0])
    if state.terminal:
        await ctx.store.end_reservation(record.dispatch_id, "ended")
    if opened_pr and record.installation_id is not None:
        with contextlib.suppress(GitHubError, BudgetShort):  # best effort, like the edit
            await ctx.github.create_reaction(
                record.installation_id,
                record.repo,
                content="rocket",
                issue=record.issue,
                priority=Priority.FOLLOW,
                wait=False,
            )
    now = ctx.clock()
    if state.terminal:
        return Outcome("done", f"session {state.phase}")
    if now - float(data["started_at"]) > FOLLOW_FOR:
        return Outcome("done", "followed for 7 days; stopped following")
    polls += 1
    await progress.write(dataclasses.replace(progress.journal, polls=polls))
    interval = min(FOLLOW_FIRST * 2**polls, FOLLOW_CAP)
    return Outcome("again", f"session {state.phase}", run_at=now + interval)
