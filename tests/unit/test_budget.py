"""GitHub's content budget: the store's rule (pure), the queue's priorities, parking.
Times are moved by hand; nothing sleeps."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest

from bot.budget import MARGIN, Limits, Slots, budget_key, take
from bot.budget_queue import Budget
from bot.ports import BudgetShort, BudgetWindows, Priority
from tests.support.app import Clock

pytestmark = pytest.mark.anyio
WINDOWS = BudgetWindows(minute_limit=3, minute_seconds=60, hour_limit=5, hour_seconds=3600)


def test_a_slot_is_granted_while_every_window_has_room() -> None:
    decision = take([10.0, 20.0], 0.0, 30.0, WINDOWS)
    assert decision.granted
    assert decision.kept == (10.0, 20.0, 30.0)


def test_a_full_minute_refuses_until_its_oldest_grant_leaves() -> None:
    decision = take([10.0, 20.0, 30.0], 0.0, 40.0, WINDOWS)
    assert not decision.granted
    assert decision.retry_at == 70.0
    assert take([10.0, 20.0, 30.0], 0.0, 70.5, WINDOWS).granted


def test_a_full_hour_refuses_even_when_the_minute_has_room() -> None:
    grants = [0.0, 100.0, 200.0, 300.0, 400.0]
    decision = take(grants, 0.0, 500.0, WINDOWS)
    assert not decision.granted
    assert decision.retry_at == 3600.0


def test_grants_older_than_the_longest_window_are_forgotten() -> None:
    decision = take([1.0, 2.0, 5000.0], 0.0, 5000.5, WINDOWS)
    assert decision.granted
    assert decision.kept == (5000.0, 5000.5)


def test_a_pause_refuses_every_slot_until_it_ends() -> None:
    decision = take([], 100.0, 50.0, WINDOWS)
    assert (decision.granted, decision.retry_at) == (False, 100.0)
    assert take([], 100.0, 100.0, WINDOWS).granted


def test_lower_priorities_leave_the_top_of_each_window_to_link_comments() -> None:
    limits = Limits(per_minute=80, per_hour=500)
    link, reply, follow = (limits.windows(p) for p in Priority)
    assert (link.minute_limit, link.hour_limit) == (80, 500)
    assert (reply.minute_limit, reply.hour_limit) == (72, 450)
    assert (follow.minute_limit, follow.hour_limit) == (60, 375)
    # Each window is counted a little longer than GitHub's: a call lands after its grant.
    assert link.minute_seconds == pytest.approx(60 * (1 + MARGIN))
    grants = [float(n) for n in range(60)]
    assert not take(grants, 0.0, 61.0, follow).granted
    assert take(grants, 0.0, 61.0, link).granted


def test_the_budget_is_the_apps_unless_the_operator_splits_it_by_installation() -> None:
    assert budget_key("app", "123", 7) == budget_key("app", "123", 8) == "app:123"
    assert budget_key("installation", "123", 7) == "installation:7"


class MemoryStore:
    """The store's budget rule over a dict: what the SQLite store does, without a file."""

    def __init__(self) -> None:
        self.grants: dict[str, list[float]] = {}
        self.paused: dict[str, float] = {}
        self.asked: list[tuple[str, float]] = []

    async def take_budget(
        self, key: str, clock: Callable[[], float], windows: BudgetWindows
    ) -> float | None:
        now = clock()
        self.asked.append((key, now))
        decision = take(self.grants.get(key, []), self.paused.get(key, 0.0), now, windows)
        if decision.granted:
            self.grants[key] = list(decision.kept)
            return None
        return decision.retry_at

    async def pause_budget(self, key: str, until: float) -> None:
        self.paused[key] = max(self.paused.get(key, 0.0), until)


def hand_moved(store: MemoryStore, limits: Limits) -> tuple[Budget, Clock]:
    clock = Clock()
    clock.now = 1000.0

    async def sleep(seconds: float) -> None:
        clock.now += seconds
        await asyncio.sleep(0)

    return Budget(store, limits, clock=clock, sleep=sleep), clock


async def test_waiting_callers_get_slots_by_priority_then_in_order() -> None:
    store = MemoryStore()
    budget, _clock = hand_moved(store, Limits(per_minute=1, per_hour=100))
    await budget.take("app:1", Priority.LINK)  # the minute is now full
    order: list[str] = []

    async def caller(name: str, priority: Priority) -> None:
        await budget.take("app:1", priority)
        order.append(name)

    tasks = [
        asyncio.create_task(caller(name, priority))
        for name, priority in [
            ("edit", Priority.FOLLOW),
            ("reply", Priority.REPLY),
            ("link-1", Priority.LINK),
            ("link-2", Priority.LINK),
        ]
    ]
    await asyncio.gather(*tasks)
    assert order == ["link-1", "link-2", "reply", "edit"]
    # One slot a minute, never two in one (the margin spaces them a little more).
    granted = store.grants["app:1"]
    assert all(b - a >= 60 for a, b in itertools.pairwise(granted))


async def test_a_caller_that_may_not_wait_never_goes_ahead_of_waiters() -> None:
    store = MemoryStore()
    budget, clock = hand_moved(store, Limits(per_minute=1, per_hour=100))
    await budget.take("app:1", Priority.LINK)
    waiting = asyncio.create_task(budget.take("app:1", Priority.LINK))
    await asyncio.sleep(0)
    with pytest.raises(BudgetShort) as short:
        await budget.take("app:1", Priority.FOLLOW, wait=False)
    assert short.value.retry_at >= clock.now
    await waiting


async def test_a_pause_holds_every_caller_until_it_ends() -> None:
    store = MemoryStore()
    budget, clock = hand_moved(store, Limits())
    started = clock.now
    await budget.pause("app:1", 30.0)
    await budget.take("app:1", Priority.LINK)
    assert clock.now >= started + 30.0
    await budget.pause("app:1", 30.0)
    with pytest.raises(BudgetShort) as short:
        await budget.take("app:1", Priority.LINK, wait=False)
    assert short.value.retry_at == pytest.approx(clock.now + 30.0)


async def test_a_higher_priority_caller_arriving_while_the_store_is_asked_is_not_lost() -> None:
    """The store is asked for a reply's slot; a link comment queues meanwhile and becomes
    the head. Both must get their slot (the grant went to the one asked for)."""
    store = MemoryStore()
    budget = Budget(store, Limits())
    asked = asyncio.Event()
    answer = asyncio.Event()
    plain = store.take_budget

    async def slow_take(
        key: str, clock: Callable[[], float], windows: BudgetWindows
    ) -> float | None:
        asked.set()
        await answer.wait()
        return await plain(key, clock, windows)

    store.take_budget = slow_take  # type: ignore[method-assign]
    reply = asyncio.create_task(budget.take("app:1", Priority.REPLY))
    await asked.wait()
    link = asyncio.create_task(budget.take("app:1", Priority.LINK))
    await asyncio.sleep(0)
    answer.set()
    await asyncio.wait_for(asyncio.gather(reply, link), timeout=5)
    assert len(store.grants["app:1"]) == 2


async def test_a_parked_job_gives_its_slot_to_the_next_job() -> None:
    slots = Slots(busy=1, parked=1)
    await slots.acquire()
    next_job = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    assert not next_job.done()
    async with slots.parking():
        await asyncio.wait_for(next_job, 1.0)
        # One busy and one parked: no third job until one ends.
        third = asyncio.create_task(slots.acquire())
        await asyncio.sleep(0)
        assert not third.done()
    slots.release()
    slots.release()
    await asyncio.wait_for(third, 1.0)
