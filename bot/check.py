"""`python -m bot check`: one line per setting, ✓ or ✗ with the fix; non-zero on any ✗."""

from __future__ import annotations

import httpx

from bot.adapters.github import GitHubClient
from bot.adapters.store import open_store
from bot.ports import RemoteError
from bot.settings import Settings


async def run_checks(settings: Settings, http: httpx.AsyncClient | None = None) -> int:
    lines: list[tuple[bool, str]] = []
    client = http or httpx.AsyncClient(timeout=10.0)
    try:
        lines.append(
            (bool(settings.webhook_secrets), "WEBHOOK_SECRET is set")
            if settings.webhook_secrets
            else (False, "WEBHOOK_SECRET is not set: copy it from the App's settings page")
        )
        if settings.app_id and settings.private_key:
            github = GitHubClient(settings, client)
            try:
                app = await github.app_request("GET", "/app")
                lines.append(
                    (True, f"APP_ID and PRIVATE_KEY accepted by GitHub (App {app.get('slug')!r})")
                )
            except RemoteError as exc:
                lines.append(
                    (
                        False,
                        f"GitHub refused the App's JWT: {exc.message}; check APP_ID "
                        "matches the App whose private key is in PRIVATE_KEY",
                    )
                )
            except ValueError as exc:
                lines.append((False, f"PRIVATE_KEY does not parse: {exc}"))
        else:
            lines.append((False, "APP_ID and PRIVATE_KEY must be set (register the App first)"))
        store = open_store(settings.database_url)
        try:
            await store.migrate()
            lines.append((await store.ping(), "database reachable and migrated"))
        except Exception as exc:
            lines.append((False, f"database {settings.database_url.split('@')[-1]}: {exc}"))
        finally:
            await store.close()
    finally:
        if http is None:
            await client.aclose()
    for ok, text in lines:
        print(f"{'✓' if ok else '✗'} {text}")
    return 0 if all(ok for ok, _ in lines) else 1
