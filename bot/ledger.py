"""The usage ledger: what the app did on whose behalf, one row per act.

Every dispatch, follow-up, stop, refusal (a platform's or a budget's), fallback and pick
(the winner of a fan-out) is a `LedgerRow` row in the store. A row's `key` makes writing
it idempotent, so a retried or resumed job records its act once. Pure values only; the
store keeps the rows and `bot.operator.report` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["dispatch", "follow_up", "stop", "refusal", "fallback", "limited", "pick"]
KINDS: tuple[Kind, ...] = (
    "dispatch",
    "follow_up",
    "stop",
    "refusal",
    "fallback",
    "limited",
    "pick",
)
FIELDS = (
    "at",
    "installation_id",
    "repo",
    "issue",
    "sender",
    "platform",
    "kind",
    "dispatch_id",
    "session_id",
    "outcome",
    "pr_url",
    "detail",
)


@dataclass(frozen=True)
class LedgerRow:
    key: str  # unique per act: "<dispatch id>:<kind>[:<what>]"
    at: float
    repo: str
    issue: int
    kind: Kind
    outcome: str  # created, sent, stopped, refused, forced, limited, fell back, …
    installation_id: int | None = None
    sender: str = ""
    platform: str = ""
    dispatch_id: str | None = None
    session_id: str = ""
    pr_url: str = ""
    detail: str = ""

    def row(self) -> dict[str, object]:
        """The row as the report prints it (the idempotency key left out)."""
        return {name: getattr(self, name) for name in FIELDS}
