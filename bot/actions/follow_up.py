"""A follow-up: the command's text sent to the issue's running session (after a fan-out,
to each of its running sessions whose platform takes messages), and a note of it on the
status comment. A fan-out's follow-up gets one reply saying where it went, and which
platforms could not take it."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from bot import messages, policy
from bot.actions import Context, Outcome, dispatch_id, edit_views, react
from bot.actions.usage import note_session
from bot.journal import Progress
from bot.logs import log
from bot.ports import PlatformError, Priority, SessionRecord
from bot.sanitize import clean

logger = logging.getLogger("bot.actions.follow_up")


async def follow_up(
    ctx: Context, progress: Progress, decision: policy.FollowUp, fields: dict[str, Any]
) -> Outcome:
    found = decision.trigger
    assert found.command is not None
    if not progress.journal.reacted:
        await react(ctx, found, "eyes", Priority.REPLY)
        await progress.write(dataclasses.replace(progress.journal, reacted=True))
    text = clean(found.command.text)
    refused: list[tuple[SessionRecord, str]] = []
    for record in decision.sessions:
        reason = await _send(ctx, progress, record, text)
        if reason is not None:
            refused.append((record, reason))
    sent = [r for r in decision.sessions if r.dispatch_id in progress.journal.messaged]
    for record in sent:
        await _note(ctx, decision, progress, record, "sent")
    for record, reason in refused:
        await _note(ctx, decision, progress, record, "refused", reason)
    for record in decision.unable:
        await _note(ctx, decision, progress, record, "cannot send", "takes no messages")
    await _show_sent(ctx, found, sent)
    if (decision.fanout or refused) and not progress.journal.replied:
        body = (
            messages.follow_up_fanout(found.sender.login, sent, refused, decision.unable)
            if decision.fanout
            else messages.follow_up_failed(*refused[0])
        )
        await ctx.github.create_comment(
            found.installation_id,
            found.repository.full_name,
            found.issue.number,
            body,
            priority=Priority.REPLY,
        )
        await progress.write(dataclasses.replace(progress.journal, replied=True))
    for record in sent:
        log(logger, "session.follow_up", session_id=record.session_id, **fields)
    if not sent:
        return Outcome("failed", refused[0][1] if refused else "no session took it")
    return Outcome("done", f"follow-up sent to {len(sent)} of {len(decision.sessions)}")


async def _send(ctx: Context, progress: Progress, record: SessionRecord, text: str) -> str | None:
    """Send `text` to one session unless this job already did (journaled per session, so
    a retry after another session's passing failure does not send it twice). The reason
    when the platform refuses for good; a passing failure is raised (the job retries)."""
    if record.dispatch_id in progress.journal.messaged:
        return None
    platform = ctx.platforms(record.platform)
    try:
        await platform.send_message(record.session_id, text, dispatch_id(progress.job))
    except PlatformError as exc:
        if exc.transient:
            raise
        return exc.message
    messaged = (*progress.journal.messaged, record.dispatch_id)
    await progress.write(dataclasses.replace(progress.journal, messaged=messaged))
    return None


async def _show_sent(ctx: Context, found: policy.Trigger, sent: list[SessionRecord]) -> None:
    """A note on each reached session's status (a fan-out's rows: one edit of its table)."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ctx.clock()))
    note = f"📨 follow-up from @{found.sender.login} sent to the session ({stamp})"
    changes = [
        (r, dataclasses.replace(r.view, notes=(*r.view.notes, note)), None)
        for r in sent
        if note not in r.view.notes
    ]
    await edit_views(ctx, changes, priority=Priority.REPLY)


async def _note(
    ctx: Context,
    decision: policy.FollowUp,
    progress: Progress,
    record: SessionRecord,
    outcome: str,
    detail: str = "",
) -> None:
    """The ledger row of the follow-up to one session, written once. A lone session keeps
    the key it always had, so a job from before fan-outs writes no second row."""
    key = f"{dispatch_id(progress.job)}:follow_up"
    if decision.fanout:
        key += f":{record.dispatch_id}"
    await note_session(ctx, decision.trigger, "follow_up", outcome, record, key=key, detail=detail)
