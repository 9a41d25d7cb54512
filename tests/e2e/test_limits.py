"""Budgets end to end: `limits:` in the repository's config, a refused trigger's one
comment, an admin's `force=true`, `/tembo status`, and three replicas on one store
(SQLite file and PostgreSQL) hammered at once never passing a limit."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.app import create_app
from bot.fleet import Limits
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import Harness, running
from tests.support.fakes import route
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo
from tests.support.stores import Backend

pytestmark = pytest.mark.anyio
REPO = "acme/web"
CONFIG = ".github/tembo.yml"


async def test_a_used_up_budget_refuses_with_one_comment_and_an_admin_can_force(
    harness: Harness,
) -> None:
    github = harness.github
    github.files[(REPO, CONFIG)] = "limits:\n  per_repo_per_day: 1\n"
    github.permissions[(REPO, "Codertocat")] = "write"
    github.permissions[(REPO, "boss")] = "admin"
    await harness.deliver("issues", payloads.labeled(repo=REPO, number=1))
    await harness.settle()
    await harness.deliver("issues", payloads.labeled(repo=REPO, number=2))
    await harness.settle()
    assert len(harness.tembo.sessions) == 1

    [refusal] = github.app_comments(REPO, 2)
    assert "`limits.per_repo_per_day`" in refusal.body
    assert "(1 of 1)" in refusal.body
    assert re.search(r"resets at \d{4}-\d\d-\d\d 00:00 UTC", refusal.body)
    assert "force=true" in refusal.body
    # A second label on the same issue is refused again, on its own comment, still once.
    rows = await harness.runtime.store.usage(0, repo=REPO, issue=2)
    assert [(r.kind, r.outcome, r.detail) for r in rows] == [
        ("limited", "refused", "per_repo_per_day: 1 of 1")
    ]

    # force=true from someone without admin is not an override.
    await harness.deliver(
        "issue_comment",
        payloads.comment("/tembo new force=true go", repo=REPO, number=2, comment_id=5),
    )
    await harness.settle()
    assert len(harness.tembo.sessions) == 1
    await harness.deliver(
        "issue_comment",
        payloads.comment(
            "/tembo new force=true go", repo=REPO, number=2, sender="boss", comment_id=6
        ),
    )
    await harness.settle()
    assert len(harness.tembo.sessions) == 2
    rows = await harness.runtime.store.usage(0, repo=REPO, issue=2)
    assert [(r.kind, r.sender) for r in rows][-1] == ("dispatch", "boss")
    assert "force=true" in rows[-1].detail

    await harness.deliver(
        "issue_comment",
        payloads.comment("/tembo status", repo=REPO, number=2, sender="boss", comment_id=7),
    )
    await harness.settle()
    status = github.app_comments(REPO, 2)[-1].body
    assert "What the app did on this issue" in status
    assert "| limited | Tembo | @Codertocat | refused |" in status
    assert "| dispatch | Tembo | @boss | created |" in status
    assert "`per_repo_per_day`: 0 left" in status


async def test_a_refused_create_gives_its_budget_back(harness: Harness) -> None:
    harness.github.files[(REPO, CONFIG)] = "limits:\n  per_user_per_day: 1\n"
    harness.github.permissions[(REPO, "Codertocat")] = "write"
    harness.tembo.fault = lambda request: httpx.Response(401, json={"error": "bad key"})
    await harness.deliver("issues", payloads.labeled(repo=REPO, number=1))
    await harness.settle()
    harness.tembo.fault = None
    await harness.deliver("issues", payloads.labeled(repo=REPO, number=2))
    await harness.settle()
    assert len(harness.tembo.sessions) == 1


async def test_a_repository_file_cannot_raise_the_org_budget_the_org_or_operator_set(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    """The operator allows 3 a day per repository; the org's `.github` caps the org at 2;
    a repository's own file asking for 100 a day in the org gets the org's 2."""
    github.files[("acme/.github", CONFIG)] = "limits:\n  per_org_per_day: 2\n"
    github.files[(REPO, CONFIG)] = "limits:\n  per_org_per_day: 100\n"
    github.permissions[(REPO, "Codertocat")] = "write"
    operator = settings.replace(limits=Limits(per_repo_per_day=3))
    async with running(operator, github, tembo) as harness:
        for number in (1, 2, 3):
            await harness.deliver("issues", payloads.labeled(repo=REPO, number=number))
            await harness.settle()
    assert len(tembo.sessions) == 2
    [refusal] = github.app_comments(REPO, 3)
    assert "`limits.per_org_per_day`" in refusal.body
    assert "(2 of 2)" in refusal.body


async def test_a_repository_file_cannot_raise_a_persons_daily_budget_in_the_org(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    """The org's `.github` lets a person start 1 session a day across the organisation;
    a repository's own file asking for 100 cannot give that person a second one there."""
    other = "acme/api"
    github.files[("acme/.github", CONFIG)] = "limits:\n  per_user_per_day: 1\n"
    github.files[(REPO, CONFIG)] = "limits:\n  per_user_per_day: 100\n"
    github.permissions[(other, "Codertocat")] = "write"
    github.permissions[(REPO, "Codertocat")] = "write"
    async with running(settings, github, tembo) as harness:
        await harness.deliver("issues", payloads.labeled(repo=other, number=1))
        await harness.settle()
        await harness.deliver("issues", payloads.labeled(repo=REPO, number=2))
        await harness.settle()
    assert len(tembo.sessions) == 1
    [refusal] = github.app_comments(REPO, 2)
    assert "`limits.per_user_per_day`" in refusal.body
    assert "(1 of 1)" in refusal.body


