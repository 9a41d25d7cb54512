"""Fan-out end to end, on both stores: `platform: [a, b, c]` (or `/tembo platform=a,b`)
starts one session on each platform for one trigger, announced in one status comment
holding a table; each session's follow edits its own row; `/tembo pick` marks the winner
and stops the others where their platform can stop.

Time is a hand-moved clock shared by the app and the GitHub fake, as in test_follow."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.actions import create as create_step
from bot.app import create_app
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import Clock, Harness
from tests.support.fakes import route
from tests.support.fakes.agen import FakeAgen
from tests.support.fakes.cursor import FakeCursor
from tests.support.fakes.devin import FakeDevin
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.jules import FakeJules
from tests.support.fakes.magnet import FakeMagnet
from tests.support.fakes.tembo import FakeTembo
from tests.support.stores import Backend

pytestmark = pytest.mark.anyio
REPO = "acme/web"
CONFIG = ".github/tembo.yml"
PULL = "https://github.com/acme/web/pull/9"
ROW = re.compile(r"^\| (?!platform |---)(.+)$", re.MULTILINE)


@dataclass
class World:
    harness: Harness
    clock: Clock
    tembo: FakeTembo
    devin: FakeDevin
    agen: FakeAgen
    cursor: FakeCursor
    jules: FakeJules
    magnet: FakeMagnet  # takes no follow-up messages

    @property
    def github(self) -> FakeGitHub:
        return self.harness.github

    def table(self) -> tuple[str, list[str]]:
        """The issue's one comment from the App, and its table's rows."""
        [comment] = self.github.app_comments(REPO, 1)
        return comment.body, ROW.findall(comment.body)

    async def deliver(self, event: str, payload: dict[str, Any]) -> None:
        assert (await self.harness.deliver(event, payload)).status_code == 202
        await self.harness.settle()

    async def tick(self, seconds: float) -> None:
        """Let `seconds` of hand-moved time pass (follows come due), then settle."""
        await self.harness.tick(self.clock, seconds)

    async def run_until_idle(self) -> None:
        await self.harness.run_until_idle(self.clock, steps=120)


@pytest.fixture
async def world(
    backend: Backend, settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> AsyncIterator[World]:
    clock = Clock()
    github.clock = clock
    github.permissions[(REPO, "Codertocat")] = "write"
    devin, agen, cursor, jules = FakeDevin(), FakeAgen(), FakeCursor(), FakeJules()
    fakes = {"DEVIN": devin, "AGEN": agen, "CURSOR": cursor, "JULES": jules}
    env = {f"{name}_API_KEY": fake.api_key for name, fake in fakes.items()}
    env |= {f"{name}_BASE_URL": fake.base_url for name, fake in fakes.items()}
    magnet = FakeMagnet()
    env |= {
        "MAGNET_SESSION_COOKIE": magnet.cookie,
        "MAGNET_ORGANIZATION_ID": magnet.organization_id,
        "MAGNET_BASE_URL": magnet.base_url,
    }
    configured = settings.replace(max_attempts=3).with_platform_env(**env)
    hosts = {github.host: github, tembo.host: tembo, magnet.host: magnet}
    hosts |= {fake.host: fake for fake in fakes.values()}
    http = httpx.AsyncClient(transport=route(hosts))
    app = create_app(configured, http=http, store=backend.open(), content_per_minute=0, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            harness = Harness(app, client, github, tembo)
            yield World(harness, clock, tembo, devin, agen, cursor, jules, magnet)
    await http.aclose()


def prompts(world: World) -> dict[str, list[str]]:
    return {
        "tembo": [s["prompt"] for s in world.tembo.sessions],
        "devin": [s["body"]["prompt"] for s in world.devin.sessions],
        "agen": [p for s in world.agen.sessions for p in world.agen.prompts(s["id"])],
        "cursor": [r["prompt"]["text"] for r in world.cursor.requests],
    }


async def test_a_fan_out_to_three_platforms_makes_three_sessions_and_one_table(
    world: World,
) -> None:
    world.github.files[(REPO, CONFIG)] = "platform: [tembo, devin, agen]\n"
    await world.deliver("issues", payloads.labeled(repo=REPO))

    sent = prompts(world)
    assert [len(sent[name]) for name in ("tembo", "devin", "agen")] == [1, 1, 1]
    records = await world.harness.runtime.store.sessions_for_issue(REPO, 1)
    idents = sorted(r.dispatch_id for r in records)
    base = idents[0].rsplit("-", 1)[0]
    assert idents == [f"{base}-agen", f"{base}-devin", f"{base}-tembo"]
    for name in ("tembo", "devin", "agen"):
        # Each its own dispatch id (the prompt's trailer) and its own branch.
        assert sent[name][0].rstrip().endswith(f"tembo-dispatch-id: {base}-{name}")
        assert f"`tembo/1-spelling-error-in-the-readme-file-{name}`" in sent[name][0]
    body, rows = world.table()
    assert f"<!-- dispatch-id: {base} -->" in body
    assert "| platform | state | session | pull request | time to PR |" in body
    assert [row.split(" | ")[0] for row in rows] == ["Tembo", "Devin", "Agen"]
    assert all("🚀 started" in row for row in rows)
    usage = await world.harness.runtime.store.usage(0)
    assert sorted((r.kind, r.platform) for r in usage) == [
        ("dispatch", "agen"),
        ("dispatch", "devin"),
        ("dispatch", "tembo"),
    ]

    # Devin opens its pull request; its follow edits its own row, the others stay.
    [devin_session] = world.devin.sessions
    world.devin.advance(devin_session["session_id"], status_enum="finished", pull_request=PULL)
    await world.tick(31)
    body, rows = world.table()
    assert len(rows) == 3
    assert PULL in rows[1] and "✅ finished" in rows[1] and rows[1].endswith("| 0 min |")
    assert "Tembo" in rows[0] and PULL not in rows[0]
    assert "Agen" in rows[2]
    assert len(world.github.app_comments(REPO, 1)) == 1


async def test_pick_marks_the_winner_and_stops_the_others(world: World) -> None:
    world.github.files[(REPO, CONFIG)] = "platform: [tembo, devin, cursor]\n"
    await world.deliver("issues", payloads.labeled(repo=REPO))
    assert (len(world.tembo.sessions), len(world.devin.sessions), len(world.cursor.agents)) == (
        1,
        1,
        1,
    )

    await world.deliver(
        "issue_comment", payloads.comment("/tembo pick devin", repo=REPO, comment_id=77)
    )
    assert [s for s, _ in world.tembo.stops] == [world.tembo.sessions[0]["id"]]
    assert len(world.cursor.cancels) == 1
    assert world.devin.terminations == []
    _, rows = world.table()
    assert "**Devin** 🏆 picked" in rows[1]
    assert "⏹️ stopped" in rows[0] and "⏹️ stopped" in rows[2]
    assert "not picked: @Codertocat picked Devin" in rows[0]
    records = {r.platform: r for r in await world.harness.runtime.store.sessions_for_issue(REPO, 1)}
    assert (records["tembo"].status, records["cursor"].status) == ("stopped", "stopped")
    usage = [(r.kind, r.platform, r.outcome) for r in await world.harness.runtime.store.usage(0)]
    assert ("pick", "devin", "picked") in usage
    assert ("stop", "tembo", "stopped") in usage and ("stop", "cursor", "stopped") in usage


async def test_a_command_fans_out_and_the_table_says_which_platform_cannot_stop(
    world: World,
) -> None:
    await world.deliver(
        "issue_comment",
        payloads.comment("/tembo platform=devin,jules fix it", repo=REPO, comment_id=5),
    )
    assert (len(world.devin.sessions), len(world.jules.sessions)) == (1, 1)
    assert world.tembo.sessions == []
    await world.deliver(
        "issue_comment", payloads.comment("/tembo pick devin", repo=REPO, comment_id=6)
    )
    body, rows = world.table()
    assert "🏆 picked" in rows[0]
    assert "⏹️ stopped" not in rows[1]
    assert "Jules: cannot be stopped from here: stop it on its platform" in body
    usage = [(r.kind, r.platform, r.outcome) for r in await world.harness.runtime.store.usage(0)]
    assert ("stop", "jules", "cannot stop") in usage


async def test_a_platform_that_refuses_does_not_stop_the_others(world: World) -> None:
    world.github.files[(REPO, CONFIG)] = "platform: [tembo, devin, agen]\n"
    world.devin.fault = lambda request: httpx.Response(401, json={"detail": "bad key"})
    await world.deliver("issues", payloads.labeled(repo=REPO))
    assert (len(world.tembo.sessions), len(world.agen.sessions)) == (1, 1)
    _, rows = world.table()
    assert "😕 could not start" in rows[1] and "401" in rows[1]
    assert "🚀 started" in rows[0] and "🚀 started" in rows[2]
    usage = [(r.kind, r.platform) for r in await world.harness.runtime.store.usage(0)]
    assert ("refusal", "devin") in usage
    # The refused row stays when another session's follow edits the table.
    [tembo_session] = world.tembo.sessions
    world.tembo.advance(tembo_session["id"], state="completed", pull_requests=[PULL])
    await world.tick(31)
    _, rows = world.table()
    assert len(rows) == 3 and "😕 could not start" in rows[1]
    assert PULL in rows[0]


async def test_a_retry_never_resends_a_platform_already_started(world: World) -> None:
    world.github.files[(REPO, CONFIG)] = "platform: [tembo, devin]\n"
    failures = iter([httpx.Response(503, json={"detail": "busy"})])

    def once(request: httpx.Request) -> httpx.Response | None:
        return next(failures, None) if request.method == "POST" else None

    world.devin.fault = once
    assert (await world.harness.deliver("issues", payloads.labeled(repo=REPO))).status_code == 202
    await world.run_until_idle()  # the retry waits on the hand-moved clock
    assert len(world.tembo.requests) == 1
    assert len(world.devin.requests) == 2 and len(world.devin.sessions) == 1
    _, rows = world.table()
    assert all("🚀 started" in row for row in rows)


async def test_a_platform_that_never_answers_gets_a_row_when_the_job_gives_up(
    world: World,
) -> None:
    world.github.files[(REPO, CONFIG)] = "platform: [tembo, devin]\n"
    world.devin.fault = lambda request: httpx.Response(503, json={"detail": "down"})
    assert (await world.harness.deliver("issues", payloads.labeled(repo=REPO))).status_code == 202
    await world.run_until_idle()
    assert len(world.tembo.sessions) == 1 and world.devin.sessions == []
    assert len(world.devin.requests) == 3  # MAX_ATTEMPTS, each a definite 503
    _, rows = world.table()
    assert "🚀 started" in rows[0]
    assert "😕 could not start" in rows[1] and "gave up after 3 attempts" in rows[1]
    usage = [(r.kind, r.platform, r.outcome) for r in await world.harness.runtime.store.usage(0)]
    assert sorted(usage) == [("dispatch", "tembo", "created"), ("refusal", "devin", "gave up")]
    assert await world.harness.runtime.store.job_counts("delivery") == {"dead": 1}


async def test_a_slow_fan_out_shows_its_table_starting_then_the_links_in_place(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(create_step, "STARTING_AFTER", 0.0)  # every create is "slow"
    world.github.files[(REPO, CONFIG)] = "platform: [tembo, devin]\n"
    await world.deliver("issues", payloads.labeled(repo=REPO))
    [comment] = world.github.app_comments(REPO, 1)
    assert comment.edits == 1  # posted with every row starting, then edited once
    _, rows = world.table()
    assert all("🚀 started" in row for row in rows)
    assert (len(world.tembo.sessions), len(world.devin.sessions)) == (1, 1)


async def test_each_platform_counts_against_the_budget_and_one_over_gets_a_row(
    world: World,
) -> None:
    world.github.files[(REPO, CONFIG)] = (
        "platform: [tembo, devin, agen]\nlimits:\n  per_repo_per_day: 2\n"
    )
    await world.deliver("issues", payloads.labeled(repo=REPO))
    started = [len(world.tembo.sessions), len(world.devin.sessions), len(world.agen.sessions)]
    assert sorted(started) == [0, 1, 1]  # which two win the race is not fixed
    _, rows = world.table()
    [over] = [row for row in rows if "could not start" in row]
    assert "limits.per_repo_per_day is used up (2 of 2)" in over
    usage = [(r.kind, r.outcome) for r in await world.harness.runtime.store.usage(0)]
    assert sorted(usage) == [
        ("dispatch", "created"),
        ("dispatch", "created"),
        ("limited", "refused"),
    ]


async def test_stop_ends_every_running_session_of_a_fan_out_in_its_table(world: World) -> None:
    world.github.files[(REPO, CONFIG)] = "platform: [tembo, devin]\n"
    await world.deliver("issues", payloads.labeled(repo=REPO))
    await world.deliver("issue_comment", payloads.comment("/tembo stop", repo=REPO, comment_id=9))
    assert len(world.tembo.stops) == 1 and len(world.devin.terminations) == 1
    _, rows = world.table()
    assert all("⏹️ stopped" in row and "stopped by @Codertocat" in row for row in rows)


async def fan_out_with_a_platform_that_takes_no_messages(world: World) -> dict[str, str]:
    """Tembo, Devin and Magnet started for one label; each platform's session id."""
    world.github.files[(REPO, CONFIG)] = "platform: [tembo, devin, magnet]\n"
    await world.deliver("issues", payloads.labeled(repo=REPO))
    records = await world.harness.runtime.store.sessions_for_issue(REPO, 1)
    assert sorted(r.platform for r in records) == ["devin", "magnet", "tembo"]
    return {r.platform: r.session_id for r in records}


