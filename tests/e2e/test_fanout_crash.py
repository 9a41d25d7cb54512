"""Fan-out under faults and a crash: issues fanned out to Tembo, Devin and Agen through a
real `python -m bot serve` process, while every platform answers 30% of its creates with
a 5xx and loses another 10% of its answers after doing the work, and the server is killed
with `kill -9` in the middle of the run, then started again on the same database.

Counted at the fakes: exactly one session per platform per issue (three per issue), no
dispatch id with two sessions, and one status comment (a table of three rows) per issue.
The kill is fired by the Devin fake when it has just created a session and before it
answers, so at least one job dies with a session the app has not heard of. Figures are
printed for the record (run with -s).
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.support.app import KeyPair
from tests.support.fakes import server
from tests.support.fakes.agen import FakeAgen
from tests.support.fakes.devin import FakeDevin
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo
from tests.support.stores import fresh_database

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ISSUES = 36
PLATFORMS = ("tembo", "devin", "agen")
KILL_AT = 15  # Devin sessions created when the server dies
REPOS = tuple(f"acme/fan-{n}" for n in range(3))
TIMEOUT = 90.0
ROW = "\n| "


Fault = Callable[[httpx.Request], "httpx.Response | None"]


def faults(seed: int, do: Callable[[httpx.Request], Any]) -> Fault:
    """30% of creates answer 5xx; 10% are carried out (`do`) and their answer lost."""
    rng = random.Random(seed)  # used on that fake's server thread only

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method != "POST":
            return None
        roll = rng.random()
        if roll < 0.30:
            return httpx.Response(rng.choice((500, 502, 503)), json={"error": "unavailable"})
        if roll < 0.40:
            do(request)
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return None

    return fault


class KillAfterDevin:
    """FakeDevin, plus: when the `at`-th session has just been created, `kill -9` the victim
    before the answer leaves."""

    def __init__(self, devin: FakeDevin, at: int) -> None:
        self.devin = devin
        self.at = at
        self.victim: server.AppProcess | None = None
        self.fired = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        response = self.devin(request)
        if (
            request.method == "POST"
            and response.status_code == 200
            and self.victim is not None
            and not self.fired.is_set()
            and len(self.devin.sessions) >= self.at
        ):
            self.victim.kill()
            self.fired.set()
        return response


def dispatch_ids(prompts: list[str]) -> Counter[str]:
    found: Counter[str] = Counter()
    for prompt in prompts:
        ids = server.DISPATCH_LINE.findall(prompt)
        found[ids[-1] if ids else "(no dispatch-id line)"] += 1
    return found


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Where the app processes keep their state: a SQLite file, or a fresh PostgreSQL
    database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    async with fresh_database() as url:
        yield url


async def test_fan_out_to_three_platforms_under_faults_and_kill_9_is_exactly_once(
    app_key: KeyPair, tmp_path: Path, processes: server.Processes, database: str
) -> None:
    started, left = time.monotonic(), server.time_left(TIMEOUT)
    github = FakeGitHub(public_key=app_key.public, prefix="/api/v3")
    tembo, devin, agen = FakeTembo(), FakeDevin(), FakeAgen()
    for repo in REPOS:
        github.permissions[(repo, "Codertocat")] = "write"
        github.files[(repo, ".github/tembo.yml")] = "platform: [tembo, devin, agen]\n"
    tembo.fault = faults(1, lambda r: tembo.create(json.loads(r.content)))
    devin.fault = faults(2, devin.answer)
    agen.fault = faults(3, agen.answer)
    killer = KillAfterDevin(devin, KILL_AT)
    deliveries = [server.Delivery.labeled(REPOS[n % len(REPOS)], n) for n in range(1, ISSUES + 1)]

    with contextlib.ExitStack() as stack:
        fakes = {"github": github, "tembo": tembo, "devin": killer, "agen": agen}
        served = {name: stack.enter_context(server.FakeServer(f)) for name, f in fakes.items()}
        stack.enter_context(processes.shown_on_failure())
        github_server, tembo_server = served["github"], served["tembo"]
        devin_server, agen_server = served["devin"], served["agen"]
        platforms = {"DEVIN": (devin.api_key, devin_server), "AGEN": (agen.api_key, agen_server)}
        extra = {f"{name}_API_KEY": key for name, (key, _) in platforms.items()}
        extra |= {f"{name}_BASE_URL": server.url for name, (_, server) in platforms.items()}
        env = server.app_env(
            private_key=app_key.private,
            **{"github": github, "github_server": github_server, "tembo": tembo},
            tembo_url=tembo_server.url,
            database_url=database,
            port=server.free_port(),
            folder=tmp_path,
            MAX_ATTEMPTS="30",
            **extra,
        )
        first = processes.start("app-1", env)
        killer.victim = first
        await first.wait_ready(left())

        unanswered: list[server.Delivery] = []
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as client:

            async def feed() -> None:
                for delivery in deliveries:
                    status = await delivery.send(client, first.url)
                    if status is None or status >= 300:
                        unanswered.append(delivery)
                    await anyio.sleep(0.02)

            async with anyio.create_task_group() as group:
                group.start_soon(feed)
                await server.wait_until(killer.fired.is_set, left(), f"the kill at {KILL_AT}")
                exit_code = first.wait(10)
                devin_at_kill = devin_server.snapshot(lambda: len(devin.sessions))
                second = processes.start("app-2", env)  # same port, same database
                await second.wait_ready(left())

            # What got no 2xx is sent again, as `replay` would.
            await server.resend_until_accepted(unanswered, client, second.url, left)
            counts = await server.until_settled(client, second.url, ISSUES, left)
        processes.stop_all()  # before the fakes go away

        per_platform = {
            "tembo": dispatch_ids(
                tembo_server.snapshot(lambda: [s["prompt"] for s in tembo.sessions])
            ),
            "devin": dispatch_ids(
                devin_server.snapshot(lambda: [s["body"]["prompt"] for s in devin.sessions])
            ),
        }
        agen_branches: Counter[str] = agen_server.snapshot(
            lambda: Counter(s["branch_name"] for s in agen.sessions)
        )
        per_platform["agen"] = agen_server.snapshot(
            lambda: dispatch_ids(
                [agen.prompts(s["id"])[0] for s in agen.sessions if agen.prompts(s["id"])]
            )
        )
        comments = github_server.snapshot(
            lambda: [(c.repo, c.issue, c.body) for c in github.app_comments()]
        )
        lost = (tembo_server.lost, devin_server.lost, agen_server.lost)
        errors = tembo_server.errors + devin_server.errors + agen_server.errors
        errors += github_server.errors

    expected = {d.dispatch_id for d in deliveries}
    sessions = {name: sum(found.values()) for name, found in per_platform.items()}
    duplicates = sum(n - 1 for found in per_platform.values() for n in found.values() if n > 1)
    duplicates += sum(n - 1 for n in agen_branches.values() if n > 1)
    per_issue = Counter((repo, issue) for repo, issue, _ in comments)
    print(
        f"\nfan-out crash: {ISSUES} issues x {len(PLATFORMS)} platforms, kill -9 (exit "
        f"{exit_code}) at {devin_at_kill} Devin sessions; {len(unanswered)} deliveries resent; "
        f"sessions {sessions}, duplicates {duplicates}, status comments {len(comments)} "
        f"(issues with more than one: {sum(1 for n in per_issue.values() if n > 1)}); "
        f"answers lost on purpose (tembo, devin, agen) {lost}; jobs {counts}; "
        f"{time.monotonic() - started:.1f} s"
    )
    assert errors == []
    assert exit_code == -9
    for name in PLATFORMS:
        assert set(per_platform[name]) == {f"{ident}-{name}" for ident in expected}, name
        assert set(per_platform[name].values()) == {1}, name
    assert len(agen_branches) == ISSUES and set(agen_branches.values()) == {1}
    assert duplicates == 0
    assert len(comments) == ISSUES and set(per_issue.values()) == {1}
    for _, _, body in comments:
        marker = server.COMMENT_MARKER.search(body)
        assert marker is not None and marker[1] in expected
        assert body.count(ROW) == 1 + len(PLATFORMS)  # the header, then one row each
        assert body.count("🚀 started") == len(PLATFORMS)
    assert counts is not None and counts.get("done") == ISSUES