async def test_the_operator_limits_hold_where_no_file_sets_one(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    github.permissions[(REPO, "Codertocat")] = "write"
    async with running(settings.replace(limits=Limits(per_user_per_day=1)), github, tembo) as h:
        for number in (1, 2):
            await h.deliver("issues", payloads.labeled(repo=REPO, number=number))
            await h.settle()
    assert len(tembo.sessions) == 1
    [refusal] = github.app_comments(REPO, 2)
    assert "`limits.per_user_per_day`" in refusal.body


@pytest.fixture
async def replicas(
    backend: Backend, settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> AsyncIterator[list[Harness]]:
    """Three apps, each with its own store connection and worker, on one database."""
    http = httpx.AsyncClient(transport=route({github.host: github, tembo.host: tembo}))
    apps = [
        create_app(
            settings.replace(worker_concurrency=8),
            http=http,
            store=backend.open(),
            content_per_minute=0,
            worker_name=f"replica-{n}",
        )
        for n in range(3)
    ]
    async with contextlib.AsyncExitStack() as stack:
        harnesses: list[Harness] = []
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            )
            harnesses.append(Harness(app, client, github, tembo))
        yield harnesses
    await http.aclose()


async def test_three_replicas_hammered_at_once_never_pass_a_limit(
    replicas: list[Harness],
) -> None:
    github, tembo = replicas[0].github, replicas[0].tembo
    github.files[(REPO, CONFIG)] = "limits:\n  per_repo_per_day: 5\n"
    github.permissions[(REPO, "Codertocat")] = "write"
    issues = 30
    await asyncio.gather(
        *(
            replicas[n % 3].deliver("issues", payloads.labeled(repo=REPO, number=n + 1))
            for n in range(issues)
        )
    )
    for harness in replicas:
        await harness.settle(timeout=60)
    for harness in replicas:
        await harness.settle(timeout=60)
    assert len(tembo.sessions) == 5
    comments = github.app_comments(REPO)
    assert len(comments) == issues
    assert sum("`limits.per_repo_per_day`" in c.body for c in comments) == issues - 5
    rows = await replicas[0].runtime.store.usage(0)
    assert sorted(r.kind for r in rows) == ["dispatch"] * 5 + ["limited"] * (issues - 5)
