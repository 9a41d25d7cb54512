"""`python -m bot check`: one line per setting, ✓ or ✗ with the fix; non-zero on any ✗.

Owns the questions an operator asks before going live: does GitHub answer at
GITHUB_API_URL, does the key parse and belong to APP_ID (GET /app with the JWT), is there
a webhook secret, is the database reachable and migrated, does each configured platform
accept its credentials (each registry entry's `probe`). It reads only: no migration, no
session, no comment. GitHub is asked through `GitHubClient`, as the app asks it. Secrets
are never printed; a database URL is shown without its password.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot import platforms
from bot.adapters.github import GitHubClient
from bot.adapters.sql import migrations
from bot.adapters.store import open_store
from bot.ports import GitHubError, RemoteError
from bot.settings import Settings

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True)
class Result:
    ok: bool
    text: str

    def __str__(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.text}"


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def expected_web_url(api_url: str) -> str | None:
    """GITHUB_URL that goes with GITHUB_API_URL: api.HOST -> HOST, HOST/api/v3 -> HOST."""
    parts = urlsplit(api_url)
    path = parts.path.rstrip("/")
    if parts.netloc.startswith("api.") and not path:
        return f"{parts.scheme}://{parts.netloc[4:]}"
    if path.endswith("/api/v3"):
        return f"{parts.scheme}://{parts.netloc}{path.removesuffix('/api/v3')}"
    return None


# ---------------------------------------------------------------------------
# The checks: each returns one Result and never raises for a wrong setting.


async def check_github_api(settings: Settings, http: httpx.AsyncClient) -> Result:
    url = settings.github_api_url
    try:
        await GitHubClient(settings, http).meta()
    except GitHubError as exc:
        if exc.status is None:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else exc.message
            return Result(
                False,
                f"GITHUB_API_URL {url} cannot be reached ({cause}): check the address, "
                "DNS and proxies; GitHub Enterprise Server: https://HOST/api/v3",
            )
        hint = (
            "for GitHub Enterprise Server it is https://HOST/api/v3"
            if exc.status == 404
            else "is it GitHub's REST API?"
        )
        return Result(False, f"GITHUB_API_URL {url} answered {exc.status} to GET /meta: {hint}")
    except ValueError:
        return Result(
            False, f"GITHUB_API_URL {url} answered GET /meta without JSON: is it GitHub's REST API?"
        )
    return Result(True, f"GITHUB_API_URL {url} answers (GET /meta)")


async def check_github_url(settings: Settings, http: httpx.AsyncClient) -> Result:
    expected = expected_web_url(settings.github_api_url)
    if expected is None:
        return Result(
            True,
            f"GITHUB_URL is {settings.github_url} (cannot tell from GITHUB_API_URL whether they "
            "belong together)",
        )
    if settings.github_url != expected:
        return Result(
            False,
            f"GITHUB_URL is {settings.github_url} but GITHUB_API_URL is "
            f"{settings.github_api_url}: set GITHUB_URL={expected} (registration and links "
            "use it)",
        )
    return Result(True, f"GITHUB_URL {settings.github_url} goes with GITHUB_API_URL")


async def check_private_key(settings: Settings, http: httpx.AsyncClient) -> Result:
    if settings.private_key is None:
        return Result(
            False,
            "PRIVATE_KEY is not set: register the App from the setup page (make serve, then "
            "open /), or download a key from the App's settings and set PRIVATE_KEY_PATH",
        )
    try:
        key = serialization.load_pem_private_key(settings.private_key.reveal().encode(), None)
    except (ValueError, TypeError) as exc:
        reason = str(exc).split("\n")[0][:120] or type(exc).__name__
        return Result(
            False,
            f"PRIVATE_KEY does not parse ({reason}): paste the whole .pem file from the App's "
            "settings, or point PRIVATE_KEY_PATH at it",
        )
    except Exception as exc:  # cryptography's UnsupportedAlgorithm and friends
        return Result(False, f"PRIVATE_KEY does not parse ({type(exc).__name__})")
    if not isinstance(key, rsa.RSAPrivateKey):
        return Result(False, "PRIVATE_KEY is not an RSA key: GitHub Apps sign with RS256")
    return Result(True, f"PRIVATE_KEY parses (RSA, {key.key_size} bits)")


async def check_app(settings: Settings, http: httpx.AsyncClient) -> Result:
    if not settings.app_id:
        return Result(
            False,
            "APP_ID is not set: register the App from the setup page, or copy the App ID "
            "from the App's settings",
        )
    if settings.private_key is None:
        return Result(False, f"APP_ID {settings.app_id} cannot be checked without PRIVATE_KEY")
    github = GitHubClient(settings, http)
    try:
        data = await github.app_request("GET", "/app")
    except RemoteError as exc:
        hint = (
            f"check that APP_ID {settings.app_id} is the App whose private key is in "
            "PRIVATE_KEY, and that this machine's clock is right"
            if exc.status == 401
            else "check GITHUB_API_URL"
        )
        return Result(False, f"GitHub refused the App's JWT: {exc.message}; {hint}")
    except Exception as exc:  # PyJWT refusing the key
        return Result(False, f"cannot sign a JWT with PRIVATE_KEY ({type(exc).__name__})")
    if not isinstance(data, dict):
        return Result(False, "GET /app answered without an App; check GITHUB_API_URL")
    ids = {str(data.get("id")), str(data.get("client_id"))}
    name = data.get("slug") or data.get("name")
    if settings.app_id not in ids:
        return Result(
            False,
            f"APP_ID is {settings.app_id} but the key belongs to App {data.get('id')} "
            f"({name}): set APP_ID={data.get('id')}",
        )
    return Result(True, f"APP_ID {settings.app_id} matches the key: GitHub knows it as {name!r}")


async def check_webhook_secret(settings: Settings, http: httpx.AsyncClient) -> Result:
    count = len(settings.webhook_secrets)
    if count == 0:
        return Result(
            False,
            "WEBHOOK_SECRET is not set: copy it from the App's settings (Webhook secret), "
            "or register the App from the setup page",
        )
    rotation = f" ({count}, for rotation)" if count > 1 else ""
    return Result(True, f"WEBHOOK_SECRET is set{rotation}")


async def check_database(settings: Settings, http: httpx.AsyncClient) -> Result:
    shown = _without_password(settings.database_url)
    backend = "sqlite" if settings.database_url.startswith("sqlite:") else "postgres"
    try:
        store = open_store(settings.database_url)
    except Exception as exc:
        return Result(False, f"DATABASE_URL {shown}: {exc}")
    try:
        schema_version: Callable[[], Awaitable[int]] | None = getattr(store, "schema_version", None)
        if schema_version is None:
            ok = await asyncio.wait_for(store.ping(), 15)
            return Result(
                ok,
                f"DATABASE_URL {shown} reachable and migrated"
                if ok
                else f"DATABASE_URL {shown} is not ready: run `python -m bot migrate`",
            )
        version = await asyncio.wait_for(schema_version(), 15)
    except Exception as exc:
        return Result(
            False,
            f"DATABASE_URL {shown} is not reachable ({type(exc).__name__}: "
            f"{str(exc)[:160]}): is the server up and the URL right?",
        )
    finally:
        await store.close()
    latest = migrations(backend)[-1][0]
    if version < latest:
        return Result(
            False,
            f"DATABASE_URL {shown} is reachable but at schema version {version} of {latest}: "
            "run `python -m bot migrate` (serve also migrates when it starts)",
        )
    return Result(True, f"DATABASE_URL {shown} reachable and migrated (version {version})")


async def check_platforms(settings: Settings, http: httpx.AsyncClient) -> list[Result]:
    """The default platform, and every platform with any of its required variables set."""
    env = settings.platform_env
    wanted = [
        platform
        for platform in platforms.REGISTRY
        if platform.required
        and (
            platform.name == settings.default_platform
            or any(env.get(name) is not None for name in platform.required)
        )
    ]
    if not wanted:
        return [
            Result(
                True,
                f"DEFAULT_PLATFORM={settings.default_platform}: no platform credentials needed",
            )
        ]
    results = []
    for platform in wanted:
        unset = platform.unset(env)
        if unset:
            names = " and ".join(unset)
            verb = "is" if len(unset) == 1 else "are"
            why = (
                f"but DEFAULT_PLATFORM={platform.name}: set {'it' if len(unset) == 1 else 'them'}, "
                "or choose another DEFAULT_PLATFORM"
                if platform.name == settings.default_platform
                else f"but {platform.display} needs {'it' if len(unset) == 1 else 'them'}"
            )
            results.append(Result(False, f"{names} {verb} not set {why}"))
        elif platform.probe is not None:
            ok, text = await platform.probe(env, http)
            results.append(Result(ok, text))
        else:
            results.append(
                Result(
                    True,
                    f"{' and '.join(platform.required)} set (not verified: check has no "
                    f"read-only call for {platform.name} and cannot verify it without "
                    "creating a session)",
                )
            )
    return results


CHECKS: tuple[Callable[[Settings, httpx.AsyncClient], Awaitable[Result]], ...] = (
    check_github_api,
    check_github_url,
    check_private_key,
    check_app,
    check_webhook_secret,
    check_database,
)


async def collect(settings: Settings, http: httpx.AsyncClient) -> list[Result]:
    results = []
    for check in CHECKS:
        try:
            results.append(await check(settings, http))
        except Exception as exc:  # a bug in a check must not hide the others
            results.append(Result(False, f"{check.__name__} failed: {type(exc).__name__}"))
    try:
        results += await check_platforms(settings, http)
    except Exception as exc:
        results.append(Result(False, f"check_platforms failed: {type(exc).__name__}"))
    return results


async def run_checks(settings: Settings, http: httpx.AsyncClient | None = None) -> int:
    """Print one line per check; 0 when all passed, 1 otherwise."""
    client = http or httpx.AsyncClient(timeout=TIMEOUT)
    try:
        results = await collect(settings, client)
    finally:
        if http is None:
            await client.aclose()
    for result in results:
        print(result)
    failed = sum(not r.ok for r in results)
    print(f"{failed} of {len(results)} checks failed" if failed else "every check passed")
    return 1 if failed else 0
