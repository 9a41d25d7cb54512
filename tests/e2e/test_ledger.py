"""The usage ledger end to end: a dispatch, its pull request, a follow-up, a stop and a
refusal each leave one row, and `python -m bot report` prints them."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from bot.app import create_app
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import Clock, Harness
from tests.support.fakes import error, route
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo

pytestmark = pytest.mark.anyio
REPO = "acme/web"


@dataclass
class World:
    harness: Harness
    clock: Clock
    settings: Settings

    async def tick(self, seconds: float) -> None:
        self.clock.now += seconds
        worker = self.harness.runtime.worker
        assert worker is not None
        worker.notify()
        await self.harness.settle()

    async def comment(self, body: str, comment_id: int) -> None:
        payload = payloads.comment(body, repo=REPO, comment_id=comment_id)
        await self.harness.deliver("issue_comment", payload)
        await self.harness.settle()


@pytest.fixture
async def world(settings: Settings, github: FakeGitHub, tembo: FakeTembo) -> AsyncIterator[World]:
    clock = Clock()
    github.clock = clock
    github.permissions[(REPO, "Codertocat")] = "write"
    http = httpx.AsyncClient(transport=route({github.host: github, tembo.host: tembo}))
    app = create_app(settings, http=http, content_per_minute=0, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield World(Harness(app, client, github, tembo), clock, settings)
    await http.aclose()


def report(settings: Settings, fmt: str) -> str:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "LOG_LEVEL": "error"}
    result = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "bot", "report", "--since", "7d", "--format", fmt],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout


async def test_each_act_is_one_ledger_row_and_the_report_prints_them(world: World) -> None:
    await world.harness.deliver("issues", payloads.labeled(repo=REPO))
    await world.harness.settle()
    [session] = world.harness.tembo.sessions
    pr = "https://github.com/acme/web/pull/9"
    world.harness.tembo.advance(session["id"], state="inProgress", pull_requests=[pr])
    await world.tick(31)
    await world.comment("/tembo also cover Safari", 77)
    await world.comment("/tembo stop", 78)

    rows = await world.harness.runtime.store.usage(0)
    assert [(r.kind, r.outcome) for r in rows] == [
        ("dispatch", "created"),
        ("follow_up", "sent"),
        ("stop", "stopped"),
    ]
    assert {r.session_id for r in rows} == {session["id"]}
    assert {(r.repo, r.issue, r.sender, r.platform) for r in rows} == {
        (REPO, 1, "Codertocat", "tembo")
    }
    assert rows[0].pr_url == pr
    assert rows[0].installation_id == payloads.INSTALLATION_ID

    printed = list(csv.DictReader(io.StringIO(report(world.settings, "csv"))))
    assert [(r["kind"], r["session_id"], r["pr_url"]) for r in printed] == [
        ("dispatch", session["id"], pr),
        ("follow_up", session["id"], ""),
        ("stop", session["id"], ""),
    ]
    as_json = json.loads(report(world.settings, "json"))
    assert [r["outcome"] for r in as_json] == ["created", "sent", "stopped"]
    table = report(world.settings, "table")
    assert table.splitlines()[0].split()[:3] == ["at", "installation_id", "repo"]
    assert table.rstrip().endswith("3 rows")


async def test_a_platform_refusal_is_a_ledger_row_with_the_status(world: World) -> None:
    world.harness.tembo.fault = lambda request: error(403, "Forbidden")
    await world.harness.deliver("issues", payloads.labeled(repo=REPO))
    await world.harness.settle()
    [row] = await world.harness.runtime.store.usage(0)
    assert (row.kind, row.outcome, row.platform, row.session_id) == (
        "refusal",
        "refused",
        "tembo",
        "",
    )
    assert row.detail.startswith("403")


async def test_the_status_page_shows_the_last_day_per_repository(world: World) -> None:
    await world.harness.deliver("issues", payloads.labeled(repo=REPO))
    await world.harness.settle()
    page = await world.harness.client.get("/")
    assert page.status_code == 200
    assert "<table id='usage'>" in page.text
    assert "<td>acme/web</td><td>1</td>" in page.text
