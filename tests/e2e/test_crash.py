"""Issue 6, "Crash": `kill -9` the real server in the middle of dispatching, start it again
on the same database, and count what GitHub and Tembo saw: one session per issue and one
status comment with its link, nothing lost, nothing twice.

The app runs as `python -m bot serve` in a child process, talking over real HTTP to the
loopback fakes. The kill is fired by the Tembo fake itself when it has just created the
60th session and before it answers, so at least one job dies in the most dangerous
window there is: the session exists, the app does not know it. Creates are held 5-20 ms
after the fact, so the other jobs in flight are likely to be caught in that window too.
Figures are printed for the record (run with -s).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

import anyio
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
    settled,
    tally,
    wait_until,
)
from tests.support.fakes.tembo import FakeTembo

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ISSUES = 200
KILL_AT = 60  # sessions created when the server dies
AHEAD = 100  # deliveries sent ahead of the sessions created: some are in flight at the kill
REPOS = tuple(f"acme/crash-{n}" for n in range(5))
TIMEOUT = 45.0  # for the whole run; each wait below is bounded by what is left of it


class KillOnCreate:
    """FakeTembo, plus: when the `at`-th session has just been created, `kill -9` the
    victim before the answer leaves (the session exists; the app never hears of it)."""

    def __init__(self, tembo: FakeTembo, at: int) -> None:
        self.tembo = tembo
        self.at = at
        self.victim: AppProcess | None = None
        self.fired = threading.Event()
        self.killed_dispatch: str | None = None
        self.killed_pids: list[int] = []
        self.lists = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        response = self.tembo(request)
        if request.method == "GET":
            self.lists += 1
        elif (
            response.status_code == 200
            and self.victim is not None
            and not self.fired.is_set()
            and len(self.tembo.sessions) >= self.at
        ):
            self.killed_pids = self.victim.family()  # supervisor, ingest, worker
            self.victim.kill()
            self.fired.set()
            ids = DISPATCH_LINE.findall(json.loads(request.content)["prompt"])
            self.killed_dispatch = ids[-1] if ids else None
        return response


async def test_kill_9_mid_dispatch_and_restart_give_one_session_and_one_link_per_issue(
    app_key: KeyPair, tmp_path: Path, processes: Processes
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
    killer = KillOnCreate(tembo, KILL_AT)
    database = tmp_path / "store.db"
    rng = random.Random(6)  # used on the server thread only

    def hold(request: httpx.Request, response: httpx.Response) -> float:
        return rng.uniform(0.005, 0.02) if request.method == "POST" else 0.0

    def hold_comment(request: httpx.Request, response: httpx.Response) -> float:
        # A new status comment exists, its id not yet recorded: the other window.
        created = request.method == "POST" and request.url.path.endswith("/comments")
        return 0.005 if created else 0.0

    with (
        FakeServer(github, delay=hold_comment) as github_server,
        FakeServer(killer, delay=hold) as tembo_server,
        processes.shown_on_failure(),
    ):
        env = app_env(
            private_key=app_key.private,
            github=github,
            github_server=github_server,
            tembo=tembo,
            tembo_url=tembo_server.url,
            database_url=f"sqlite:///{database}",
            port=free_port(),
            folder=tmp_path,
        )
        first = processes.start("app-1", env)
        killer.victim = first
        await first.wait_ready(left())

        unanswered: list[Delivery] = []
        statuses: list[int | None] = []
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as client:

            async def feed() -> None:
                for index, delivery in enumerate(deliveries):
                    await wait_until(
                        lambda i=index: i - len(tembo.sessions) < AHEAD,
                        left(),
                        f"room to send delivery {index}",
                        every=0.005,
                    )
                    status = await delivery.send(client, first.url)
                    statuses.append(status)
                    if status is None or status >= 300:
                        unanswered.append(delivery)

            async with anyio.create_task_group() as group:
                group.start_soon(feed)
                await wait_until(killer.fired.is_set, left(), f"the kill at session {KILL_AT}")
                exit_code = first.wait(10)
                at_kill = tally(github, github_server, tembo, tembo_server)
                in_flight: dict[str, tuple[str, int]] = {}
                for pid in killer.killed_pids:
                    in_flight |= _jobs(database, "state = 'running' AND locked_by LIKE ?", pid)
                second = processes.start("app-2", env)  # same port, same database
                await second.wait_ready(left())
            assert second.url == first.url

            # What did not get a 2xx is sent again, as `replay` would.
            resent = list(unanswered)
            again: list[int | None] = []
            for delivery in resent:
                await wait_until(
                    lambda d=delivery: _accepted(d, client, second.url, again),
                    left(),
                    f"a 2xx for resent delivery {delivery.id}",
                    every=0.1,
                )

            async def finished() -> bool:
                return settled(await job_counts(client, second.url), ISSUES)

            await wait_until(finished, left(), f"all {ISSUES} jobs ended", every=0.1)
            counts = await job_counts(client, second.url)
        processes.stop_all()  # before the fakes go away
        elapsed = time.monotonic() - started
        figures = tally(github, github_server, tembo, tembo_server)
        # The killed process's jobs, as they ended: taken again (attempts > 1) and done.
        reclaimed = {d: _jobs(database, "delivery_id = ?", d)[d] for d in in_flight}
        creates = len(tembo.requests)
        print(
            f"\ncrash: {ISSUES} issues, kill -9 (exit {exit_code}) at {at_kill.sessions} "
            f"sessions / {at_kill.comments} comments; {len(resent)} deliveries without a 2xx "
            f"resent (answers first: {_histogram(statuses)}, on resending: {_histogram(again)}); "
            f"after restart: "
            f"{figures.sessions} sessions, {figures.comments} status comments, "
            f"{figures.linked} with their link, duplicates {figures.duplicates}; "
            f"jobs {counts}; {creates} creates, {killer.lists} list calls, "
            f"{len(github.reactions)} reactions, "
            f"killed in the window: {killer.killed_dispatch}; jobs in flight at the kill -> "
            f"(state, attempts) at the end: {reclaimed}; {elapsed:.1f} s"
        )
        assert github_server.errors == []
        assert tembo_server.errors == []

    expected = {d.dispatch_id for d in deliveries}
    assert_exactly_once(figures, expected, counts, ISSUES)
    assert killer.killed_dispatch is not None and killer.killed_dispatch in expected
    assert exit_code == -9
    assert killer.killed_dispatch.removeprefix("gh-") in in_flight
    assert all(state == "done" and attempts > 1 for state, attempts in reclaimed.values())


async def _accepted(
    delivery: Delivery, client: httpx.AsyncClient, url: str, seen: list[int | None]
) -> bool:
    status = await delivery.send(client, url)
    seen.append(status)
    return status is not None and status < 300


def _histogram(statuses: list[int | None]) -> dict[str, int]:
    found: dict[str, int] = {}
    for status in statuses:
        key = "none" if status is None else str(status)
        found[key] = found.get(key, 0) + 1
    return found


def _jobs(database: Path, where: str, value: object) -> dict[str, tuple[str, int]]:
    """delivery id -> (state, attempts) of the jobs matching `where` (one `?`); a pid
    matches the workers of that process (worker names are host:pid:object)."""
    if isinstance(value, int):
        value = f"%:{value}:%"
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as db:
        rows = db.execute(
            f"SELECT delivery_id, state, attempts FROM jobs WHERE {where}",  # noqa: S608
            (value,),
        ).fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}


def _worker_child(app: AppProcess) -> int | None:
    for pid in app.family()[1:]:
        with contextlib.suppress(OSError):
            if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                return pid
    return None


async def test_kill_9_of_the_worker_child_is_restarted_and_sigterm_drains_the_rest(
    app_key: KeyPair, tmp_path: Path, processes: Processes
) -> None:
    deadline = time.monotonic() + TIMEOUT

    def left() -> float:
        return max(deadline - time.monotonic(), 0.1)

    github = FakeGitHub(public_key=app_key.public, prefix="/api/v3")
    tembo = FakeTembo()
    repo = REPOS[0]
    github.permissions[(repo, "Codertocat")] = "write"
    deliveries = [Delivery.labeled(repo, n) for n in range(1, 41)]
    with (
        FakeServer(github) as github_server,
        FakeServer(tembo) as tembo_server,
        processes.shown_on_failure(),
    ):
        env = app_env(
            private_key=app_key.private,
            github=github,
            github_server=github_server,
            tembo=tembo,
            tembo_url=tembo_server.url,
            database_url=f"sqlite:///{tmp_path / 'store.db'}",
            port=free_port(),
            folder=tmp_path,
        )
        app = processes.start("app", env, ("serve", "--separate"))
        await app.wait_ready(left())
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as client:
            for delivery in deliveries[:20]:
                assert await delivery.send(client, app.url) == 202
            await wait_until(lambda: len(tembo.sessions) >= 5, left(), "five sessions")
            first = _worker_child(app)
            assert first is not None
            os.kill(first, signal.SIGKILL)
            await wait_until(
                lambda: _worker_child(app) not in (None, first), left(), "a new worker"
            )
            for delivery in deliveries[20:]:  # ingest never stopped answering
                assert await delivery.send(client, app.url) == 202

            async def finished() -> bool:
                return settled(await job_counts(client, app.url), 40)

            await wait_until(finished, left(), "all 40 jobs ended", every=0.1)
            counts = await job_counts(client, app.url)
        family = app.family()
        assert app.proc is not None
        app.proc.send_signal(signal.SIGTERM)
        assert app.wait(25) == 0
        assert not [pid for pid in family if Path(f"/proc/{pid}").exists()]
        figures = tally(github, github_server, tembo, tembo_server)
    assert_exactly_once(figures, {d.dispatch_id for d in deliveries}, counts, 40)
