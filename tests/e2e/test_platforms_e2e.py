"""Platform paths through the app in-process that the real-serve suite
(tests/e2e/test_platforms_serve.py, which runs every platform's label, follow, follow-up,
stop and create faults through `python -m bot serve`) does not reach: a platform chosen
without its credentials, and Recoup and Agen resuming a failed step on a fresh adapter, as
on another replica."""

from __future__ import annotations

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
