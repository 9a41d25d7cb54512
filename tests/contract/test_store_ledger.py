"""The usage ledger and budget reservations, on both stores (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from bot import fleet
from bot.ledger import LedgerRow
from tests.support.stores import AnyStore, Backend

pytestmark = pytest.mark.anyio
DAY0 = 1_800_000_000.0 - 1_800_000_000.0 % fleet.DAY  # 00:00 UTC of some day
NOON = DAY0 + 12 * 3600


@pytest.fixture
async def store(backend: Backend) -> AnyStore:
    store = backend.open()
    await store.migrate()
    return store


def usage(key: str, at: float = NOON, **fields: Any) -> LedgerRow:
    values: dict[str, Any] = {"repo": "acme/web", "issue": 1, "kind": "dispatch"}
    return LedgerRow(key=key, at=at, **{"outcome": "created", **values, **fields})


async def test_a_ledger_row_is_written_once_per_key_and_read_back_whole(store: AnyStore) -> None:
    row = usage(
        "gh-1:dispatch",
        installation_id=7,
        sender="octo",
        platform="tembo",
        dispatch_id="gh-1",
        session_id="s-1",
        detail="x",
    )
    await store.record_usage(row)
    await store.record_usage(usage("gh-1:dispatch", outcome="changed"))
    assert await store.usage(NOON - 1) == [row]


async def test_usage_reads_from_since_and_narrows_to_a_repository_or_an_issue(
    store: AnyStore,
) -> None:
    await store.record_usage(usage("a", at=NOON - 100))
    await store.record_usage(usage("b", at=NOON, issue=2))
    await store.record_usage(usage("c", at=NOON + 1, repo="acme/api"))
    assert [u.key for u in await store.usage(NOON - 50)] == ["b", "c"]
    assert [u.key for u in await store.usage(0, repo="acme/web")] == ["a", "b"]
    assert [u.key for u in await store.usage(0, repo="acme/web", issue=2)] == ["b"]


async def test_the_dispatch_row_learns_its_first_pull_request(store: AnyStore) -> None:
    await store.record_usage(usage("gh-1:dispatch", dispatch_id="gh-1"))
    await store.record_usage(usage("gh-1:follow_up", kind="follow_up", dispatch_id="gh-1"))
    await store.usage_pull_request("gh-1", "https://github.com/acme/web/pull/5")
    await store.usage_pull_request("gh-1", "https://github.com/acme/web/pull/6")
    rows = {u.kind: u.pr_url for u in await store.usage(0)}
    assert rows == {"dispatch": "https://github.com/acme/web/pull/5", "follow_up": ""}


def reservation(
    ident: str, sender: str = "octo", repo: str = "acme/web", force: bool = False
) -> fleet.Reservation:
    return fleet.Reservation(
        dispatch_id=ident, org=fleet.org_of(repo), repo=repo, sender=sender, force=force
    )


async def test_a_reservation_over_the_limit_is_refused_with_the_count_and_reset(
    store: AnyStore,
) -> None:
    limits = fleet.Limits(per_repo_per_day=2)
    assert (await store.reserve(reservation("gh-1"), limits, NOON)).granted
    assert (await store.reserve(reservation("gh-2"), limits, NOON)).granted
    answer = await store.reserve(reservation("gh-3"), limits, NOON)
    assert answer == fleet.Answer(
        granted=False, over=fleet.Over("per_repo_per_day", 2, 2, DAY0 + fleet.DAY)
    )
    # A new UTC day starts from nothing.
    assert (await store.reserve(reservation("gh-3"), limits, DAY0 + fleet.DAY)).granted


async def test_the_same_dispatch_reserving_again_counts_once(store: AnyStore) -> None:
    limits = fleet.Limits(per_user_per_day=1)
    assert (await store.reserve(reservation("gh-1"), limits, NOON)).granted
    again = await store.reserve(reservation("gh-1"), limits, NOON + 5)
    assert again.granted and again.again
    counts = await store.budget_counts("acme", "acme/web", "octo", NOON)
    assert counts.user_today == 1


async def test_a_forced_reservation_passes_the_limit_and_says_which_it_passed(
    store: AnyStore,
) -> None:
    limits = fleet.Limits(per_org_per_day=1)
    await store.reserve(reservation("gh-1", repo="acme/api"), limits, NOON)
    answer = await store.reserve(reservation("gh-2", force=True), limits, NOON)
    assert answer.granted and answer.forced
    assert answer.over == fleet.Over("per_org_per_day", 1, 1, DAY0 + fleet.DAY)
    assert (await store.reserve(reservation("gh-2", force=True), limits, NOON)).forced


async def test_released_reservations_count_for_nothing_and_ended_ones_only_for_the_day(
    store: AnyStore,
) -> None:
    limits = fleet.Limits(per_repo_per_day=3, concurrent_per_repo=1)
    await store.reserve(reservation("gh-1"), limits, NOON)
    assert not (await store.reserve(reservation("gh-2"), limits, NOON)).granted
    await store.end_reservation("gh-1", "ended")
    assert (await store.reserve(reservation("gh-2"), limits, NOON)).granted
    await store.end_reservation("gh-2", "released")
    await store.end_reservation("gh-2", "ended")  # released stays released
    counts = await store.budget_counts("acme", "acme/web", "octo", NOON)
    assert counts == fleet.Counts(user_today=1, repo_today=1, org_today=1, repo_running=0)


async def test_per_user_counts_the_sender_within_the_organisation(store: AnyStore) -> None:
    limits = fleet.Limits(per_user_per_day=1)
    await store.reserve(reservation("gh-1", repo="acme/web"), limits, NOON)
    assert not (await store.reserve(reservation("gh-2", repo="acme/api"), limits, NOON)).granted
    assert (await store.reserve(reservation("gh-3", sender="hubot"), limits, NOON)).granted
    assert (await store.reserve(reservation("gh-4", repo="other/web"), limits, NOON)).granted


async def test_reservations_from_several_replicas_at_once_never_pass_the_limit(
    backend: Backend,
) -> None:
    first = backend.open()
    await first.migrate()
    replicas = [first, backend.open(), backend.open()]
    limits = fleet.Limits(per_org_per_day=7)
    granted: list[str] = []

    async def reserve(replica: AnyStore, ident: str) -> None:
        if (await replica.reserve(reservation(ident, sender=ident), limits, NOON)).granted:
            granted.append(ident)

    async with anyio.create_task_group() as group:
        for i in range(60):
            group.start_soon(reserve, replicas[i % 3], f"gh-{i}")
    assert len(granted) == 7
    assert (await first.budget_counts("acme", "acme/web", "x", NOON)).org_today == 7
