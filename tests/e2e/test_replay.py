"""`replay`: failed and missing deliveries are redelivered, and only those."""

from __future__ import annotations

import time

import httpx
import pytest

from bot.adapters.github import GitHubClient
from bot.adapters.store_sqlite import SQLiteStore
from bot.operator.replay import parse_duration, replay
from bot.settings import Settings
from tests.support.fakes.github import FakeGitHub

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("6h", 21600), ("2d", 172800)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "6", "h", "-1h", "1w"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


async def test_failed_and_missing_deliveries_are_redelivered_and_nothing_else(
    settings: Settings, github: FakeGitHub, tmp_path: object
) -> None:
    store = SQLiteStore(settings.database_url.removeprefix("sqlite:///"))
    await store.migrate()
    ok = github.add_hook_delivery("ok", 202, age=60)
    failed = github.add_hook_delivery("failed", 503, age=120)
    github.add_hook_delivery("retried", 502, age=300)
    github.add_hook_delivery("retried", 202, age=200)  # a later attempt got through
    stored = github.add_hook_delivery("stored", 500, age=400)  # lost answer, but stored
    await store.enqueue("stored", "issues", "labeled", b"{}", None, time.time())
    for n in range(150):  # enough to need a second page
        github.add_hook_delivery(f"ok-{n}", 200, age=500 + n)
    old = github.add_hook_delivery("too-old", 500, age=8 * 3600)

    async with httpx.AsyncClient(transport=httpx.MockTransport(github)) as http:
        report = await replay(GitHubClient(settings, http), store, time.time() - 6 * 3600)
    await store.close()

    assert report.redelivered == ["failed"]
    assert github.redelivered == [failed["id"]]
    assert sorted(report.failed) == ["failed", "stored"]
    assert report.listed == 155
    assert {ok["id"], stored["id"], old["id"]}.isdisjoint(github.redelivered)
    assert github.count("GET", "/app/hook/deliveries") == 2


async def test_running_replay_twice_is_safe(settings: Settings, github: FakeGitHub) -> None:
    store = SQLiteStore(settings.database_url.removeprefix("sqlite:///"))
    await store.migrate()
    github.add_hook_delivery("failed", 503, age=60)
    async with httpx.AsyncClient(transport=httpx.MockTransport(github)) as http:
        client = GitHubClient(settings, http)
        first = await replay(client, store, time.time() - 3600, dry_run=True)
        assert github.redelivered == []
        second = await replay(client, store, time.time() - 3600)
    await store.close()
    assert first.redelivered == second.redelivered == ["failed"]
