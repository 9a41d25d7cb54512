"""Issue 7, replicas: three app processes (`python -m bot serve` on three ports) share one
PostgreSQL database. 300 signed deliveries are spread over them round-robin, 20 of them
sent to two replicas at once (same delivery id, concurrently); every 25th create at Tembo
loses its answer. Then the same again with `kill -9` of one replica mid-run, fired by the
Tembo fake the moment that replica has just created a session and before it answers: its
in-flight jobs must be reclaimed by the others once their lease (LEASE_SECONDS=2) runs out.
Either way: exactly 300 sessions, no duplicates, 300 status comments with their links.

Each run gets a throwaway database (CREATE DATABASE t_<hex>, dropped WITH (FORCE) at the
end) on the server of TEST_DATABASE_URL; the test is skipped, saying why, only when that
server cannot be reached. Figures are printed for the record (run with -s).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import asyncpg
import httpx
import pytest

from tests.support.app import KeyPair
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.server import (
    DISPATCH_LINE,
    AppProcess,
    Delivery,
    FakeServer,
    Processes,
    app_env,
    assert_exactly_once,
    free_port,
    job_counts,
    per_replica,
    settled,
    tally,
    wait_until,
)
from tests.support.fakes.tembo import FakeTembo
from tests.support.stores import fresh_database

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.postgres]

REPLICAS = 3
ISSUES = 300
DOUBLED = 20  # deliveries sent to two replicas at once
LOSE_EVERY = 25  # every n-th create at Tembo is carried out but its answer is lost
KILL_AT = 100  # sessions created before the victim replica dies
VICTIM = 1
AHEAD = 150  # deliveries sent ahead of the sessions created: some are in flight at the kill
SENDERS = 12  # deliveries in flight at once
REPOS = tuple(f"acme/replica-{n}" for n in range(6))
TIMEOUT = 50.0  # for the whole run; each wait below is bounded by what is left of it


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A fresh database on the TEST_DATABASE_URL server, dropped at the end."""
    async with fresh_database() as url:
        yield url


