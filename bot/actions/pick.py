"""`/tembo pick PLATFORM`: the winner of a fan-out. Its row is marked in the table; the
other sessions of that fan-out are stopped where their platform can stop them, and the
table says which could not be (Jules, for one). The pick and each stop are ledger rows."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from bot import policy
from bot.actions import Change, Context, Outcome, dispatch_id, edit_views, react
from bot.actions.stop import stop_once
from bot.actions.usage import note
from bot.journal import Progress
from bot.logs import log
from bot.platforms import display_name
from bot.ports import Priority, SessionRecord

logger = logging.getLogger("bot.actions.pick")
CANNOT_STOP = "cannot be stopped from here: stop it on its platform"


async def pick(
    ctx: Context, progress: Progress, decision: policy.Pick, fields: dict[str, Any]
) -> Outcome:
    found, winner = decision.trigger, decision.winner
    if found.comment_id is not None and not progress.journal.reacted:
        await react(ctx, found, "eyes", Priority.REPLY)
        await progress.write(dataclasses.replace(progress.journal, reacted=True))
    why = f"not picked: @{found.sender.login} picked {display_name(winner.platform)}"
    changes: list[Change] = [(winner, dataclasses.replace(winner.view, picked=True), None)]
    for record in decision.others:
        if not record.session_id or record.status in policy.TERMINAL:
            continue  # never started, ended on its own, or stopped by an earlier attempt
        changes.append(await _stop(ctx, progress, found, record, why))
    await edit_views(ctx, changes, priority=Priority.REPLY)
    await note(
        ctx,
        found,
        "pick",
        "picked",
        key=f"{dispatch_id(progress.job)}:pick",
        platform=winner.platform,
        dispatch_id=winner.dispatch_id,
        session_id=winner.session_id,
        detail=f"picked by @{found.sender.login}",
    )
    log(logger, "session.picked", platform=winner.platform, session_id=winner.session_id, **fields)
    return Outcome("done", f"picked {winner.platform}")


async def _stop(
    ctx: Context, progress: Progress, found: policy.Trigger, record: SessionRecord, why: str
) -> Change:
    """Stop one of the others, once (journaled); what its row shows next."""
    if not await stop_once(ctx, progress, found, record, why):
        notes = record.view.notes
        notes += () if CANNOT_STOP in notes else (CANNOT_STOP,)
        return record, dataclasses.replace(record.view, notes=notes), None
    return record, dataclasses.replace(record.view, phase="stopped", reason=why), "stopped"
