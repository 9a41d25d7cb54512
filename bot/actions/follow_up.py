"""A follow-up: the command's text sent to the issue's running session, and a note of it
on the session's status comment."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from bot import messages, policy
from bot.actions import Context, Outcome, dispatch_id, edit_view, react
from bot.actions.usage import note_session
from bot.journal import Progress
from bot.logs import log
from bot.ports import PlatformError, Priority
from bot.sanitize import clean

logger = logging.getLogger("bot.actions.follow_up")


async def follow_up(
    ctx: Context, progress: Progress, decision: policy.FollowUp, fields: dict[str, Any]
) -> Outcome:
    found, record = decision.trigger, decision.session
    assert found.command is not None
    if not progress.journal.reacted:
        await react(ctx, found, "eyes", Priority.REPLY)
        await progress.write(dataclasses.replace(progress.journal, reacted=True))
    if not progress.journal.message_sent:
        platform = ctx.platforms(record.platform)
        text = clean(found.command.text)
        try:
            await platform.send_message(record.session_id, text, dispatch_id(progress.job))
        except PlatformError as exc:
            if exc.transient:
                raise
            await ctx.github.create_comment(
                found.installation_id,
                found.repository.full_name,
                found.issue.number,
                messages.follow_up_failed(record, exc.message),
                priority=Priority.REPLY,
            )
            await _note(ctx, decision, progress, "refused", exc.message)
            return Outcome("failed", exc.message)
        await progress.write(dataclasses.replace(progress.journal, message_sent=True))
    await _note(ctx, decision, progress, "sent")
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ctx.clock()))
    note = f"📨 follow-up from @{found.sender.login} sent to the session ({stamp})"
    notes = list(record.view.get("notes", []))
    if note not in notes:
        view = {**record.view, "notes": [*notes, note]}
        await edit_view(ctx, record, view, priority=Priority.REPLY)
    log(logger, "session.follow_up", session_id=record.session_id, **fields)
    return Outcome("done", "follow-up sent")


async def _note(
    ctx: Context, decision: policy.FollowUp, progress: Progress, outcome: str, detail: str = ""
) -> None:
    key = f"{dispatch_id(progress.job)}:follow_up"
    await note_session(
        ctx, decision.trigger, "follow_up", outcome, decision.session, key=key, detail=detail
    )