class ReplicaTembo:
    """FakeTembo behind one base URL per replica (`/r<n>`), so the fake knows who calls.
    Loses the answer of every `LOSE_EVERY`-th create, and can `kill -9` a victim replica
    right after it has created a session, once `kill_at` sessions exist."""

    def __init__(self, tembo: FakeTembo, kill_at: int | None) -> None:
        self.tembo = tembo
        self.kill_at = kill_at
        self.replicas: list[AppProcess] = []
        self.creates: Counter[int] = Counter()
        self.lists: Counter[int] = Counter()
        self.fired = threading.Event()
        self.killed_dispatch: str | None = None
        self.killed_pids: list[int] = []
        tembo.fault = self._lose

    def _lose(self, request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and len(self.tembo.requests) % LOSE_EVERY == 0:
            self.tembo.create(json.loads(request.content))  # done on Tembo's side...
            raise httpx.ReadTimeout("the answer was lost", request=request)  # ...not answered
        return None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        replica, inner = per_replica(request)
        if request.method == "GET":
            self.lists[replica] += 1
        response = self.tembo(inner)  # may raise: a lost answer
        if request.method != "POST" or response.status_code != 200:
            return response
        self.creates[replica] += 1
        if (
            self.kill_at is not None
            and replica == VICTIM
            and not self.fired.is_set()
            and len(self.tembo.sessions) >= self.kill_at
        ):
            self.killed_pids = self.replicas[VICTIM].family()  # supervisor and children
            self.replicas[VICTIM].kill()
            self.fired.set()
            ids = DISPATCH_LINE.findall(json.loads(request.content)["prompt"])
            self.killed_dispatch = ids[-1] if ids else None
        return response


@pytest.mark.parametrize("kill", [False, True], ids=["all-live", "kill-9-one"])
async def test_three_replicas_on_one_postgres_dispatch_each_issue_exactly_once(
    kill: bool,
    app_key: KeyPair,
    tmp_path: Path,
    database_url: str,
    processes: Processes,
) -> None:
    started = time.monotonic()
    deadline = started + TIMEOUT

    def left() -> float:
        return max(deadline - time.monotonic(), 0.1)

    github = FakeGitHub(public_key=app_key.public, prefix="/api/v3")
    tembo = FakeTembo()
    for repo in REPOS:
        github.permissions[(repo, "Codertocat")] = "write"
    deliveries = [Delivery.labeled(REPOS[n % len(REPOS)], n) for n in range(1, ISSUES + 1)]
    # Spread over the run: every 15th delivery also goes to the next replica at once.
    doubled = {n * ISSUES // DOUBLED + 7 for n in range(DOUBLED)}
    router = ReplicaTembo(tembo, KILL_AT if kill else None)

    with (
        FakeServer(github) as github_server,
        FakeServer(router) as tembo_server,
        processes.shown_on_failure(),
    ):
        for n in range(REPLICAS):
            env = app_env(
                private_key=app_key.private,
                github=github,
                github_server=github_server,
                tembo=tembo,
                tembo_url=f"{tembo_server.url}/r{n}",
                database_url=database_url,
                port=free_port(),
                folder=tmp_path,
            )
            router.replicas.append(processes.start(f"replica-{n}", env))
        for replica in router.replicas:
            await replica.wait_ready(left())
        urls = [replica.url for replica in router.replicas]

        answers: dict[str, list[int | None]] = {d.id: [] for d in deliveries}
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as client:
            limit = anyio.CapacityLimiter(SENDERS)

            async def send(delivery: Delivery, replica: int) -> None:
                async with limit:
                    answers[delivery.id].append(await delivery.send(client, urls[replica]))

            async def feed() -> None:
                async with anyio.create_task_group() as group:
                    for index, delivery in enumerate(deliveries):
                        await wait_until(
                            lambda i=index: i - len(tembo.sessions) < AHEAD,
                            left(),
                            f"room to send delivery {index}",
                            every=0.005,
                        )
                        group.start_soon(send, delivery, index % REPLICAS)
                        if index in doubled:
                            group.start_soon(send, delivery, (index + 1) % REPLICAS)
                        await anyio.sleep(0)

            exit_code: int | None = None
            in_flight: dict[str, tuple[str, int]] = {}
            async with anyio.create_task_group() as feeding:
                feeding.start_soon(feed)
                if kill:
                    await wait_until(router.fired.is_set, left(), f"the kill at session {KILL_AT}")
                    exit_code = router.replicas[VICTIM].wait(10)
                    # At once: within LEASE_SECONDS nobody else may take these jobs.
                    for pid in router.killed_pids:
                        in_flight |= await _jobs(
                            database_url, "state = 'running' AND locked_by LIKE $1", f"%:{pid}:%"
                        )
            live = [url for n, url in enumerate(urls) if not (kill and n == VICTIM)]

            # What got no 2xx from any replica is sent again to a live one, as `replay` would.
            resent = [d for d in deliveries if not any(s and s < 300 for s in answers[d.id])]
            again: list[int | None] = []
            for n, delivery in enumerate(resent):
                target = live[n % len(live)]
                await wait_until(
                    lambda d=delivery, u=target: _accepted(d, client, u, again),
                    left(),
                    f"a 2xx for resent delivery {delivery.id}",
                    every=0.1,
                )

            async def finished() -> bool:
                return settled(await job_counts(client, live[0]), ISSUES)

            await wait_until(finished, left(), f"all {ISSUES} jobs ended", every=0.1)
            counts = await job_counts(client, live[0])
        processes.stop_all()  # before the fakes go away
        elapsed = time.monotonic() - started
        figures = tally(github, github_server, tembo, tembo_server)
        # The victim's jobs, as they ended: taken again by the others (attempts > 1), done.
        reclaimed = await _jobs(database_url, "delivery_id = ANY($1::text[])", list(in_flight))
        pairs = Counter(
            tuple(sorted(str(s) for s in answers[deliveries[i].id])) for i in sorted(doubled)
        )
        print(
            f"\nreplicas ({'kill -9 of one' if kill else 'all live'}): {ISSUES} issues over "
            f"{REPLICAS} replicas, {DOUBLED} sent twice at once -> {dict(pairs)}; "
            f"{len(resent)} resent (answers: {dict(Counter(str(s) for s in again))}); "
            f"{figures.sessions} sessions, {figures.comments} status "
            f"comments, {figures.linked} with their link, duplicates {figures.duplicates}; "
            f"jobs {counts}; creates by replica {dict(sorted(router.creates.items()))}, "
            f"{len(tembo.requests)} create requests, {tembo_server.lost} answers lost, "
            f"list calls {dict(sorted(router.lists.items()))}; "
            + (
                f"killed (exit {exit_code}) right after creating for {router.killed_dispatch}; "
                f"its jobs in flight -> (state, attempts) at the end: {reclaimed}; "
                if kill
                else ""
            )
            + f"{elapsed:.1f} s"
        )
        assert github_server.errors == []
        assert tembo_server.errors == []

    expected = {d.dispatch_id for d in deliveries}
    assert_exactly_once(figures, expected, counts, ISSUES)
    assert tembo_server.lost > 0
    if kill:
        assert router.killed_dispatch is not None and router.killed_dispatch in expected
        assert exit_code == -9
        assert router.killed_dispatch.removeprefix("gh-") in in_flight
        assert reclaimed.keys() == in_flight.keys()
        assert all(state == "done" and attempts > 1 for state, attempts in reclaimed.values())
    else:
        # The same delivery at two replicas at once: one queues it, the other says duplicate.
        assert pairs == {("200", "202"): DOUBLED}
        assert all(router.creates[n] > 0 for n in range(REPLICAS))


async def _accepted(
    delivery: Delivery, client: httpx.AsyncClient, url: str, seen: list[int | None]
) -> bool:
    status = await delivery.send(client, url)
    seen.append(status)
    return status is not None and status < 300


async def _jobs(database_url: str, where: str, value: object) -> dict[str, tuple[str, int]]:
    """delivery id -> (state, attempts) of the jobs matching `where` (one `$1`)."""
    db = await asyncpg.connect(database_url, timeout=5)
    try:
        rows = await db.fetch(
            f"SELECT delivery_id, state, attempts FROM jobs WHERE {where}",  # noqa: S608
            value,
        )
    finally:
        await db.close()
    return {row["delivery_id"]: (row["state"], row["attempts"]) for row in rows}