async def follow_up_comment(world: World, text: str = "also cover the Safari case") -> None:
    body = f"/tembo {text}"
    payload = payloads.comment(body, repo=REPO, comment_id=77)
    assert (await world.harness.deliver("issue_comment", payload)).status_code == 202


async def test_a_follow_up_after_a_fan_out_goes_to_each_session_that_takes_messages(
    world: World,
) -> None:
    ids = await fan_out_with_a_platform_that_takes_no_messages(world)
    await follow_up_comment(world)
    await world.harness.settle()

    [tembo_message] = world.tembo.messages
    assert tembo_message["sessionId"] == ids["tembo"]
    assert "also cover the Safari case" in tembo_message["content"]
    [(devin_session, devin_message)] = world.devin.messages
    assert devin_session == ids["devin"] and "also cover the Safari case" in devin_message
    assert not [r for r in world.magnet.requests if r[0] == "POST" and r[1] != "/api/sessions"]
    # The table notes it on each row it reached; one reply says where it went, and names
    # the platform that cannot take it.
    table, reply = world.github.app_comments(REPO, 1)
    assert "Tembo: 📨 follow-up from @Codertocat" in table.body
    assert "Devin: 📨 follow-up from @Codertocat" in table.body
    assert "Magnet: 📨" not in table.body
    assert "sent to Tembo, Devin." in reply.body
    assert "Magnet cannot take messages from here" in reply.body
    rows = [r for r in await world.harness.runtime.store.usage(0) if r.kind == "follow_up"]
    assert sorted((r.platform, r.outcome) for r in rows) == [
        ("devin", "sent"),
        ("magnet", "cannot send"),
        ("tembo", "sent"),
    ]


async def test_a_retried_fan_out_follow_up_sends_each_message_once(world: World) -> None:
    await fan_out_with_a_platform_that_takes_no_messages(world)
    failures = iter([httpx.Response(503, json={"detail": "busy"})])

    def once(request: httpx.Request) -> httpx.Response | None:
        return next(failures, None) if request.url.path.endswith("/message") else None

    world.devin.fault = once
    await follow_up_comment(world)
    await world.run_until_idle()  # the retry waits on the hand-moved clock

    # Tembo's message went on the first attempt and is journaled: the retry, which
    # sends Devin's, does not send Tembo's again.
    assert len(world.tembo.messages) == 1
    assert len(world.devin.messages) == 1
    [reply] = world.github.app_comments(REPO, 1)[1:]
    assert "sent to Tembo, Devin." in reply.body
    jobs = await world.harness.runtime.store.job_counts("delivery")
    assert jobs == {"done": 2}
