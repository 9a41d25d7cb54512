"""The GitHub adapter against the fake: JWT, tokens, caches, headers and rate limits."""

from __future__ import annotations

import httpx
import jwt
import pytest

from bot.adapters.github import GitHubClient, Pacer, app_jwt, error_for
from bot.ports import GitHubError
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
    return GitHubClient(settings, http, content_per_minute=0, clock=clock)


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


async def test_a_secondary_limit_holds_back_the_installations_next_calls() -> None:
    clock = Clock()
    pacer = Pacer(60.0, clock=clock)
    pacer.push_back(1, 30.0)
    assert pacer._next[1] == pytest.approx(clock.now + 30.0)


async def test_pacer_spaces_content_calls_per_installation() -> None:
    waits: list[float] = []
    clock = Clock()
    pacer = Pacer(120.0, clock=clock)  # one call every 0.5 s

    import asyncio

    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    asyncio.sleep = fake_sleep  # type: ignore[assignment]
    try:
        for _ in range(3):
            await pacer.wait(1)
        await pacer.wait(2)  # another installation has its own budget
    finally:
        asyncio.sleep = real_sleep
    assert waits == [pytest.approx(0.5), pytest.approx(1.0)]


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
