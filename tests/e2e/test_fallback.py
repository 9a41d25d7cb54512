"""Fallback end to end: when the chosen platform refuses for a reason retrying will not
fix, the next platform in `fallback:` starts the session and the comment says so; never
on a 400 (the request's own fault) and never after a create whose outcome is unknown."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from bot.app import create_app
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import Harness
from tests.support.fakes import agen as agen_fake
from tests.support.fakes import route
from tests.support.fakes.agen import FakeAgen
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo

pytestmark = pytest.mark.anyio
REPO = "acme/web"


@pytest.fixture
def agen() -> FakeAgen:
    return FakeAgen()


@pytest.fixture
async def harness_with_agen(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo, agen: FakeAgen
) -> AsyncIterator[Harness]:
    github.files[(REPO, ".github/tembo.yml")] = "platform: tembo\nfallback: [agen]\n"
    github.permissions[(REPO, "Codertocat")] = "write"
    tuned = settings.with_platform_env(
        AGEN_API_KEY=agen.api_key, AGEN_BASE_URL=agen.base_url
    ).replace(max_attempts=3)
    http = httpx.AsyncClient(
        transport=route({github.host: github, tembo.host: tembo, agen.host: agen})
    )
    app = create_app(tuned, http=http, content_per_minute=0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Harness(app, client, github, tembo)
    await http.aclose()


def creates(answer: Callable[[httpx.Request], httpx.Response | None]) -> Callable[..., object]:
    """A fault on Tembo's creates only (its reads answer as documented)."""

    def fault(request: httpx.Request) -> httpx.Response | None:
        return answer(request) if request.method == "POST" else None

    return fault


async def label(harness: Harness) -> None:
    await harness.deliver("issues", payloads.labeled(repo=REPO))
    await harness.settle()


async def test_a_401_falls_back_to_the_next_platform_and_the_comment_says_so(
    harness_with_agen: Harness, agen: FakeAgen
) -> None:
    harness = harness_with_agen
    harness.tembo.fault = creates(lambda r: httpx.Response(401, json={"error": "bad key"}))
    await label(harness)
    assert harness.tembo.sessions == []
    assert len(agen.sessions) == 1
    [comment] = harness.github.app_comments(REPO, 1)
    assert "Tembo answered 401; started on Agen instead" in comment.body
    rows = await harness.runtime.store.usage(0)
    assert [(r.kind, r.platform, r.outcome) for r in rows] == [
        ("fallback", "tembo", "fell back to agen"),
        ("dispatch", "agen", "created"),
    ]
    [record] = await harness.runtime.store.sessions_for_issue(REPO, 1)
    assert record.platform == "agen"


async def test_a_400_never_falls_back(harness_with_agen: Harness, agen: FakeAgen) -> None:
    harness = harness_with_agen
    harness.tembo.fault = creates(lambda r: httpx.Response(400, json={"error": "bad prompt"}))
    await label(harness)
    assert agen.requests == []
    [comment] = harness.github.app_comments(REPO, 1)
    assert "Could not start" in comment.body
    assert [r.kind for r in await harness.runtime.store.usage(0)] == ["refusal"]


async def test_never_falls_back_after_a_create_whose_outcome_is_unknown(
    harness_with_agen: Harness, agen: FakeAgen
) -> None:
    harness = harness_with_agen
    sent: list[dict[str, object]] = []

    def lost_then_refused(request: httpx.Request) -> httpx.Response | None:
        sent.append(json.loads(request.content))
        if len(sent) == 1:
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return httpx.Response(403, json={"error": "forbidden"})

    harness.tembo.fault = creates(lost_then_refused)
    await label(harness)
    assert len(sent) == 2
    assert agen.requests == []
    assert [r.kind for r in await harness.runtime.store.usage(0)] == ["refusal"]


async def test_timeouts_on_every_attempt_fall_back_once_the_lookup_proves_nothing_started(
    harness_with_agen: Harness, agen: FakeAgen
) -> None:
    """Each create times out before Tembo acts on it; each lookup (search by dispatch id)
    finds nothing, so the last attempt's unknown outcome is proven absent."""
    harness = harness_with_agen

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    harness.tembo.fault = creates(timeout)
    await label(harness)
    assert harness.tembo.sessions == []
    assert len(agen.sessions) == 1
    [comment] = harness.github.app_comments(REPO, 1)
    assert "Tembo gave no answer three times; started on Agen instead" in comment.body
    searches = harness.tembo.calls.count(("GET", "/session/search"))
    assert searches == 3  # before the 2nd and 3rd creates, and before falling back


def agen_creates(status: int) -> Callable[[httpx.Request], httpx.Response | None]:
    """Agen answers `status` to every create (its other calls answer as documented)."""

    def fault(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and request.url.path == "/api/v1/sessions":
            return agen_fake.failure(status, "no sessions for this key today")
        return None

    return fault


@pytest.mark.parametrize(
    ("status", "ending"),
    [(400, "Could not start an Agen session"), (503, "gave up after 3 attempts")],
)
async def test_when_the_fallback_fails_too_the_comment_still_says_what_came_before(
    harness_with_agen: Harness, agen: FakeAgen, status: int, ending: str
) -> None:
    harness = harness_with_agen
    harness.tembo.fault = creates(lambda r: httpx.Response(401, json={"error": "bad key"}))
    agen.fault = agen_creates(status)
    await label(harness)
    assert harness.tembo.sessions == [] and agen.sessions == []
    [comment] = harness.github.app_comments(REPO, 1)
    assert ending in comment.body
    assert "- Tembo answered 401; started on Agen instead" in comment.body
