"""Stopping the issue's running sessions, by `/tembo stop` or by closing the issue as not
planned; sessions whose platform cannot stop them are listed in one comment."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from bot import messages, policy
from bot.actions import Context, Outcome, dispatch_id, edit_view, react
from bot.actions.usage import note_session
from bot.journal import Progress
from bot.logs import log
from bot.ports import MissingCredentials, PlatformError, Priority, SessionRecord

logger = logging.getLogger("bot.actions.stop")


def can(ctx: Context, platform: str, capability: str) -> bool:
    """Whether the platform is configured here and offers `capability` (a flag)."""
    try:
        return bool(getattr(ctx.platforms(platform), capability))
    except MissingCredentials:
        return False


async def stop(
    ctx: Context, progress: Progress, decision: policy.Stop, fields: dict[str, Any]
) -> Outcome:
    found = decision.trigger
    if found.comment_id is not None and not progress.journal.reacted:
        await react(ctx, found, "eyes", Priority.REPLY)
        await progress.write(dataclasses.replace(progress.journal, reacted=True))
    why = (
        f"stopped by @{found.sender.login}"
        if found.kind == "command"
        else f"the issue was closed as not planned by @{found.sender.login}"
    )
    unstoppable: list[SessionRecord] = []
    for record in decision.sessions:
        if record.status == "stopped":
            continue  # an earlier attempt of this job stopped it and said so
        if not await stop_once(ctx, progress, found, record, why):
            unstoppable.append(record)
            continue
        view = dataclasses.replace(record.view, phase="stopped", reason=why)
        await edit_view(ctx, record, view, "stopped", priority=Priority.REPLY)
        log(logger, "session.stopped", session_id=record.session_id, **fields)
    if unstoppable and not progress.journal.told_unstoppable:
        await ctx.github.create_comment(
            found.installation_id,
            found.repository.full_name,
            found.issue.number,
            messages.cannot_stop(unstoppable),
            priority=Priority.REPLY,
        )
        await progress.write(dataclasses.replace(progress.journal, told_unstoppable=True))
    return Outcome("done", why)


async def stop_once(
    ctx: Context, progress: Progress, found: policy.Trigger, record: SessionRecord, why: str
) -> bool:
    """Stop one session unless this job already did (journaled), hand back its budget
    reservation and write its ledger row; False (and a "cannot stop" row) when its
    platform cannot stop it."""
    if record.dispatch_id not in progress.journal.stopped:
        if not await stop_one(ctx, record):
            await noted(ctx, progress, found, record, "cannot stop", why)
            return False
        stopped = (*progress.journal.stopped, record.dispatch_id)
        await progress.write(dataclasses.replace(progress.journal, stopped=stopped))
    await ctx.store.end_reservation(record.dispatch_id, "ended")
    await noted(ctx, progress, found, record, "stopped", why)
    return True


async def noted(
    ctx: Context,
    progress: Progress,
    found: policy.Trigger,
    record: SessionRecord,
    outcome: str,
    why: str,
) -> None:
    """The ledger row of one session this job stopped (or could not stop), written once."""
    key = f"{dispatch_id(progress.job)}:stop:{record.dispatch_id}"
    await note_session(ctx, found, "stop", outcome, record, key=key, detail=why)


async def stop_one(ctx: Context, record: SessionRecord) -> bool:
    """Stop one session; False when its platform cannot (or refuses for good)."""
    if not can(ctx, record.platform, "can_stop"):
        return False
    try:
        await ctx.platforms(record.platform).stop_session(record.session_id)
    except PlatformError as exc:
        if exc.transient:
            raise
        return False
    return True
