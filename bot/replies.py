"""What the app says when it answers instead of acting, as data.

`policy` decides which reply a delivery gets and fills in its fields; `messages.render`
is the one place that words it. Keeping the two apart means every value a sender typed
reaches Markdown through one renderer that knows which fields are untrusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from bot.commands import Problem
from bot.ledger import LedgerRow
from bot.ports import SessionRecord
from bot.repo_config import RepoConfig

ReplyKind = Literal[
    "usage",
    "unknown_platform",
    "denied",
    "help",
    "status",
    "existing",
    "nothing_to_stop",
    "nothing_to_pick",
    "config_error",
]
# The reactions GitHub accepts (REST "Create reaction for an issue comment").
Reaction = Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]


@dataclass(frozen=True)
class Usage:
    """A malformed command: what was wrong, then the usage. `problem` holds sender text."""

    kind: ClassVar[ReplyKind] = "usage"
    command: str
    problem: Problem


@dataclass(frozen=True)
class UnknownPlatform:
    kind: ClassVar[ReplyKind] = "unknown_platform"
    command: str
    platform: str  # as the sender typed it


@dataclass(frozen=True)
class Denied:
    kind: ClassVar[ReplyKind] = "denied"
    login: str
    min_permission: str


@dataclass(frozen=True)
class Help:
    kind: ClassVar[ReplyKind] = "help"
    config: RepoConfig


@dataclass(frozen=True)
class Status:
    kind: ClassVar[ReplyKind] = "status"
    sessions: tuple[SessionRecord, ...]
    now: float | None = None
    usage: tuple[LedgerRow, ...] = ()  # the ledger rows
    budget_left: Mapping[str, int | None] | None = None  # by limit name


@dataclass(frozen=True)
class Existing:
    kind: ClassVar[ReplyKind] = "existing"
    session: SessionRecord
    command: str


@dataclass(frozen=True)
class NothingToStop:
    kind: ClassVar[ReplyKind] = "nothing_to_stop"


@dataclass(frozen=True)
class NothingToPick:
    """`/tembo pick` named a platform with no session in a fan-out on this issue."""

    kind: ClassVar[ReplyKind] = "nothing_to_pick"
    platform: str  # a registry name (policy checked it), not the sender's raw text


@dataclass(frozen=True)
class ConfigProblems:
    """`.github/tembo.yml` (or the org's) has problems; each line says key, line, fix."""

    kind: ClassVar[ReplyKind] = "config_error"
    source: str
    problems: tuple[str, ...]


Said = (
    Usage
    | UnknownPlatform
    | Denied
    | Help
    | Status
    | Existing
    | NothingToStop
    | NothingToPick
    | ConfigProblems
)


@dataclass(frozen=True)
class Reply:
    """Answer on the issue instead of acting. `once` names a notice sent at most once per
    issue (the store remembers it), so a sender cannot make the app repeat itself."""

    said: Said
    reaction: Reaction | None = None
    once: str | None = None

    @property
    def kind(self) -> ReplyKind:
        return self.said.kind
