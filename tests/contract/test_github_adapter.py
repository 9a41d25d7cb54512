"""The GitHub adapter against the fake: JWT, tokens, caches, headers and rate limits."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import pytest

from bot.adapters.github import GitHubClient, app_jwt, error_for
from bot.adapters.store_sqlite import SQLiteStore
from bot.budget import Limits
from bot.budget_queue import Budget
from bot.ports import BudgetShort, GitHubError, Priority
from bot.settings import Settings
from tests.support.app import Clock, KeyPair
from tests.support.fakes.github import FakeGitHub

pytestmark = pytest.mark.anyio
REPO = "acme/web"


def test_app_jwt_is_rs256_with_backdated_iat_and_short_expiry(app_key: KeyPair) -> None:
    now = 1_800_000_000
    token = app_jwt("123", app_key.private, now)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(
        token,
        app_key.public,
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {"iss": "123", "iat": now - 60, "exp": now + 540}
    assert claims["exp"] - claims["iat"] <= 600


def client(settings: Settings, github: FakeGitHub, clock: Clock) -> GitHubClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(github))
    return GitHubClient(settings, http, clock=clock)


async def test_token_is_cached_until_shortly_before_it_expires(
    settings: Settings, github: FakeGitHub
) -> None:
    clock = Clock()
    github.clock = clock
    gh = client(settings, github, clock)
    first = await gh.installation_token(1)
    clock.now += 50 * 60  # 10 min left: still good
    assert await gh.installation_token(1) == first
    clock.now += 6 * 60  # 4 min left: renewed
    assert await gh.installation_token(1) != first
    assert github.count("POST", r"/app/installations/1/access_tokens") == 2


async def test_config_file_is_cached_a_minute_then_revalidated_by_etag(
    settings: Settings, github: FakeGitHub
) -> None:
    clock = Clock()
    gh = client(settings, github, clock)
    github.files[(REPO, ".github/tembo.yml")] = "label: a\n"
    assert await gh.read_file(1, REPO, ".github/tembo.yml") == "label: a\n"
    assert await gh.read_file(1, REPO, ".github/tembo.yml") == "label: a\n"
    assert github.count("GET", r"/repos/acme/web/contents/.*") == 1
    clock.now += 61
    assert await gh.read_file(1, REPO, ".github/tembo.yml") == "label: a\n"  # 304
    github.files[(REPO, ".github/tembo.yml")] = "label: b\n"  # a push changed it
    clock.now += 61
    assert await gh.read_file(1, REPO, ".github/tembo.yml") == "label: b\n"
    assert github.count("GET", r"/repos/acme/web/contents/.*") == 3
    assert await gh.read_file(1, REPO, ".github/missing.yml") is None


async def test_permission_uses_role_name_and_is_cached(
    settings: Settings, github: FakeGitHub
) -> None:
    clock = Clock()
    gh = client(settings, github, clock)
    github.permissions[(REPO, "tri")] = "triage"
    assert await gh.permission(1, REPO, "tri") == "triage"
    assert await gh.permission(1, REPO, "tri") == "triage"
    assert github.count("GET", r"/repos/acme/web/collaborators/tri/permission") == 1


async def test_a_revoked_token_is_dropped_and_the_error_is_transient(
    settings: Settings, github: FakeGitHub
) -> None:
    gh = client(settings, github, Clock())
    await gh.installation_token(1)
    github.tokens.clear()
    with pytest.raises(GitHubError) as caught:
        await gh.create_comment(1, REPO, 1, "hi")
    assert caught.value.transient and caught.value.status == 401
    await gh.create_comment(1, REPO, 1, "hi")  # a new token is fetched


def response(status: int, body: dict[str, str], **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("answer", "transient", "retry_after"),
    [
        (response(500, {"message": "boom"}), True, None),
        (response(502, {"message": "bad gateway"}), True, None),
        (response(429, {"message": "slow"}, **{"retry-after": "30"}), True, 30.0),
        (
            response(403, {"message": "You have exceeded a secondary rate limit"}),
            True,
            60.0,
        ),
        (response(403, {"message": "limit"}, **{"retry-after": "7"}), True, 7.0),
        (
            response(
                403,
                {"message": "API rate limit exceeded"},
                **{"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000100"},
            ),
            True,
            100.0,
        ),
        (response(403, {"message": "Resource not accessible by integration"}), False, None),
        (response(422, {"message": "Validation Failed"}), False, None),
    ],
)
def test_error_mapping(answer: httpx.Response, transient: bool, retry_after: float | None) -> None:
    error = error_for(answer, now=1_000_000)
    assert error.transient is transient
    assert error.retry_after == retry_after


async def budgeted(
    settings: Settings, github: FakeGitHub, clock: Clock, tmp_path: Path, limits: Limits
) -> tuple[GitHubClient, SQLiteStore]:
    """A client whose content calls take slots of a budget kept in a real store; waiting
    moves the hand clock instead of sleeping."""
    store = SQLiteStore(str(tmp_path / "budget.db"))
    await store.migrate()

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    budget = Budget(store, limits, clock=clock, sleep=sleep)
    http = httpx.AsyncClient(transport=httpx.MockTransport(github))
    return GitHubClient(settings, http, budget=budget, clock=clock), store


async def test_a_secondary_limit_pauses_the_budget_and_the_call_goes_after_the_pause(
    settings: Settings, github: FakeGitHub, tmp_path: Path
) -> None:
    clock = Clock()
    github.clock = clock
    gh, store = await budgeted(settings, github, clock, tmp_path, Limits())
    answered: list[float] = []

    def limited_once(request: httpx.Request) -> httpx.Response | None:
        if request.method != "POST" or request.url.path.startswith("/app"):
            return None
        answered.append(clock.now)
        if len(answered) == 1:
            message = {"message": "You have exceeded a secondary rate limit."}
            return httpx.Response(403, json=message, headers={"retry-after": "30"})
        return None

    github.fault = limited_once
    await gh.create_comment(1, REPO, 1, "hi", priority=Priority.LINK)
    assert len(answered) == 2
    assert answered[1] >= answered[0] + 30
    # The pause is in the store: a call of another process would have waited too.
    key = f"app:{settings.app_id}"
    limits = Limits().windows(Priority.LINK)
    retry_at = await store.take_budget(key, lambda: answered[0] + 29, limits)
    assert retry_at == pytest.approx(answered[0] + 30)
    await store.close()


async def test_a_call_told_not_to_wait_finds_no_slot_and_says_when(
    settings: Settings, github: FakeGitHub, tmp_path: Path
) -> None:
    clock = Clock()
    github.clock = clock
    limits = Limits(per_minute=2, per_hour=100)
    gh, store = await budgeted(settings, github, clock, tmp_path, limits)
    await gh.create_comment(1, REPO, 1, "one", priority=Priority.LINK)
    await gh.create_comment(2, REPO, 1, "two", priority=Priority.LINK)
    with pytest.raises(BudgetShort) as short:
        await gh.update_comment(1, REPO, 1000, "edit", priority=Priority.FOLLOW, wait=False)
    assert short.value.retry_at > clock.now
    assert github.count("PATCH", r"/repos/.*") == 0
    await store.close()


async def test_a_primary_limit_answer_does_not_pause_the_shared_budget(
    settings: Settings, github: FakeGitHub, tmp_path: Path
) -> None:
    clock = Clock()
    github.clock = clock
    gh, store = await budgeted(settings, github, clock, tmp_path, Limits())

    def exhausted(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.startswith("/app"):
            return None
        headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(clock.now) + 600)}
        return httpx.Response(403, json={"message": "API rate limit exceeded"}, headers=headers)

    github.fault = exhausted
    with pytest.raises(GitHubError) as raised:
        await gh.create_comment(1, REPO, 1, "hi")
    assert raised.value.primary and raised.value.transient
    # Other installations still have the App's content budget.
    key = f"app:{settings.app_id}"
    assert await store.take_budget(key, clock, Limits().windows(Priority.LINK)) is None
    # This installation's next call waits for the reset.
    assert gh.primary.delay(1, clock.now) == pytest.approx(600, abs=1)
    assert gh.primary.delay(2, clock.now) == 0
    await store.close()


async def test_a_secondary_limit_on_a_read_holds_the_next_read_until_it_ends(
    settings: Settings, github: FakeGitHub
) -> None:
    clock = Clock()
    github.clock = clock
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.now += seconds

    http = httpx.AsyncClient(transport=httpx.MockTransport(github))
    gh = GitHubClient(settings, http, clock=clock, sleep=sleep)

    def limited_once(request: httpx.Request) -> httpx.Response | None:
        if "/permission" not in request.url.path or waited:
            return None
        message = "You have exceeded a secondary rate limit. Please wait a few minutes."
        return httpx.Response(403, json={"message": message}, headers={"retry-after": "60"})

    github.fault = limited_once
    with pytest.raises(GitHubError) as raised:
        await gh.permission(1, REPO, "octocat")
    assert raised.value.transient and not raised.value.primary
    clock.now += 15
    assert await gh.read_file(1, REPO, ".github/tembo.yml") is None  # another read, held
    assert waited == [pytest.approx(45)]
    assert await gh.permission(1, REPO, "octocat") == "read"
    assert waited == [pytest.approx(45)]  # the pause is over: no more waiting


async def test_ghes_base_path_is_used_for_every_call(app_key: KeyPair, settings: Settings) -> None:
    github = FakeGitHub(public_key=app_key.public, host="ghe.acme.test", prefix="/api/v3")
    ghes = settings.replace(github_api_url=github.base_url)
    gh = client(ghes, github, Clock())
    await gh.create_comment(1, REPO, 1, "hi")
    assert await gh.app_request("GET", "/app") == {
        "id": 12345,
        "slug": "tembo-dispatch",
        "name": "tembo-dispatch",
    }
    assert [path for _, path in github.calls] == [
        "/app/installations/1/access_tokens",
        "/repos/acme/web/issues/1/comments",
        "/app",
    ]


async def test_every_comment_body_is_scrubbed_of_secrets_and_minted_tokens(
    settings: Settings, github: FakeGitHub, app_key: KeyPair
) -> None:
    clock = Clock()
    gh = client(settings, github, clock)
    token = await gh.installation_token(1)
    jwt_now = gh.jwt()
    tembo_key = settings.platform_env.get("TEMBO_API_KEY")
    assert tembo_key is not None
    leaky = f"t={token} j={jwt_now} k={tembo_key}"
    pem_line = app_key.private.splitlines()[1]
    comment_id = await gh.create_comment(1, REPO, 3, f"{leaky} pem={pem_line}")
    created = github.comments[comment_id].body
    assert created.count("[redacted]") == 4
    for secret in (token, jwt_now, pem_line):
        assert secret not in created
    await gh.update_comment(1, REPO, comment_id, f"again {token}")
    assert github.comments[comment_id].body == "again [redacted]"


async def test_the_apps_bot_login_comes_from_get_app_once(
    settings: Settings, github: FakeGitHub
) -> None:
    gh = client(settings, github, Clock())
    assert await gh.app_login() == "tembo-dispatch[bot]"
    assert await gh.app_login() == "tembo-dispatch[bot]"
    assert github.count("GET", "/app") == 1


async def test_listed_comments_carry_their_times_and_author_association(
    settings: Settings, github: FakeGitHub
) -> None:
    github.add_comment(REPO, 3, "hi", "alice", association="MEMBER", at=1_700_000_000)
    [comment] = await client(settings, github, Clock()).list_comments(1, REPO, 3)
    assert (comment.user.login, comment.author_association) == ("alice", "MEMBER")
    assert comment.created_at == comment.updated_at == 1_700_000_000
