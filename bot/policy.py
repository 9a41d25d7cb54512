"""Deciding what a delivery asks for. Pure: no I/O, plain values in and out.

Two steps, so the worker fetches facts (permission, earlier sessions) only for
deliveries that are triggers at all:

    trigger(event, config) -> Trigger | Ignore
    decide(trigger, config, facts) -> Ignore | Reply | Dispatch | FollowUp | Stop

A malformed command is still a Trigger (carrying its problem): nothing is said to a
sender before `decide` has seen their permission, so a sender below `min_permission`
gets the one "not allowed" notice and never an echo of what they typed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from bot import messages, platforms, replies
from bot.commands import Command, CommandError, Problem, parse
from bot.events import CommentEvent, Event, Issue, IssueEvent, Repository, User
from bot.ledger import LedgerRow
from bot.ports import SessionRecord
from bot.replies import Reply
from bot.repo_config import PERMISSIONS, ConfigError, RepoConfig

__all__ = ["Reply"]  # part of the decisions handed to the worker

LIVE_SESSION_SECONDS = 24 * 3600
TriggerKind = Literal["label", "command", "close"]
# Below this role a sender's refusals are said once per issue, whatever they type.
TRUSTED = "write"


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    installation_id: int
    repository: Repository
    issue: Issue
    sender: User
    command: Command | None = None
    comment_id: int | None = None
    # A command that could not be read; answered only once the sender may be answered.
    problem: Problem | None = None
    # When the trigger happened (epoch seconds; 0 when the payload did not say): the
    # discussion is read as it stood then.
    at: float = 0.0


@dataclass(frozen=True)
class Ignore:
    reason: str


@dataclass(frozen=True)
class Dispatch:
    trigger: Trigger
    platform: str
    agent: str | None
    force: bool = False  # an admin's force=true: start even past a used-up budget
    # Fan-out: every platform to start a session on (`platform` is the first); empty for
    # one platform, so a single dispatch stays exactly as it was.
    fanout: tuple[str, ...] = ()


@dataclass(frozen=True)
class FollowUp:
    """Send the command's text to the issue's running session instead of starting one;
    after a fan-out, to every running session of it whose platform takes messages
    (`sessions`), naming those whose platform cannot (`unable`) in the reply."""

    trigger: Trigger
    sessions: tuple[SessionRecord, ...]
    unable: tuple[SessionRecord, ...] = ()

    @property
    def fanout(self) -> bool:
        """To a fan-out's sessions (more than one, able to take it or not)."""
        return len(self.sessions) + len(self.unable) > 1


@dataclass(frozen=True)
class Stop:
    """Stop the issue's running sessions."""

    trigger: Trigger
    sessions: tuple[SessionRecord, ...]


@dataclass(frozen=True)
class Pick:
    """`/tembo pick PLATFORM`: keep `winner`, stop the rest of its fan-out."""

    trigger: Trigger
    winner: SessionRecord
    others: tuple[SessionRecord, ...]


@dataclass(frozen=True)
class Facts:
    permission: str  # the sender's role: none | read | triage | write | maintain | admin
    sessions: tuple[SessionRecord, ...] = ()
    now: float = 0.0
    # Platforms (by name) whose running sessions take follow-up messages.
    messageable: frozenset[str] = frozenset()
    # For `/tembo status` only: the issue's ledger rows and the repository's budget left.
    usage: tuple[LedgerRow, ...] = ()
    budget_left: dict[str, int | None] | None = None

    def live(self) -> list[SessionRecord]:
        """Sessions that may still be working: started in the last day, not seen to end,
        and not a dry run's preview (nothing was started there)."""
        now = self.now or time.time()
        return [
            s
            for s in self.sessions
            if now - s.created_at < LIVE_SESSION_SECONDS
            and s.status not in TERMINAL
            and s.status not in NEVER_STARTED
        ]


Decision = Ignore | Reply | Dispatch | FollowUp | Stop | Pick
TERMINAL = frozenset({"finished", "failed", "stopped"})
# The status a dry run's record keeps (bot/adapters/platforms/dry_run.py): it is recorded
# so `/tembo status` shows it, but there is nothing to stop, message or wait for.
NEVER_STARTED = frozenset({"dry-run"})


def rank(permission: str) -> int:
    """Position of a permission in PERMISSIONS; -1 for none or unknown values."""
    return PERMISSIONS.index(permission) if permission in PERMISSIONS else -1


def _trigger(
    kind: TriggerKind,
    event: IssueEvent | CommentEvent,
    *,
    at: float,
    command: Command | None = None,
    comment_id: int | None = None,
    problem: Problem | None = None,
) -> Trigger:
    """The trigger `event` makes: who, where and when, from the event."""
    return Trigger(
        kind,
        event.installation_id,
        event.repository,
        event.issue,
        event.sender,
        command=command,
        comment_id=comment_id,
        problem=problem,
        at=at,
    )


