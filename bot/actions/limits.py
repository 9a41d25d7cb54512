"""The fleet's rules as a dispatch meets them: a budget reserved before the create (or
one comment saying it is used up), and the move to the next platform in `fallback:` when
the chosen one refuses for good."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from bot import dispatch_status, fleet, policy
from bot.actions import Context, Outcome
from bot.actions.status_comment import StatusComment
from bot.actions.usage import note
from bot.journal import KEEP_STATUSES, Progress
from bot.logs import log
from bot.platforms import display_name
from bot.ports import PlatformError, SessionPlatform, SessionRequest
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
    """Move the pinned dispatch to the next platform after a refusal for good: the same
    attempt goes on there."""
    text = (
        f"{display_name(decision.platform)} answered {error.status}; started on "
        f"{display_name(after)} instead"
    )
    await _move(ctx, progress, decision, after, ident, text, f"{error.status}: {error.message}")


async def spent(
    ctx: Context,
    progress: Progress,
    decision: policy.Dispatch,
    config: RepoConfig,
    platform: SessionPlatform,
    request: SessionRequest,
    error: PlatformError,
    ident: str,
) -> Outcome | None:
    """A create failed with a passing fault (5xx, 429, no answer): count it in the
    journal and, on the job's last attempt, move to the next `fallback:` platform when
    every failure was the platform being down. None: the worker goes on as usual (tries
    again, or gives up after the last attempt)."""
    journal = progress.journal
    failures = journal.create_failures + 1
    statuses = (*journal.create_statuses, error.status)[-KEEP_STATUSES:]
    await progress.write(
        dataclasses.replace(journal, create_failures=failures, create_statuses=statuses)
    )
    # The worker tries a job again while its attempts are below MAX_ATTEMPTS (bot.worker).
    if progress.job.attempts < ctx.max_attempts:
        return None
    after = fleet.fallback_when_spent(decision.platform, config.fallback, journal.tried, statuses)
    if after is None:
        return None
    if progress.journal.creates_unknown:
        # A create's answer was lost: only the platform's own lookup can say nothing
        # started there; without that proof a second session elsewhere could run the work
        # twice.
        if not platform.can_find:
            return None
        sent = dataclasses.replace(request, first_sent_at=progress.journal.first_sent_at or 0.0)
        try:
            existing = await platform.find_session(sent)
        except PlatformError:
            return None
        if existing is not None:
            # The lost answer did start it: a fresh run of the job announces it.
            await progress.write(dataclasses.replace(progress.journal, session=existing))
            return Outcome("again", "a lost answer had started the session", ctx.clock())
    name = display_name(decision.platform)
    text = f"{spent_words(name, failures, statuses)}; started on {display_name(after)} instead"
    await _move(ctx, progress, decision, after, ident, text, error.message)
    # A fresh run of the job (the store starts its attempts again), on whichever replica
    # claims it: the next platform gets every attempt the worker allows.
    return Outcome("again", text, ctx.clock())


async def _move(
    ctx: Context,
    progress: Progress,
    decision: policy.Dispatch,
    after: str,
    ident: str,
    text: str,
    detail: str,
) -> None:
    """Pin the dispatch to `after` with a fresh create record (no create there yet), note
    what the comment will say, and write the ledger's fallback row."""
    journal = progress.journal
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
            create_failures=0,
            create_statuses=(),
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
        detail=detail,
    )
    log(logger, "dispatch.fallback", logging.WARNING, platform=decision.platform, to=after)


_TIMES = {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times"}
_TIMES |= {6: "six times", 7: "seven times", 8: "eight times", 9: "nine times", 10: "ten times"}


def spent_words(name: str, failures: int, statuses: tuple[int | None, ...]) -> str:
    """ "Tembo answered 503 five times", or the last answers when they differed (or when
    only the last ones are kept)."""
    times = _TIMES.get(failures, f"{failures} times")
    if failures <= len(statuses) and len(set(statuses)) == 1:
        status = statuses[0]
        return (
            f"{name} gave no answer {times}"
            if status is None
            else f"{name} answered {status} {times}"
        )
    shown = ", ".join("no answer" if s is None else str(s) for s in statuses[-5:])
    return f"{name} failed {times} (last answers: {shown})"


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
    await status.post(dispatch_status.limited(over, command=config.command, ident=status.ident))
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
