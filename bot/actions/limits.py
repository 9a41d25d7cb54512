"""The fleet's rules as a dispatch meets them: a budget reserved before the create (or
one comment saying it is used up), and the move to the next platform in `fallback:` when
the chosen one refuses for good."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from bot import fleet, messages, policy
from bot.actions import Context, Outcome
from bot.actions.status_comment import StatusComment
from bot.actions.usage import note
from bot.journal import Progress
from bot.logs import log
from bot.platforms import display_name
from bot.ports import PlatformError
from bot.repo_config import RepoConfig

logger = logging.getLogger("bot.actions.limits")


async def fall_back(
    ctx: Context,
    progress: Progress,
    decision: policy.Dispatch,
    error: PlatformError,
    after: str,
    ident: str,
) -> None:
    """Move the pinned dispatch to the next platform: the job's retries create there, with
    a fresh create record (nothing reached the refusing platform)."""
    journal = progress.journal
    text = (
        f"{display_name(decision.platform)} answered {error.status}; started on "
        f"{display_name(after)} instead"
    )
    pin = journal.pin
    await progress.write(
        dataclasses.replace(
            journal,
            pin=dataclasses.replace(pin, platform=after) if pin is not None else None,
            tried=(*journal.tried, decision.platform),
            fell_back=(*journal.fell_back, text),
            creates_unknown=0,
            first_sent_at=None,
            platform_steps={},
        )
    )
    await note(
        ctx,
        decision.trigger,
        "fallback",
        f"fell back to {after}",
        key=f"{ident}:fallback:{decision.platform}",
        platform=decision.platform,
        dispatch_id=ident,
        detail=f"{error.status}: {error.message}",
    )
    log(logger, "dispatch.fallback", logging.WARNING, platform=decision.platform, to=after)


async def reserve(
    ctx: Context, decision: policy.Dispatch, config: RepoConfig, ident: str
) -> fleet.Answer:
    """Count and reserve this dispatch's budget in the store, before the create; the same
    dispatch id reserving again (a retried job) is counted once."""
    found = decision.trigger
    repo = found.repository.full_name
    reservation = fleet.Reservation(
        dispatch_id=ident,
        org=fleet.org_of(repo),
        repo=repo,
        sender=found.sender.login,
        force=decision.force,
    )
    return await ctx.store.reserve(reservation, config.limits, ctx.clock())


async def limited(
    ctx: Context,
    progress: Progress,
    status: StatusComment,
    decision: policy.Dispatch,
    config: RepoConfig,
    answer: fleet.Answer,
    fields: dict[str, Any],
) -> Outcome:
    """A budget is used up: one comment with the limit, the count and when it frees up."""
    over = answer.over
    assert over is not None
    await status.post(messages.limited(over, command=config.command, ident=status.ident))
    detail = f"{over.name}: {over.count} of {over.limit}"
    await note(
        ctx,
        decision.trigger,
        "limited",
        "refused",
        key=f"{status.ident}:limited",
        platform=decision.platform,
        dispatch_id=status.ident,
        detail=detail,
    )
    await progress.write(dataclasses.replace(progress.journal, reported=True))
    log(logger, "dispatch.limited", logging.WARNING, limit=over.name, count=over.count, **fields)
    return Outcome("done", f"over budget: {detail}")