def trigger(event: Event, config: RepoConfig) -> Trigger | Ignore:
    if isinstance(event, IssueEvent):
        if event.issue.is_pull_request:
            return Ignore("issue event on a pull request")
        if event.action == "closed":
            if event.issue.state_reason != "not_planned":
                return Ignore("closed, but not as not planned")
            return _trigger("close", event, at=event.issue.updated_at)
        if event.action == "labeled" and event.label != config.label:
            return Ignore(f"label {event.label!r} is not {config.label!r}")
        if event.action == "opened" and config.label not in event.issue.labels:
            return Ignore("opened without the label")
        if event.sender.is_bot and event.sender.login not in config.allow_bots:
            return Ignore(f"bot {event.sender.login} is not in allow_bots")
        # The issue's updated_at is the label's time: labelling touches the issue.
        return _trigger("label", event, at=event.issue.updated_at)
    if isinstance(event, CommentEvent):
        if messages.has_marker(event.comment.body):
            return Ignore("the app's own comment")
        if event.sender.is_bot and event.sender.login not in config.allow_bots:
            return Ignore(f"bot {event.sender.login} is not in allow_bots")
        if event.issue.is_pull_request and not config.pull_requests:
            return Ignore("command on a pull request (pull_requests: false)")
        problem = None
        try:
            command = parse(event.comment.body, config.command)
        except CommandError as exc:
            command, problem = Command(), exc.problem
        if command is None:
            return Ignore("no command in the comment")
        return _trigger(
            "command",
            event,
            command=command,
            comment_id=event.comment.id,
            problem=problem,
            at=event.comment.created_at,
        )
    return Ignore(f"{type(event).__name__} never dispatches")


def decide(found: Trigger, config: RepoConfig, facts: Facts) -> Decision:
    if rank(facts.permission) < rank(config.min_permission):
        if found.kind == "close":
            return Ignore(f"{found.sender.login} closed the issue without the permission")
        # One notice per person per issue, however often or however oddly they ask.
        return Reply(
            replies.Denied(found.sender.login, config.min_permission),
            once=f"denied:{found.sender.login}",
        )
    # Below TRUSTED, a sender's mistakes are answered once per issue: no reply loop.
    refusal_once = (
        f"refused:{found.sender.login}" if rank(facts.permission) < rank(TRUSTED) else None
    )
    if found.problem is not None:
        return Reply(
            replies.Usage(config.command, found.problem), reaction="confused", once=refusal_once
        )
    live = facts.live()
    command = found.command
    if found.kind == "close":
        return Stop(found, tuple(live)) if live else Ignore("closed; no running session")
    if command is not None and command.name == "help":
        return Reply(replies.Help(config), reaction="eyes")
    if command is not None and command.name == "status":
        return Reply(
            replies.Status(facts.sessions, facts.now or None, facts.usage, facts.budget_left),
            reaction="eyes",
        )
    if command is not None and command.name == "stop":
        if not live:
            return Reply(replies.NothingToStop(), reaction="confused")
        return Stop(found, tuple(live))
    if command is not None and command.name == "pick":
        return _pick(found, command.platform or "", facts.sessions, config, refusal_once)
    chosen = (command.platforms if command else ()) or config.platforms
    unknown = [name for name in chosen if platforms.get(name) is None]
    if unknown:
        return Reply(
            replies.UnknownPlatform(config.command, unknown[0]),
            reaction="confused",
            once=refusal_once,
        )
    platform = chosen[0]
    forced = command is not None and command.new
    if config.one_session_per_issue and not forced and live:
        running = live[-1]
        if command is not None and command.text:
            follow_up = _follow_up(found, running, live, facts.messageable)
            if follow_up is not None:
                return follow_up
        return Reply(replies.Existing(running, config.command), reaction="eyes")
    agent = (command.agent if command else None) or config.agent
    force = command is not None and command.force and rank(facts.permission) >= rank("admin")
    fanout = chosen if len(chosen) > 1 else ()
    return Dispatch(trigger=found, platform=platform, agent=agent, force=force, fanout=fanout)


def _follow_up(
    found: Trigger, newest: SessionRecord, live: list[SessionRecord], messageable: frozenset[str]
) -> FollowUp | None:
    """The newest dispatch's running sessions (all of its fan-out's, or just it) split by
    whether their platform takes messages; None when none does."""
    group = fanout_group(newest)
    running = [r for r in live if fanout_group(r) == group] if group else [newest]
    order = {name: n for n, name in enumerate(newest.view.fanout)}  # as its table lists them
    running.sort(key=lambda r: order.get(r.platform, len(order)))
    able = tuple(r for r in running if r.platform in messageable)
    if not able:
        return None
    return FollowUp(found, able, tuple(r for r in running if r.platform not in messageable))


def fanout_group(record: SessionRecord) -> str | None:
    """The fan-out a session belongs to (its trigger's dispatch id), None when alone."""
    return record.view.group


def _pick(
    found: Trigger,
    name: str,
    sessions: tuple[SessionRecord, ...],
    config: RepoConfig,
    once: str | None,
) -> Pick | Reply:
    """The newest fan-out on the issue with a session on `name`."""
    if platforms.get(name) is None:
        return Reply(replies.UnknownPlatform(config.command, name), reaction="confused", once=once)
    started = [r for r in sessions if fanout_group(r) and r.platform == name and r.session_id]
    if not started:
        return Reply(replies.NothingToPick(name), reaction="confused")
    winner = max(started, key=lambda r: r.created_at)
    group = fanout_group(winner)
    others = tuple(
        r for r in sessions if fanout_group(r) == group and r.dispatch_id != winner.dispatch_id
    )
    return Pick(found, winner, others)


def config_problem(
    found: Trigger, config: RepoConfig, permission: str, error: ConfigError
) -> Ignore | Reply:
    """A trigger under a configuration file with problems (`config` holds the keys that
    did parse). The problems are shown only to someone who may act here; others get the
    usual single notice, so a file's contents are not told to whoever asks."""
    if found.kind == "close":
        return Ignore("closed; the configuration has problems")
    if rank(permission) < rank(config.min_permission):
        return Reply(
            replies.Denied(found.sender.login, config.min_permission),
            once=f"denied:{found.sender.login}",
        )
    return Reply(
        replies.ConfigProblems(error.source, tuple(str(p) for p in error.problems)),
        reaction="confused",
    )
