"""Fleet decisions, pure: budgets (limits per user, repository and organisation).

The store counts and reserves in one transaction and asks `over_limit` whether the new
dispatch fits; nothing here does I/O, so the rule is tested with plain values.

Windows are UTC calendar days: a day's budget resets at 00:00 UTC, which a person can
be told in one line ("resets at 2026-11-27 00:00 UTC").
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

DAY = 86400.0
# A reservation counts as running for at most this long when nothing says it ended
# (a platform the app cannot read): the same day policy.Facts.live() uses.
RUNNING_FOR_AT_MOST = DAY

LimitName = Literal[
    "per_user_per_day", "per_repo_per_day", "per_org_per_day", "concurrent_per_repo"
]
LIMIT_NAMES: tuple[LimitName, ...] = (
    "per_user_per_day",
    "per_repo_per_day",
    "per_org_per_day",
    "concurrent_per_repo",
)


@dataclass(frozen=True)
class Limits:
    per_user_per_day: int | None = None
    per_repo_per_day: int | None = None
    per_org_per_day: int | None = None
    concurrent_per_repo: int | None = None

    @property
    def any(self) -> bool:
        return any(getattr(self, name) is not None for name in LIMIT_NAMES)


@dataclass(frozen=True)
class Counts:
    """How much of each budget is used, the new dispatch not included."""

    user_today: int = 0
    repo_today: int = 0
    org_today: int = 0
    repo_running: int = 0

    def of(self, name: LimitName) -> int:
        return {
            "per_user_per_day": self.user_today,
            "per_repo_per_day": self.repo_today,
            "per_org_per_day": self.org_today,
            "concurrent_per_repo": self.repo_running,
        }[name]


@dataclass(frozen=True)
class Reservation:
    """One dispatch's claim on the budgets; `dispatch_id` makes it idempotent."""

    dispatch_id: str
    org: str
    repo: str
    sender: str
    force: bool = False


@dataclass(frozen=True)
class Over:
    """The first limit the dispatch would break."""

    name: LimitName
    limit: int
    count: int
    resets_at: float | None  # None for concurrent_per_repo: frees when a session ends


@dataclass(frozen=True)
class Answer:
    """The store's answer to a reservation."""

    granted: bool
    over: Over | None = None  # why not (or, when forced, what was overridden)
    forced: bool = False
    again: bool = False  # this dispatch id had reserved before (a retried job)


# A platform that answers these will not start the session however often it is asked
# (the key, the App's access, the endpoint): the next platform in `fallback:` is tried.
# Never 400 (the request itself is wrong: another platform gets the same request).
FALLBACK_STATUSES = frozenset({401, 403, 404})


def fallback_to(
    current: str,
    fallback: tuple[str, ...],
    tried: tuple[str, ...],
    status: int | None,
    creates_unknown: int,
) -> str | None:
    """The platform to try after `current` refused with `status`, or None.

    Never after a create whose outcome is unknown: a session may exist on `current`, and
    starting a second one elsewhere would run the work twice."""
    if creates_unknown > 0 or status not in FALLBACK_STATUSES:
        return None
    return _next(current, fallback, tried)


def down(status: int | None) -> bool:
    """A failure of the platform itself that retrying might have fixed: no answer (None),
    408 or 5xx. Not 429: a platform asking us to slow down is up."""
    return status is None or status == 408 or status >= 500


def fallback_when_spent(
    current: str,
    fallback: tuple[str, ...],
    tried: tuple[str, ...],
    statuses: tuple[int | None, ...],
) -> str | None:
    """The platform to try once every attempt the worker allows is spent on `current`,
    whose creates failed with `statuses` (the last ones, oldest first), or None.

    Only when each of them was the platform being down. The caller makes sure no create's
    outcome is unknown (a lost answer the platform's lookup has not proven absent)."""
    if not statuses or not all(down(status) for status in statuses):
        return None
    return _next(current, fallback, tried)


def _next(current: str, fallback: tuple[str, ...], tried: tuple[str, ...]) -> str | None:
    spent = {current, *tried}
    return next((name for name in fallback if name not in spent), None)


def day_start(now: float) -> float:
    return now - now % DAY


def over_limit(limits: Limits, counts: Counts, now: float) -> Over | None:
    for name in LIMIT_NAMES:
        limit = getattr(limits, name)
        if limit is not None and counts.of(name) >= limit:
            resets = None if name == "concurrent_per_repo" else day_start(now) + DAY
            return Over(name, limit, counts.of(name), resets)
    return None


def remaining(limits: Limits, counts: Counts) -> dict[str, int | None]:
    """Budget left per limit; None where there is no limit."""
    return {
        name: None
        if getattr(limits, name) is None
        else max(getattr(limits, name) - counts.of(name), 0)
        for name in LIMIT_NAMES
    }


def org_of(repo: str) -> str:
    return repo.split("/", 1)[0].lower()


def when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))
