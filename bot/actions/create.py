"""Creating a session exactly once, the one step of a dispatch that costs money.

Every create is counted in the job's journal before it is sent and counted back only on a
definite answer, so a create whose answer was lost (or whose process was killed) is
looked up on the platform before anything is sent again. A single dispatch and each
platform of a fan-out create through `create`, each on its own journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

from bot import dispatch_status
from bot.actions import Context
from bot.actions.status_comment import StatusComment
from bot.journal import JournalSteps, Progress
from bot.ports import GitHubError, PlatformError, Priority, Session, SessionPlatform, SessionRequest

# Long enough that most creates answer first (no extra comment), short enough that a
# person watching the issue sees the app is on it.
STARTING_AFTER = 3.0


async def settle(task: asyncio.Task[Any], *, cancel: bool) -> None:
    """Wait for a side task; when the main step failed, cancel it and drop its error (the
    journal says whether it happened, so a retry does it again if needed)."""
    if cancel:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    else:
        await task


async def create_announced(
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
            await status.post(
                dispatch_status.starting(platform.name, who, status.ident), Priority.LINK
            )
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
