"""Nothing lost, nothing twice: dense faults from GitHub and Tembo, a redelivery storm,
and shutdown in the middle of a job. Figures are printed for the record (run with -s)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.app import create_app, runtime_of
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import Harness, signed_headers
from tests.support.fakes import error, route
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo
from tests.support.stores import Backend

pytestmark = pytest.mark.anyio
ISSUES = int(os.environ.get("SOAK_ISSUES", "200"))


@pytest.fixture
async def faulty(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo, backend: Backend
) -> AsyncIterator[Harness]:
    """The app with a seeded fault plan on both fakes, on each store."""
    rng = random.Random(20261126)
    secondary_limit_sent = [False]

    def github_fault(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.startswith("/app/"):
            return None
        if request.method == "POST" and not secondary_limit_sent[0] and rng.random() < 0.02:
            secondary_limit_sent[0] = True
            return error(403, "You have exceeded a secondary rate limit.", **{"retry-after": "1"})
        if rng.random() < 0.10:
            return error(502, "Server Error")
        return None

    def tembo_fault(request: httpx.Request) -> httpx.Response | None:
        if request.method != "POST":
            return None
        roll = rng.random()
        if roll < 0.30:
            return httpx.Response(500, json={"error": "Internal server error"})
        if roll < 0.40:
            return httpx.Response(
                429, json={"error": "Too many requests"}, headers={"retry-after": "1"}
            )
        if roll < 0.45:
            tembo.create(json.loads(request.content))  # done on Tembo's side...
            raise httpx.ReadTimeout("the answer was lost", request=request)  # ...answer lost
        return None

    github.fault = github_fault
    tembo.fault = tembo_fault
    tuned = settings.replace(max_attempts=25, worker_concurrency=8)
    http = httpx.AsyncClient(transport=route({github.host: github, tembo.host: tembo}))
    app = create_app(tuned, http=http, store=backend.open(), content_per_minute=0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Harness(app, client, github, tembo)
        assert secondary_limit_sent[0], "the plan should have sent one secondary-limit 403"
    await http.aclose()


async def test_dense_faults_still_give_one_session_and_one_link_per_issue(
    faulty: Harness,
) -> None:
    started = time.monotonic()
    for number in range(1, ISSUES + 1):
        repo = f"acme/repo-{number % 10}"
        faulty.github.permissions[(repo, "Codertocat")] = "write"
        response = await faulty.deliver("issues", payloads.labeled(repo=repo, number=number))
        assert response.status_code == 202
    await faulty.settle(timeout=60 + ISSUES / 2)
    elapsed = time.monotonic() - started

    prompts = [s["prompt"] for s in faulty.tembo.sessions]
    per_issue = Counter(p.split(" to resolve issue #")[1].split(":")[0] for p in prompts)
    per_dispatch = Counter(p.rsplit("dispatch-id: ", 1)[1].strip() for p in prompts)
    comments = faulty.github.app_comments()
    links = {s["htmlUrl"] for s in faulty.tembo.sessions}
    linked = [c for c in comments if any(url in c.body for url in links)]
    counts = await runtime_of(faulty.app).store.job_counts("delivery")
    print(
        f"\nfaults: {ISSUES} issues, {len(faulty.tembo.sessions)} sessions, "
        f"{len(comments)} status comments, {len(linked)} with their link, "
        f"duplicates {sum(n - 1 for n in per_issue.values())}, jobs {counts}, "
        f"{len(faulty.tembo.requests)} create requests, {len(faulty.github.calls)} GitHub calls, "
        f"{elapsed:.1f} s"
    )
    assert [k for k, n in per_dispatch.items() if n > 1] == []
    assert len(faulty.tembo.sessions) == ISSUES
    assert set(per_issue.values()) == {1}
    assert len(comments) == ISSUES
    assert len(linked) == ISSUES
    assert counts == {"done": ISSUES}
    # The usage ledger: one dispatch row per session the platform holds, naming it, and
    # none for a create whose answer was lost and was then found by the lookup twice.
    rows = await runtime_of(faulty.app).store.usage(0)
    dispatched = [r for r in rows if r.kind == "dispatch"]
    assert sorted(r.session_id for r in dispatched) == sorted(
        s["id"] for s in faulty.tembo.sessions
    )
    assert sorted(r.dispatch_id or "" for r in dispatched) == sorted(per_dispatch)
    assert [r.kind for r in rows if r.kind != "dispatch"] == []


async def test_the_same_delivery_fifty_times_at_once_makes_one_session(harness: Harness) -> None:
    harness.github.permissions[("Codertocat/Hello-World", "Codertocat")] = "write"
    body = json.dumps(payloads.labeled()).encode()
    headers = signed_headers(body, "issues", str(uuid.uuid4()))
    answers = await asyncio.gather(
        *(harness.client.post("/webhook", content=body, headers=headers) for _ in range(50))
    )
    await harness.settle()
    assert sorted(Counter(a.status_code for a in answers).items()) == [(200, 49), (202, 1)]
    assert len(harness.tembo.sessions) == 1
    assert len(harness.github.app_comments()) == 1


async def test_shutdown_mid_job_hands_the_job_back_and_a_restart_finishes_it(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    github.permissions[("Codertocat/Hello-World", "Codertocat")] = "write"
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow_tembo(request: httpx.Request) -> httpx.Response:
        entered.set()
        await release.wait()
        return tembo(request)

    class Transport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await request.aread()
            if request.url.host == tembo.host:
                return await slow_tembo(request)
            return github(request)

    http = httpx.AsyncClient(transport=Transport())
    app = create_app(settings, http=http, content_per_minute=0)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            body = json.dumps(payloads.labeled()).encode()
            await c.post("/webhook", content=body, headers=signed_headers(body, "issues"))
        await entered.wait()
        worker = runtime_of(app).worker
        assert worker is not None
        await worker.stop(grace=0.05)  # the Tembo call is still hanging
        counts = await runtime_of(app).store.job_counts("delivery")
        assert counts == {"queued": 1}
    assert tembo.sessions == []

    release.set()
    again = create_app(settings, http=http, content_per_minute=0)
    async with again.router.lifespan_context(again):
        worker = runtime_of(again).worker
        assert worker is not None
        await asyncio.wait_for(worker.idle.wait(), 10)
        assert await runtime_of(again).store.job_counts("delivery") == {"done": 1}
    assert len(tembo.sessions) == 1
    assert len(github.app_comments()) == 1
    await http.aclose()
