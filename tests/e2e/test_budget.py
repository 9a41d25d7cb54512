"""GitHub's content budget through the real app: a fake GitHub that enforces its
secondary limit (bench/fakes.py, windows shrunk to fractions of a second) in front of the
contract fake, labelled issues in, and what reached GitHub counted.

Real time, small windows: a burst of a few issues spans several windows in about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bench.fakes import SESSION_LINK, SecondaryLimit
from bot.app import create_app, runtime_of
from bot.events import job_lock
from bot.ports import Store
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import Harness
from tests.support.fakes import route
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo
from tests.support.stores import Backend

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
SENDER = "Codertocat"
WINDOW = 0.5  # the shrunk minute
LIMIT = 6  # content calls per window


def limited(github: FakeGitHub, limit: int = LIMIT, hour: int = 1000) -> SecondaryLimit:
    return SecondaryLimit(github, windows=((limit, WINDOW), (hour, 3600.0)))


def budgeted(settings: Settings, limit: int = LIMIT, hour: int = 1000) -> Settings:
    return settings.replace(
        github_content_per_minute=limit,
        github_content_minute_seconds=WINDOW,
        github_content_per_hour=hour,
    )


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    fake: SecondaryLimit,
    tembo: FakeTembo,
    store: Store | None = None,
    reads: list[str] | None = None,
) -> AsyncIterator[Harness]:
    def platform(request: httpx.Request) -> httpx.Response:
        if reads is not None and request.method == "GET":
            reads.append(request.url.path)
        return tembo(request)

    http = httpx.AsyncClient(transport=route({fake.github.host: fake, tembo.host: platform}))
    app = create_app(settings, http=http, store=store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Harness(app, client, fake.github, tembo)
    await http.aclose()


def issues(count: int, installations: int = 3) -> list[tuple[str, int, int]]:
    """(repository, number, installation) of `count` labelled issues."""
    return [(f"org-{n % installations}/repo", n + 1, 100 + n % installations) for n in range(count)]


async def label(harness: Harness, work: list[tuple[str, int, int]]) -> None:
    for repo, _, _ in work:
        harness.github.permissions[(repo, SENDER)] = "write"
    answers = await asyncio.gather(
        *(
            harness.deliver(
                "issues", payloads.labeled(repo=repo, number=number, installation=installation)
            )
            for repo, number, installation in work
        )
    )
    assert [a.status_code for a in answers] == [202] * len(work)


def linked(github: FakeGitHub) -> int:
    return sum(1 for c in github.app_comments() if SESSION_LINK in c.body)


def busiest_window(times: list[float]) -> int:
    """The most content calls GitHub saw in any window of WINDOW seconds."""
    return max(sum(1 for t in times if start <= t < start + WINDOW) for start in times)


async def test_a_burst_larger_than_the_window_never_exceeds_it(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    fake = limited(github)
    async with running(budgeted(settings), fake, tembo) as harness:
        await label(harness, issues(12))
        await harness.settle(timeout=30)
    assert len(tembo.sessions) == 12
    assert linked(github) == 12
    assert fake.violations == 0
    times = [t for t, method, _ in fake.content_log if method != "refused"]
    assert len(times) == 24  # 👀 and the link comment each
    assert busiest_window(times) <= LIMIT
    # And the budget was short: the burst was spread over several windows.
    assert times[-1] - times[0] >= (24 / LIMIT - 1) * WINDOW


async def test_link_comments_go_before_follow_through_edits_which_coalesce(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    fake = limited(github, limit=4)
    reads: list[str] = []
    async with running(budgeted(settings, limit=4), fake, tembo, reads=reads) as harness:
        runtime = runtime_of(harness.app)
        worker = runtime.worker
        assert worker is not None
        await label(harness, [("acme/web", 1, 100)])
        await harness.settle()
        [first] = tembo.sessions
        [status] = github.app_comments("acme/web", 1)
        record = (await runtime.store.sessions_for_issue("acme/web", 1))[0]

        async def follow_now(after: float = 0.0) -> None:
            now = runtime.github._clock()
            follow = {
                "dispatch_id": record.dispatch_id,
                "repo": "acme/web",
                "issue": 1,
                "platform": "tembo",
                "started_at": now,
            }
            lock = job_lock("acme/web", 1)
            await runtime.store.schedule("follow", follow, lock, now + after, now)
            worker.notify()

        # The session moves on while a burst of new issues waits for the budget; the poll
        # that sees it comes due in the middle of the burst.
        tembo.advance(first["id"], state="inProgress")
        polls_before = sum(1 for path in reads if first["id"] in path)
        await label(harness, issues(8))
        await follow_now()
        await harness.settle(timeout=30)
        assert linked(github) == 9
        assert sum(1 for path in reads if first["id"] in path) > polls_before
        assert status.edits == 0  # the edit found no slot: it waits, links went first

        # It moved on again before the edit could be written: one edit, the newest state,
        # at the next poll (due once the burst's last window has passed).
        tembo.advance(
            first["id"], state="completed", pull_requests=["https://github.com/acme/web/pull/7"]
        )
        await follow_now(after=2 * WINDOW)
        await harness.settle(timeout=30)
    assert status.edits == 1
    assert "https://github.com/acme/web/pull/7" in status.body
    assert fake.violations == 0


@pytest.mark.parametrize("status", [403, 429])
async def test_a_limit_answer_with_retry_after_pauses_every_caller(
    status: int, settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    # One call a window, so the refused call is the only one on the wire: every other
    # caller is waiting for a slot when GitHub says to stop. (A call already sent when the
    # answer comes cannot be called back.)
    fake = limited(github, limit=1)
    fake.refuse_next, fake.refuse_after = [(status, 1)], 1
    async with running(budgeted(settings, limit=1), fake, tembo) as harness:
        await label(harness, issues(3))
        await harness.settle(timeout=30)
    assert linked(github) == 3
    [(refused_at, _, _)] = [entry for entry in fake.content_log if entry[1] == "refused"]
    after = [t for t, method, _ in fake.content_log if method != "refused" and t > refused_at]
    # Every call still to make (other issues' and installations' too) waited for the pause.
    assert len(after) == 5
    assert min(after) >= refused_at + 0.95
    assert fake.violations == 0


async def test_two_app_instances_sharing_one_store_stay_within_one_budget(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo, backend: Backend, tmp_path: Path
) -> None:
    fake = limited(github, limit=5)
    config = budgeted(settings, limit=5)
    work = issues(10)
    async with (
        running(config, fake, tembo, backend.open()) as one,
        running(config, fake, tembo, backend.open()) as two,
    ):
        await asyncio.gather(label(one, work[0::2]), label(two, work[1::2]))
        await asyncio.gather(one.settle(timeout=30), two.settle(timeout=30))
    assert linked(github) == 10
    assert fake.violations == 0
    times = [t for t, method, _ in fake.content_log if method != "refused"]
    assert len(times) == 20
    assert busiest_window(times) <= 5
    assert json.dumps(sorted(fake.content_calls)) == "[100, 101, 102]"
