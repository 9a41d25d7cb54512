"""The same user path (a labelled issue -> one session -> its link on the issue) on every
platform, through the real app and each platform's contract fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot import platforms as registry
from bot.app import create_app
from bot.ports import SessionPlatform
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import Harness
from tests.support.fakes import recoup as recoup_fake
from tests.support.fakes import route
from tests.support.fakes.agen import FakeAgen
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.magnet import FakeMagnet
from tests.support.fakes.recoup import FakeRecoup
from tests.support.fakes.tembo import FakeTembo

pytestmark = pytest.mark.anyio
REPO = "acme/web"
PLATFORMS = ["tembo", "recoup", "agen", "magnet", "dry-run"]


class Platforms:
    def __init__(self, tembo: FakeTembo) -> None:
        self.tembo = tembo
        self.recoup = FakeRecoup()
        self.agen = FakeAgen()
        self.magnet = FakeMagnet()

    def settings(self, base: Settings) -> Settings:
        return base.with_platform_env(
            RECOUP_API_KEY=self.recoup.api_key,
            RECOUP_BASE_URL=self.recoup.base_url,
            AGEN_API_KEY=self.agen.api_key,
            AGEN_BASE_URL=self.agen.base_url,
            MAGNET_SESSION_COOKIE=self.magnet.cookie,
            MAGNET_ORGANIZATION_ID=self.magnet.organization_id,
            MAGNET_BASE_URL=self.magnet.base_url,
        )

    def hosts(self) -> dict[str, Any]:
        return {f.host: f for f in (self.tembo, self.recoup, self.agen, self.magnet)}

    def created(self, name: str) -> list[dict[str, Any]]:
        fake = {
            "tembo": self.tembo,
            "recoup": self.recoup,
            "agen": self.agen,
            "magnet": self.magnet,
        }.get(name)
        return list(fake.sessions) if fake is not None else []

    def sent_anything(self) -> bool:
        return any(
            (self.tembo.requests, self.recoup.requests, self.agen.requests, self.magnet.requests)
        )


@pytest.fixture
async def world(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> AsyncIterator[tuple[Harness, Platforms]]:
    platforms = Platforms(tembo)
    http = httpx.AsyncClient(transport=route({github.host: github, **platforms.hosts()}))
    app = create_app(platforms.settings(settings), http=http, content_per_minute=0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Harness(app, client, github, tembo), platforms
    await http.aclose()


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_labeled_issue_becomes_one_session_and_its_link_on_every_platform(
    world: tuple[Harness, Platforms], platform: str
) -> None:
    harness, platforms = world
    harness.github.permissions[(REPO, "Codertocat")] = "write"
    harness.github.files[(REPO, ".github/tembo.yml")] = f"platform: {platform}\n"
    assert (await harness.deliver("issues", payloads.labeled(repo=REPO))).status_code == 202
    await harness.settle()

    [comment] = harness.github.app_comments()
    assert await harness.runtime.store.job_counts("delivery") == {"done": 1}
    if platform == "dry-run":
        assert not platforms.sent_anything()
        assert "Dry run" in comment.body and '"branchName": "tembo/1-' in comment.body
        assert "tembo-test-key" not in comment.body  # the key is redacted
        return
    assert len(platforms.created(platform)) == 1
    for name in PLATFORMS[:4]:
        if name != platform:
            assert platforms.created(name) == []
    records = await harness.runtime.store.sessions_for_issue(REPO, 1)
    assert [r.platform for r in records] == [platform]
    assert records[0].url and records[0].url in comment.body


async def test_missing_credentials_for_the_chosen_platform_are_named_on_the_issue(
    harness: Harness,
) -> None:
    harness.github.permissions[(REPO, "Codertocat")] = "write"
    harness.github.files[(REPO, ".github/tembo.yml")] = "platform: agen\n"
    await harness.deliver("issues", payloads.labeled(repo=REPO))
    await harness.settle()
    [comment] = harness.github.app_comments()
    assert "AGEN_API_KEY is not set" in comment.body
    assert await harness.runtime.store.job_counts("delivery") == {"failed": 1}


async def test_a_platform_without_lookup_is_sent_a_lost_create_at_most_twice(
    world: tuple[Harness, Platforms],
) -> None:
    harness, platforms = world
    harness.github.permissions[(REPO, "Codertocat")] = "write"
    harness.github.files[(REPO, ".github/tembo.yml")] = "platform: recoup\n"

    def lose_every_create(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/api/sessions":
            platforms.recoup.answer(request)  # Recoup starts the session...
            raise httpx.ReadTimeout("lost", request=request)  # ...and the answer is lost
        return None

    platforms.recoup.fault = lose_every_create
    await harness.deliver("issues", payloads.labeled(repo=REPO))
    await harness.settle()
    assert len(platforms.recoup.sessions) == 2
    [comment] = harness.github.app_comments()
    assert "cannot be asked whether a session was started" in comment.body
    assert await harness.runtime.store.job_counts("delivery") == {"failed": 1}


async def one_issue_on_fresh_adapters(
    platforms: Platforms, settings: Settings, github: FakeGitHub, platform: str
) -> tuple[Any, dict[str, int], list[object]]:
    """One labelled issue through the real app on `platform`, every adapter lookup a new
    adapter (as each retry on another replica would meet): the app's one comment, the
    delivery jobs' states, and the adapters built."""
    configured = platforms.settings(settings)
    http = httpx.AsyncClient(transport=route({github.host: github, **platforms.hosts()}))
    built: list[object] = []

    def fresh_adapter(name: str) -> SessionPlatform:
        adapter = registry.build(name, configured, http)
        built.append(adapter)
        return adapter

    app = create_app(configured, http=http, platforms=fresh_adapter, content_per_minute=0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            harness = Harness(app, client, github, platforms.tembo)
            github.permissions[(REPO, "Codertocat")] = "write"
            github.files[(REPO, ".github/tembo.yml")] = f"platform: {platform}\n"
            await harness.deliver("issues", payloads.labeled(repo=REPO))
            await harness.settle()
            [comment] = github.app_comments()
            counts = await harness.runtime.store.job_counts("delivery")
    await http.aclose()
    return comment, counts, built


async def test_recoup_works_on_the_issues_repository_and_resumes_a_failed_step_afresh(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    """Three steps through the real app; the sandbox step fails once, and the retry meets a
    new adapter (as on another replica), which resumes from the job's journal."""
    platforms = Platforms(tembo)
    failures = [503]

    def sandbox_down_once(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/api/sandbox" and failures:
            return recoup_fake.failure(failures.pop(), "sandbox provider busy")
        return None

    platforms.recoup.fault = sandbox_down_once
    comment, counts, built = await one_issue_on_fresh_adapters(
        platforms, settings, github, "recoup"
    )

    assert counts == {"done": 1}
    assert len(built) >= 2 and len({id(a) for a in built}) == len(built)
    [session] = platforms.recoup.sessions
    assert platforms.recoup.sandboxes == {session["id"]: f"https://github.com/{REPO}"}
    [workflow] = platforms.recoup.workflows
    assert workflow["sessionId"] == session["id"]
    assert "dispatch-id: gh-" in workflow["messages"][0]["parts"][0]["text"]
    assert session["id"] in comment.body


async def test_agen_worker_dying_before_the_prompt_resumes_on_the_session_it_made(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    """Agen's create is answered, then the attempt dies before the prompt is sent; by the
    retry a later dispatch for the issue has left an unprompted session on the same branch
    (newest first in Agen's list). The retry meets a new adapter (as on another replica)
    and finds its own session in the job's journal, not by guessing from the list."""
    platforms = Platforms(tembo)
    died: list[str] = []

    def die_before_the_prompt(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path.endswith("/messages") and not died:
            [ours] = platforms.agen.sessions
            died.append(ours["id"])
            platforms.agen.create({"branch_name": ours["branch_name"], "auto_commit": True})
            raise RuntimeError("the worker's process ended here")
        return None

    platforms.agen.fault = die_before_the_prompt
    comment, counts, built = await one_issue_on_fresh_adapters(platforms, settings, github, "agen")

    assert counts == {"done": 1}
    assert len(built) >= 2 and len({id(a) for a in built}) == len(built)
    ours, abandoned = died[0], platforms.agen.sessions[1]["id"]
    assert len(platforms.agen.sessions) == 2  # ours and the other dispatch's: none by the retry
    [prompt] = platforms.agen.prompts(ours)
    assert "dispatch-id: gh-" in prompt
    assert platforms.agen.prompts(abandoned) == []
    assert ours in comment.body


async def test_tembo_v1_lost_answer_through_the_app_makes_one_session_and_reads_no_list(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    tembo.enable(REPO)
    lost = [True]

    def created_then_lost(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == "/v1/sessions" and lost:
            lost.clear()
            tembo.create_v1(json.loads(request.content))
            raise httpx.ReadTimeout("answer lost", request=request)
        return None

    tembo.fault = created_then_lost
    http = httpx.AsyncClient(transport=route({github.host: github, tembo.host: tembo}))
    app = create_app(settings.with_platform_env(TEMBO_API="v1"), http=http, content_per_minute=0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            harness = Harness(app, client, github, tembo)
            github.permissions[(REPO, "Codertocat")] = "write"
            await harness.deliver("issues", payloads.labeled(repo=REPO))
            await harness.settle()
            [comment] = github.app_comments()
            counts = await harness.runtime.store.job_counts("delivery")
    await http.aclose()
    assert counts == {"done": 1}
    [session] = tembo.sessions
    assert session["htmlUrl"] in comment.body
    assert ("GET", f"/v1/sessions/{session['id']}") in tembo.calls
    assert not [call for call in tembo.calls if call[1].startswith("/session/")]
