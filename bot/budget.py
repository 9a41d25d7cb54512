"""GitHub's content budget: 80 content-creating calls a minute and 500 an hour, shared
through the store by every replica; and the primary limit, watched per installation.

GitHub documents both figures for content-generating requests ("no more than 80 …
per minute and no more than 500 … per hour", REST API, "Rate limits for the REST API",
secondary rate limits) and counts them per acting identity. An App's installation tokens
act as its bot user, so by default there is one budget for the whole App (key `app:<id>`);
`GITHUB_CONTENT_SCOPE=installation` gives each installation its own.

How a slot is taken, and why this way:

- The store keeps, per key, the times of the grants of the last hour and a pause. Taking
  a slot is one call into the store (one round trip: a function on PostgreSQL, one
  transaction on SQLite's single writer) that grants only when every window has room,
  and otherwise answers when a slot may free up. Grants are recorded, not calls: a grant
  is counted even if its call then fails, which can only make us slower, never over.
- Each window is counted a little longer than GitHub's (`MARGIN`): a call reaches GitHub
  some milliseconds after its grant, and two calls a window apart must not land inside
  one window because the first was slower.
- Priority: in each process, callers wait in one queue per key, highest priority first
  (then first come); only the head asks the store, so a process costs one round trip per
  grant, and a waiting link comment is never overtaken by an edit of the same process.
  Across replicas the store cannot see who waits elsewhere, so lower priorities may not
  use the top of each window (`RESERVE`): under sustained pressure the windows stay full
  of link comments, and replies and edits wait until links stop. The price is that edits
  alone never use the last quarter of a window. A ledger of "who waits" in the store
  would avoid that, at the cost of a write per waiter and a stale entry per crash.
- A 403/429 that says to wait pauses the key in the store: every caller of every replica
  waits until then.

This module decides and waits; it makes no HTTP call. `Slots` lets the worker count a job
that waits here as parked, not busy, so sessions never wait on GitHub's comment budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.ports import BudgetShort, BudgetWindows, Priority

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


class BudgetStore(Protocol):
    async def take_budget(
        self, key: str, clock: Callable[[], float], windows: BudgetWindows
    ) -> float | None: ...

    async def pause_budget(self, key: str, until: float) -> None: ...


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


# -- the budget of this process, over the store --------------------------------------


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    future: asyncio.Future[None] = field(compare=False)


@dataclass
class _Queue:
    waiters: list[_Waiter] = field(default_factory=list)
    driver: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    retry_at: float = 0.0  # when the head was told to try again


class Budget:
    """Slots of GitHub's content budget for this process's callers, taken from the store.

    `take(key, priority)` returns once a slot is granted (or raises `BudgetShort` at once
    when told not to wait); `pause(key, seconds)` stops every replica's grants for that
    long. `on_wait(seconds)` hears of each wait, for metrics.
    """

    def __init__(
        self,
        store: BudgetStore,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.limits = limits
        self._clock = clock
        self._on_wait = on_wait
        self._queues: dict[str, _Queue] = {}
        self._seq = itertools.count()
        self._sleep = sleep

    async def take(self, key: str, priority: Priority, *, wait: bool = True) -> None:
        queue = self._queues.setdefault(key, _Queue())
        if not wait:
            # Never ahead of this process's waiters: they are first in line (and at least
            # as important: only follow-through edits do not wait).
            if any(not w.future.done() for w in queue.waiters):
                raise BudgetShort(max(queue.retry_at, self._clock()))
            retry_at = await self.store.take_budget(key, self._clock, self.limits.windows(priority))
            if retry_at is not None:
                raise BudgetShort(retry_at)
            return
        started = self._clock()
        waiter = _Waiter(int(priority), next(self._seq), asyncio.get_running_loop().create_future())
        heapq.heappush(queue.waiters, waiter)
        queue.wake.set()  # a new head may be allowed sooner (a smaller reserve)
        if queue.driver is None or queue.driver.done():
            queue.driver = asyncio.create_task(self._drive(key, queue))
        async with parked():
            try:
                await asyncio.shield(waiter.future)
            except asyncio.CancelledError:
                waiter.future.cancel()
                raise
        waited = self._clock() - started
        if waited > 0 and self._on_wait is not None:
            self._on_wait(waited)

    async def _drive(self, key: str, queue: _Queue) -> None:
        """Ask the store for the head of the queue until the queue is empty."""
        while queue.waiters:
            head = queue.waiters[0]
            if head.future.done():  # its caller gave up
                heapq.heappop(queue.waiters)
                continue
            try:
                retry_at = await self.store.take_budget(
                    key, self._clock, self.limits.windows(Priority(head.priority))
                )
            except Exception as exc:
                # The store is unreachable: every waiter fails now (its job is retried).
                for waiter in queue.waiters:
                    if not waiter.future.done():
                        waiter.future.set_exception(exc)
                queue.waiters.clear()
                return
            if retry_at is None:
                # The grant is the head's that was asked for: a caller of higher priority
                # that queued during the call is now first and must stay queued.
                queue.waiters.remove(head)
                heapq.heapify(queue.waiters)
                if not head.future.done():
                    head.future.set_result(None)
                continue
            queue.retry_at = retry_at
            queue.wake.clear()
            await self._pause_for(queue, max(retry_at - self._clock(), 0.001))

    async def _pause_for(self, queue: _Queue, seconds: float) -> None:
        if self._sleep is not None:
            await self._sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(queue.wake.wait(), timeout=seconds)

    async def pause(self, key: str, seconds: float) -> None:
        await self.store.pause_budget(key, self._clock() + seconds)


# -- the primary limit, per installation ----------------------------------------------


@dataclass
class _Primary:
    remaining: int
    limit: int
    reset: float
    next_at: float = 0.0


class PrimaryLimit:
    """GitHub's primary limit (requests an hour per installation), read from the
    `x-ratelimit-*` headers of every answer. Far from zero it costs nothing; once fewer
    than `LOW` of the limit remain, calls are spread evenly until the reset, so the
    installation reaches the reset, not zero; at zero, calls wait for the reset."""

    LOW = 0.1

    def __init__(self) -> None:
        self._seen: dict[int, _Primary] = {}

    def observe(self, installation_id: int, headers: Mapping[str, str], now: float) -> None:
        try:
            remaining = int(headers["x-ratelimit-remaining"])
            reset = float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return
        try:
            limit = int(headers.get("x-ratelimit-limit", "5000"))
        except ValueError:
            limit = 5000
        if headers.get("x-ratelimit-resource", "core") != "core":
            return
        seen = self._seen.get(installation_id)
        next_at = seen.next_at if seen is not None else 0.0
        self._seen[installation_id] = _Primary(remaining, limit, reset, next_at)

    def delay(self, installation_id: int, now: float) -> float:
        """How long the next call for this installation should wait; counts it as made."""
        seen = self._seen.get(installation_id)
        if seen is None or seen.reset <= now:
            return 0.0
        if seen.remaining <= 0:
            return seen.reset - now
        if seen.remaining >= seen.limit * self.LOW:
            return 0.0
        spacing = (seen.reset - now) / seen.remaining
        at = max(now, seen.next_at)
        seen.next_at = at + spacing
        seen.remaining -= 1  # this call; the next answer corrects the figure
        return at - now
