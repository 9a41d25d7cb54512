"""What the app does once a decision is taken: one module per behaviour.

    dispatch    start a session, post its link, start following it
    follow      one poll of a running session; edit its status comment on a change
    follow_up   send a command's text to the issue's running session
    stop        stop the issue's running sessions
    reply       answer on the issue (help, status, refusals, config problems)
    installation  record installations and their repositories

Each takes the `Context` (the ports) and the job's `Progress` (its journal) and returns an
`Outcome`. Shared steps every behaviour uses live here: reacting, editing a session's
status comment, finding a session record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from bot import messages
from bot.events import CommentEvent, IssueEvent
from bot.metrics import Metrics
from bot.policy import Trigger
from bot.ports import GitHub, GitHubError, Job, PlatformFactory, Priority, SessionRecord, Store

OutcomeState = Literal["done", "failed", "again"]


@dataclass(frozen=True)
class Outcome:
    state: OutcomeState  # again: a recurring job, due again at run_at
    detail: str = ""
    run_at: float | None = None


@dataclass(frozen=True)
class Context:
    """The ports every action may use; built once per process."""

    github: GitHub
    store: Store
    platforms: PlatformFactory
    clock: Callable[[], float]
    metrics: Metrics | None = None
    # The worker's MAX_ATTEMPTS: on a job's last attempt a dispatch whose platform is down
    # moves to the next `fallback:` platform instead of being given up.
    max_attempts: int = 8


def dispatch_id(job: Job) -> str:
    return f"gh-{job.delivery_id}"


async def react(
    ctx: Context,
    target: Trigger | IssueEvent | CommentEvent,
    content: str,
    priority: Priority = Priority.REPLY,
) -> None:
    """React on the comment that triggered, or on the issue when a label did."""
    if isinstance(target, Trigger):
        comment_id = target.comment_id
    else:
        comment_id = target.comment.id if isinstance(target, CommentEvent) else None
    await ctx.github.create_reaction(
        target.installation_id,
        target.repository.full_name,
        content=content,
        issue=None if comment_id else target.issue.number,
        comment_id=comment_id,
        priority=priority,
    )


async def react_failure(ctx: Context, found: Trigger) -> None:
    # Best effort: the status comment already says what failed.
    with contextlib.suppress(GitHubError):
        await react(ctx, found, "confused")


async def edit_view(
    ctx: Context,
    record: SessionRecord,
    view: dict[str, Any],
    status: str | None = None,
    *,
    priority: Priority = Priority.REPLY,
    wait: bool = True,
) -> None:
    """Write `view` to the session's status comment and the store, if it changed. Without
    `wait`, raises `BudgetShort` (and writes nothing) when GitHub's budget has no slot."""
    if view == record.view:
        return
    if record.comment_id is not None and record.installation_id is not None:
        await ctx.github.update_comment(
            record.installation_id,
            record.repo,
            record.comment_id,
            messages.status_comment(view, record.dispatch_id),
            priority=priority,
            wait=wait,
        )
    await ctx.store.update_session(record.dispatch_id, status or record.status, view)


async def find_record(ctx: Context, repo: str, issue: int, ident: str) -> SessionRecord | None:
    for record in await ctx.store.sessions_for_issue(repo, issue):
        if record.dispatch_id == ident:
            return record
    return None
