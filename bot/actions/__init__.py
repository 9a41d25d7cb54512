"""What the app does once a decision is taken: one module per behaviour.

    dispatch    start a session, post its link, start following it
    fanout      one trigger, a session on each of several platforms, one table comment
                (its rows and records: fanout_rows)
    pick        the winner of a fan-out; the others stopped where they can be
    follow      one poll of a running session; edit its status comment on a change
    follow_up   send a command's text to the issue's running session
    stop        stop the issue's running sessions
    reply       answer on the issue (help, status, refusals, config problems)
    installation  record installations and their repositories
    pinning     the decision pinned in the journal, so every attempt acts on the same one

Each takes the `Context` (the ports) and the job's `Progress` (its journal) and returns an
`Outcome`. Shared steps every behaviour uses live here: reacting, editing a session's
status comment (a fan-out's table rendered from the store), finding a session record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bot import dispatch_status
from bot.events import CommentEvent, IssueEvent
from bot.metrics import Metrics
from bot.policy import Trigger, fanout_group
from bot.ports import (
    GitHub,
    GitHubError,
    Job,
    PlatformFactory,
    Priority,
    SessionRecord,
    SessionView,
    Store,
)

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
    view: SessionView,
    status: str | None = None,
    *,
    priority: Priority = Priority.REPLY,
    wait: bool = True,
) -> None:
    """Write `view` to the session's status comment and the store, if it changed. Without
    `wait`, raises `BudgetShort` (and writes nothing) when GitHub's budget has no slot."""
    await edit_views(ctx, [(record, view, status)], priority=priority, wait=wait)


Change = tuple[SessionRecord, SessionView, str | None]  # record, new view, new status


async def edit_views(
    ctx: Context,
    changes: Sequence[Change],
    *,
    priority: Priority = Priority.REPLY,
    wait: bool = True,
) -> None:
    """`edit_view` for several sessions of one status comment (a fan-out's rows): one edit
    of the comment, then each record."""
    changed = [(r, view, status) for r, view, status in changes if view != r.view]
    if not changed:
        return
    record = changed[0][0]
    if record.comment_id is not None and record.installation_id is not None:
        newer = {r.platform: view for r, view, _ in changed}
        group = fanout_group(record)
        if group is None:
            body = dispatch_status.status_comment(newer[record.platform], record.dispatch_id)
        else:
            rows = await group_views(ctx, record.repo, record.issue, group, newer)
            body = dispatch_status.fanout_status(rows, group)
        await ctx.github.update_comment(
            record.installation_id,
            record.repo,
            record.comment_id,
            body,
            priority=priority,
            wait=wait,
        )
    for r, view, status in changed:
        await ctx.store.update_session(r.dispatch_id, status or r.status, view)


async def group_views(
    ctx: Context,
    repo: str,
    issue: int,
    group: str,
    newer: Mapping[str, SessionView],
    platforms: Sequence[str] = (),
) -> list[SessionView]:
    """Every row of fan-out `group`'s table, in its platforms' order, from the session
    records in the store: whoever edits the comment renders all rows from stored state,
    never from the comment's old text, so edits by different jobs lose no row. `newer`
    (by platform) is what is being written now; a platform with neither shows as
    starting."""
    records = {
        r.platform: r
        for r in await ctx.store.sessions_for_issue(repo, issue)
        if fanout_group(r) == group
    }
    order = list(platforms)
    for view in (*newer.values(), *(r.view for r in records.values())):
        order = order or list(view.fanout)
    rows = []
    for name in order:
        record = records.get(name)
        stored = record.view if record is not None else SessionView(platform=name, phase="starting")
        rows.append(newer.get(name, stored))
    return rows


async def find_record(ctx: Context, repo: str, issue: int, ident: str) -> SessionRecord | None:
    for record in await ctx.store.sessions_for_issue(repo, issue):
        if record.dispatch_id == ident:
            return record
    return None
