"""`python -m bot check`: one line per setting, ✓ or ✗ with the fix, exit code 1 on any ✗.

GitHub and Tembo are the contract fakes of tests/support/fakes; `GET /meta` (unauthenticated,
docs.github.com "Meta" API, also on GitHub Enterprise Server) is answered here, and a JWT
GitHub cannot verify is answered as GitHub does: 401 "A JSON web token could not be decoded".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import pytest

from bot.adapters.sql import migrations
from bot.adapters.store import open_store
from bot.operator.check import expected_web_url, run_checks
from bot.settings import Secret, Settings
from tests.support.app import KeyPair
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def github_transport(github: FakeGitHub, tembo: FakeTembo) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == tembo.host:
            return tembo(request)
        assert request.url.host == github.host, request.url
        path = request.url.path.removeprefix(github.prefix)
        if path == "/meta":
            return httpx.Response(200, json={"verifiable_password_authentication": False})
        if path.startswith("/app"):
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            try:
                claims = jwt.decode(
                    token, github.public_key, algorithms=["RS256"], options={"verify_exp": False}
                )
            except jwt.PyJWTError:
                claims = {}
            if claims.get("iss") != github.app_id:
                return httpx.Response(
                    401, json={"message": "A JSON web token could not be decoded"}
                )
        return github(request)

    return httpx.MockTransport(handle)


async def check(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str]]:
    async with httpx.AsyncClient(transport=github_transport(github, tembo)) as http:
        code = await run_checks(settings, http)
    out = capsys.readouterr().out
    return code, out.splitlines()


def line(lines: list[str], text: str) -> str:
    found = [entry for entry in lines if text in entry]
    assert len(found) == 1, (text, lines)
    return found[0]


@pytest.fixture
async def ready(settings: Settings, github: FakeGitHub) -> Settings:
    """The conftest settings with a migrated database and GITHUB_URL matching the API."""
    store = open_store(settings.database_url)
    await store.migrate()
    await store.close()
    return settings.replace(github_url=f"https://{github.host.removeprefix('api.')}")


async def test_a_good_configuration_passes_every_check(
    ready: Settings,
    github: FakeGitHub,
    tembo: FakeTembo,
    app_key: KeyPair,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines = await check(ready, github, tembo, capsys)
    assert code == 0, lines
    results = lines[:-1]
    assert all(entry.startswith("✓ ") for entry in results), lines
    assert lines[-1] == "every check passed"
    assert line(lines, "GITHUB_API_URL https://api.github.test answers (GET /meta)")
    assert line(lines, "GITHUB_URL https://github.test goes with GITHUB_API_URL")
    assert "RSA, 2048 bits" in line(lines, "PRIVATE_KEY parses")
    assert "'tembo-dispatch'" in line(lines, "APP_ID 12345 matches the key")
    assert line(lines, "WEBHOOK_SECRET is set")
    latest = migrations("sqlite")[-1][0]
    assert f"migrated (version {latest})" in line(lines, "DATABASE_URL")
    assert "accepted" in line(lines, "TEMBO_API_KEY")
    # Secrets are never printed.
    text = "\n".join(lines)
    for secret in ready.secrets():
        assert secret not in text
    assert app_key.private.splitlines()[1] not in text


async def test_a_key_of_another_app_says_how_to_fix_it(
    ready: Settings, github: FakeGitHub, tembo: FakeTembo, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = KeyPair.generate().private
    code, lines = await check(ready.replace(private_key=Secret(pem)), github, tembo, capsys)
    assert code == 1
    assert line(lines, "PRIVATE_KEY parses").startswith("✓")  # it is a key, just not this App's
    refused = line(lines, "JWT")
    assert refused.startswith("✗ GitHub refused the App's JWT: GitHub answered 401")
    assert "check that APP_ID 12345 is the App whose private key is in PRIVATE_KEY" in refused


async def test_an_app_id_that_is_not_the_keys(
    ready: Settings, github: FakeGitHub, tembo: FakeTembo, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = await check(ready.replace(app_id="999"), github, tembo, capsys)
    assert code == 1
    assert line(lines, "JWT").startswith("✗")


async def test_a_key_that_does_not_parse(
    ready: Settings, github: FakeGitHub, tembo: FakeTembo, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----\n"
    code, lines = await check(ready.replace(private_key=Secret(broken)), github, tembo, capsys)
    assert code == 1
    parsed = line(lines, "PRIVATE_KEY does not parse")
    assert parsed.startswith("✗") and "PRIVATE_KEY_PATH" in parsed
    assert line(lines, "cannot sign a JWT").startswith("✗")
    assert "bm90IGEga2V5" not in "\n".join(lines)


async def test_nothing_registered_yet_names_every_missing_setting(
    tmp_path: Path, github: FakeGitHub, tembo: FakeTembo, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = Settings(
        github_api_url=github.base_url,
        github_url="https://github.test",
        database_url=f"sqlite:///{tmp_path / 'never-migrated.db'}",
    )
    code, lines = await check(bare, github, tembo, capsys)
    assert code == 1
    assert line(lines, "PRIVATE_KEY is not set").startswith("✗")
    assert "setup page" in line(lines, "APP_ID is not set")
    assert line(lines, "WEBHOOK_SECRET is not set").startswith("✗")
    assert "python -m bot migrate" in line(lines, "DATABASE_URL")
    assert line(lines, "TEMBO_API_KEY is not set but DEFAULT_PLATFORM=tembo").startswith("✗")
    assert lines[-1] == "5 of 7 checks failed"


async def test_a_refused_tembo_key(
    ready: Settings, github: FakeGitHub, tembo: FakeTembo, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = await check(
        ready.with_platform_env(TEMBO_API_KEY="tembo-wrong-key"), github, tembo, capsys
    )
    assert code == 1
    refused = line(lines, "TEMBO_API_KEY was refused")
    assert refused.startswith("✗") and "401" in refused and "tembo-wrong-key" not in refused


async def test_a_tembo_without_the_list_call_cannot_be_verified(
    ready: Settings, github: FakeGitHub, tembo: FakeTembo, capsys: pytest.CaptureFixture[str]
) -> None:
    tembo.fault = lambda request: httpx.Response(404, json={"error": "Not found"})
    code, lines = await check(ready, github, tembo, capsys)
    assert code == 1
    assert "cannot be verified without creating a session" in line(lines, "TEMBO_BASE_URL")


async def test_dry_run_needs_no_platform_credentials(
    ready: Settings, github: FakeGitHub, tembo: FakeTembo, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = ready.replace(default_platform="dry-run").with_platform_env(TEMBO_API_KEY=None)
    code, lines = await check(settings, github, tembo, capsys)
    assert code == 0, lines
    assert line(lines, "DEFAULT_PLATFORM=dry-run").startswith("✓")


async def test_an_unreachable_github_api_url(
    ready: Settings, tembo: FakeTembo, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.host == tembo.host:
            return tembo(request)
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        code = await run_checks(ready, http)
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert "cannot be reached (ConnectError)" in line(lines, "GITHUB_API_URL https://")
    assert line(lines, "could not reach GitHub").startswith("✗")


async def test_ghes_with_github_url_left_at_githubcom_is_caught(
    tmp_path: Path, app_key: KeyPair, tembo: FakeTembo, capsys: pytest.CaptureFixture[str]
) -> None:
    ghes = FakeGitHub(public_key=app_key.public, host="ghe.example.test", prefix="/api/v3")
    settings = Settings(
        app_id=ghes.app_id,
        private_key=Secret(app_key.private),
        webhook_secrets=(Secret("s"),),
        github_api_url=ghes.base_url,
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        default_platform="dry-run",
    )
    store = open_store(settings.database_url)
    await store.migrate()
    await store.close()

    code, lines = await check(settings, ghes, tembo, capsys)
    assert code == 1
    assert "set GITHUB_URL=https://ghe.example.test" in line(
        lines, "GITHUB_URL is https://github.com"
    )
    assert line(lines, "APP_ID 12345 matches the key").startswith("✓")  # via /api/v3/app

    code, lines = await check(
        settings.replace(github_url="https://ghe.example.test"), ghes, tembo, capsys
    )
    assert code == 0, lines
    assert ("GET", "/app") in ghes.calls


@pytest.mark.parametrize(
    ("api", "web"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com"),
        ("https://api.octocorp.ghe.com", "https://octocorp.ghe.com"),
        ("http://127.0.0.1:8080/ghe/api/v3", "http://127.0.0.1:8080/ghe"),
        ("https://proxy.example.com/github", None),
    ],
)
def test_expected_web_url(api: str, web: str | None) -> None:
    assert expected_web_url(api) == web


async def test_a_database_password_is_never_printed(
    ready: Settings, github: FakeGitHub, tembo: FakeTembo, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 9 on loopback: nothing listens, so the connection is refused at once.
    url = "postgresql://tembo:hunter2-db-password@127.0.0.1:9/tembo"
    code, lines = await check(ready.replace(database_url=url), github, tembo, capsys)
    assert code == 1
    database = line(lines, "DATABASE_URL")
    assert database.startswith("✗ DATABASE_URL postgresql://tembo:***@127.0.0.1:9/tembo")
    assert "hunter2" not in "\n".join(lines)


def check_process(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot check` in a child process with only `env` (and PATH, HOME, a
    throwaway SQLite database)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_command_line_exits_non_zero_on_a_failed_check(tmp_path: Path) -> None:
    done = check_process(
        tmp_path,
        # Loopback port 9: refused at once, nothing leaves the machine.
        GITHUB_API_URL="http://127.0.0.1:9/api/v3",
        GITHUB_URL="http://127.0.0.1:9",
        DEFAULT_PLATFORM="dry-run",
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert line(lines, "GITHUB_API_URL http://127.0.0.1:9/api/v3 cannot be reached")
    assert line(lines, "GITHUB_URL http://127.0.0.1:9 goes with").startswith("✓")
    assert line(lines, "DEFAULT_PLATFORM=dry-run").startswith("✓")


def test_the_command_line_names_a_bad_operator_limit(tmp_path: Path) -> None:
    done = check_process(tmp_path, LIMITS_PER_ORG_PER_DAY="lots")
    assert done.returncode == 2
    assert "LIMITS_PER_ORG_PER_DAY='lots' must be a whole number (0 or more)" in done.stderr


@pytest.mark.parametrize("value", ["0", "-1", "a week"])
def test_the_command_line_names_a_bad_retention(tmp_path: Path, value: str) -> None:
    done = check_process(tmp_path, RETENTION_DAYS=value)
    assert done.returncode == 2
    assert f"RETENTION_DAYS={value!r} must be" in done.stderr
