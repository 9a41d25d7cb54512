"""This process's callers of GitHub's content budget (`Budget`): one queue per key,
highest priority first, in front of the store that grants the slots (`budget` holds the rule).

- In each process, callers wait in one queue per key, highest priority first (then first
  come); only the head asks the store, so a process costs one round trip per grant, and a
  waiting link comment is never overtaken by an edit of the same process. Across
  replicas, priorities hold by the reserve each leaves (`budget.RESERVE`).
- A 403/429 that says to wait pauses the key in the store: every caller of every replica
  waits until then.

This module waits; it makes no HTTP call. A caller waits as a parked job (`budget.parked`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.budget import Limits, parked
from bot.ports import BudgetShort, BudgetWindows, Priority


class BudgetStore(Protocol):
    async def take_budget(
        self, key: str, clock: Callable[[], float], windows: BudgetWindows
    ) -> float | None: ...

    async def pause_budget(self, key: str, until: float) -> None: ...


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
