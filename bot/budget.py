"""GitHub's content budget, the rule: 80 content-creating calls a minute and 500 an hour,
how each window is counted (`take`, pure, which every store runs), and the worker slots a
job parks in while it waits. The queue that waits for a slot is `budget_queue`.

GitHub documents both figures for content-generating requests ("no more than 80 …
per minute and no more than 500 … per hour", REST API, "Rate limits for the REST API",
secondary rate limits) and counts them per acting identity. An App's installation tokens
act as its bot user, so by default there is one budget for the whole App (key `app:<id>`);
`GITHUB_CONTENT_SCOPE=installation` gives each installation its own.

How a slot is granted, and why this way:

- The store keeps, per key, the times of the grants of the last hour and a pause. Taking
  a slot is one call into the store (one round trip: a function on PostgreSQL, one
  transaction on SQLite's single writer) that grants only when every window has room,
  and otherwise answers when a slot may free up. Grants are recorded, not calls: a grant
  is counted even if its call then fails, which can only make us slower, never over.
- Each window is counted a little longer than GitHub's (`MARGIN`): a call reaches GitHub
  some milliseconds after its grant, and two calls a window apart must not land inside
  one window because the first was slower.
- Within a process callers queue by priority (`budget_queue`); across replicas the store
  cannot see who waits elsewhere, so lower priorities may not use the top of each window
  (`RESERVE`): under sustained pressure the windows stay full of link comments, and
  replies and edits wait until links stop. The price is that edits alone never use the
  last quarter of a window. A ledger of "who waits" in the store would avoid that, at the
  cost of a write per waiter and a stale entry per crash.

Nothing here makes a call. `Slots` lets the worker count a job that waits for a slot as
parked, not busy, so sessions never wait on GitHub's comment budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from bot.ports import BudgetWindows, Priority

# A window is counted this much longer than GitHub's (a fraction of it, at least 250 ms):
# the spread of the delay between a grant and its call reaching GitHub must fit in it.
MARGIN = 0.02
MIN_MARGIN = 0.25
# The share of each window lower priorities leave to higher ones (see the docstring).
RESERVE: Mapping[Priority, float] = {
    Priority.LINK: 0.0,
    Priority.REPLY: 0.1,
    Priority.FOLLOW: 0.25,
}
# Jobs parked on the budget per process, besides the busy ones.
MAX_PARKED = 1000


@dataclass(frozen=True)
class Limits:
    """The operator's figures (GITHUB_CONTENT_PER_MINUTE, …_PER_HOUR) and the windows'
    lengths (60 s and an hour, shrunk only by benchmarks)."""

    per_minute: int = 80
    per_hour: int = 500
    minute_seconds: float = 60.0
    hour_seconds: float = 3600.0

    def windows(self, priority: Priority) -> BudgetWindows:
        """What a caller of `priority` may fill: each window lengthened by the margin,
        its top share left to higher priorities."""
        reserve = RESERVE[priority]
        return BudgetWindows(
            minute_limit=max(1, math.floor(self.per_minute * (1 - reserve))),
            minute_seconds=_widened(self.minute_seconds),
            hour_limit=max(1, math.floor(self.per_hour * (1 - reserve))),
            hour_seconds=_widened(self.hour_seconds),
        )


def _widened(seconds: float) -> float:
    return seconds + max(seconds * MARGIN, MIN_MARGIN)


@dataclass(frozen=True)
class Decision:
    """What `take` decided: granted (with the ledger to keep) or when to try again."""

    granted: bool
    kept: tuple[float, ...]  # the grants to keep (the new one included when granted)
    retry_at: float | None = None


def take(
    grants: Sequence[float], paused_until: float, now: float, windows: BudgetWindows
) -> Decision:
    """The store's rule, pure (the SQLite store runs this; PostgreSQL's function mirrors
    it): grant when not paused and each window holds fewer grants than its limit."""
    horizon = max(windows.minute_seconds, windows.hour_seconds)
    kept = sorted(g for g in grants if g > now - horizon)
    retry_at = paused_until if paused_until > now else 0.0
    for limit, seconds in (
        (windows.minute_limit, windows.minute_seconds),
        (windows.hour_limit, windows.hour_seconds),
    ):
        inside = [g for g in kept if g > now - seconds]
        if len(inside) >= limit:
            # Room comes back when enough of the oldest grants have left the window.
            retry_at = max(retry_at, inside[len(inside) - limit] + seconds)
    if retry_at > now:
        return Decision(False, tuple(kept), retry_at)
    return Decision(True, (*kept, now))


def budget_key(scope: str, app_id: str | None, installation_id: int) -> str:
    """What GitHub counts content by: the App's bot user, or (scope installation) each
    installation apart."""
    if scope == "installation":
        return f"installation:{installation_id}"
    return f"app:{app_id or '-'}"


# -- waiting without holding a worker slot ------------------------------------------


class Slots:
    """The worker's job slots: at most `busy` jobs working, and besides them up to
    `parked` jobs waiting on GitHub's budget. A job that waits there gives its slot to the
    next job (whose session can start meanwhile); when the wait ends it simply goes on,
    so for a moment more than `busy` may work, and no new job is claimed until fewer do.
    """

    def __init__(self, busy: int, parked: int = MAX_PARKED) -> None:
        self.busy = busy
        self.max_parked = parked
        self.held = 0
        self.parked = 0
        self._changed = asyncio.Event()

    def _free(self) -> bool:
        return self.held - self.parked < self.busy and self.held < self.busy + self.max_parked

    async def acquire(self) -> None:
        while not self._free():
            self._changed.clear()
            await self._changed.wait()
        self.held += 1

    def release(self) -> None:
        self.held -= 1
        self._changed.set()

    @contextlib.asynccontextmanager
    async def parking(self) -> AsyncIterator[None]:
        self.parked += 1
        self._changed.set()
        try:
            yield
        finally:
            self.parked -= 1


# The slots of the worker running this task, if any (the worker sets it in its loop).
SLOTS: contextvars.ContextVar[Slots | None] = contextvars.ContextVar("slots", default=None)


@contextlib.asynccontextmanager
async def parked() -> AsyncIterator[None]:
    """Wait inside as a parked job (no slot held) when a worker runs this task."""
    slots = SLOTS.get()
    if slots is None:
        yield
        return
    async with slots.parking():
        yield
