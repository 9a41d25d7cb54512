"""Fallback through the real app (`python -m bot serve` in a child process, fakes over
loopback HTTP), on SQLite and on PostgreSQL: a 401, and every attempt MAX_ATTEMPTS allows
spent on 503s, each start the session on the next `fallback:` platform and the status
comment says what happened; a create whose answer was lost, which the platform's lookup
cannot prove absent, never falls back. The attempts and statuses that decide it live in
the job's journal, in the store.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.adapters.store import open_store
from bot.ledger import LedgerRow
from tests.support.app import KeyPair
from tests.support.fakes import server
from tests.support.fakes.agen import FakeAgen
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
REPO = "acme/web"
ATTEMPTS = 3
Fault = Callable[[httpx.Request], httpx.Response | None]


@dataclass
class Seen:
    """What came of one labelled issue."""

    agen: FakeAgen
    comments: list[str]
    jobs: dict[str, int]  # jobs by state, the states with none left out
    rows: list[LedgerRow]  # the usage ledger


Run = Callable[[FakeTembo], Awaitable[Seen]]


@pytest.fixture
def run(app_key: KeyPair, database_url: str, processes: server.Processes, tmp_path: Path) -> Run:
    async def one(tembo: FakeTembo) -> Seen:
        """One labelled issue through a real app in front of `tembo`, Agen behind it."""
        github = FakeGitHub(public_key=app_key.public, prefix="/api/v3")
        github.files[(REPO, ".github/tembo.yml")] = "platform: tembo\nfallback: [agen]\n"
        github.permissions[(REPO, "Codertocat")] = "write"
        agen = FakeAgen()
        with (
            server.FakeServer(agen) as agen_server,
            server.FakeServer(github) as github_server,
            server.FakeServer(tembo) as tembo_server,
            processes.shown_on_failure(),
        ):
            fakes = server.Loopback(app_key.private, github, github_server, tembo, tembo_server.url)
            env = fakes.env(
                database_url,
                tmp_path,
                AGEN_API_KEY=agen.api_key,
                AGEN_BASE_URL=agen_server.url,
                MAX_ATTEMPTS=str(ATTEMPTS),
                RETRY_BASE_SECONDS="0.02",
            )
            app = processes.start("app", env)
            await app.wait_ready(30)
            async with httpx.AsyncClient(trust_env=False, timeout=10.0) as client:
                assert await server.Delivery.labeled(REPO, 1).send(client, app.url) == 202

                async def ended() -> bool:
                    return server.settled(await server.job_counts(client, app.url), 1)

                await server.wait_until(ended, 30, "the delivery's job ended", every=0.05)
                gauges = await server.job_counts(client, app.url) or {}
            processes.stop_all()
            comments = github_server.snapshot(lambda: [c.body for c in github.app_comments(REPO)])
        store = open_store(database_url)
        try:
            rows = await store.usage(0)
        finally:
            await store.close()
        return Seen(agen, comments, {k: n for k, n in gauges.items() if n}, rows)

    return one


def creates(answer: Fault) -> Fault:
    """A fault on Tembo's creates only (its lookups answer as documented)."""
    return lambda request: answer(request) if request.method == "POST" else None


async def test_every_attempt_spent_on_503s_starts_the_session_on_the_fallback_platform(
    run: Run,
) -> None:
    tembo = FakeTembo(fault=creates(lambda r: httpx.Response(503, json={"error": "down"})))
    seen = await run(tembo)
    assert len(tembo.requests) == ATTEMPTS  # one create per attempt, then no more
    assert tembo.sessions == []
    assert len(seen.agen.sessions) == 1
    [comment] = seen.comments
    assert "Tembo answered 503 three times; started on Agen instead" in comment
    assert seen.agen.sessions[0]["id"] in comment
    assert seen.jobs == {"done": 1}
    assert [(r.kind, r.platform, r.outcome) for r in seen.rows] == [
        ("fallback", "tembo", "fell back to agen"),
        ("dispatch", "agen", "created"),
    ]
    assert seen.rows[1].session_id == seen.agen.sessions[0]["id"]


async def test_a_401_starts_the_session_on_the_fallback_platform(run: Run) -> None:
    tembo = FakeTembo(fault=creates(lambda r: httpx.Response(401, json={"error": "bad key"})))
    seen = await run(tembo)
    assert len(tembo.requests) == 1
    assert len(seen.agen.sessions) == 1
    [comment] = seen.comments
    assert "Tembo answered 401; started on Agen instead" in comment
    assert seen.jobs == {"done": 1}
    assert [(r.kind, r.platform) for r in seen.rows] == [
        ("fallback", "tembo"),
        ("dispatch", "agen"),
    ]


async def test_a_create_whose_answer_was_lost_and_cannot_be_looked_up_never_falls_back(
    run: Run,
) -> None:
    """The first create is carried out but its answer is lost; from then on Tembo answers
    503 to everything, lookups included, so nothing proves the session absent: a second
    session on Agen could run the work twice."""
    tembo = FakeTembo()

    def lost_then_down(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and len(tembo.requests) == 1:
            tembo.create(json.loads(request.content))  # done on Tembo's side...
            raise httpx.ReadTimeout("the answer was lost", request=request)  # ...not answered
        return httpx.Response(503, json={"error": "Service Unavailable"})

    tembo.fault = lost_then_down
    seen = await run(tembo)
    assert len(tembo.sessions) == 1
    assert tembo.calls.count(("GET", "/session/search")) >= ATTEMPTS - 1  # looked up
    assert seen.agen.requests == []
    assert seen.jobs == {"dead": 1}
    [comment] = seen.comments
    assert "gave up after 3 attempts" in comment
    assert [(r.kind, r.platform, r.outcome) for r in seen.rows] == [("refusal", "tembo", "gave up")]
