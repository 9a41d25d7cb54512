"""What `/` is, and the status page.

Without GitHub credentials `/` is the setup page (`setup.SetupFlow`); with them it is the
status page: the App, installations seen, job counts and the last deliveries. The status
page is served only to this machine or with `STATUS_TOKEN` (`access.operator_allowed`), and
it asks GitHub `GET /app` once, not at each view: the answer is kept for the process's
life, a failure for `APP_INFO_RETRY` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot import __version__
from bot.adapters.github import GitHubClient
from bot.logs import log
from bot.operator import report
from bot.operator.access import CHALLENGE, REFUSAL, operator_allowed
from bot.operator.html import e, page
from bot.operator.setup import CALLBACK_PATH, SETUP_PATH, SetupFlow, app_page_url
from bot.ports import Store
from bot.settings import Settings

logger = logging.getLogger("bot.operator.pages")
APP_INFO_TIMEOUT = 5.0
APP_INFO_RETRY = 300.0  # after GitHub failed to describe the App, ask again at most this often


class RuntimeView(Protocol):
    """The parts of `app.Runtime` the pages use."""

    @property
    def store(self) -> Store: ...

    @property
    def github(self) -> GitHubClient: ...


@dataclass(frozen=True)
class AppInfo:
    name: str
    page_url: str


def _when(timestamp: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(timestamp)))
    except (TypeError, ValueError):
        return "?"


class StatusPage:
    def __init__(
        self,
        settings: Settings,
        get_runtime: Callable[[], RuntimeView],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._get_runtime = get_runtime
        self._clock = clock
        self._app: AppInfo | None = None
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()

    async def describe_app(self, github: GitHubClient) -> AppInfo | None:
        """GitHub's `GET /app`, once for the process (a failure: once per APP_INFO_RETRY)."""
        async with self._lock:  # many views at once still make one call
            if self._app is not None:
                return self._app
            if self._failed_at is not None and self._clock() - self._failed_at < APP_INFO_RETRY:
                return None
            try:
                data = await asyncio.wait_for(github.app_request("GET", "/app"), APP_INFO_TIMEOUT)
            except Exception as exc:
                # Logged by name only: an exception's text could quote a request.
                log(logger, "status.app_unknown", logging.WARNING, error=type(exc).__name__)
                data = None
            if isinstance(data, dict) and (data.get("name") or data.get("slug")):
                self._app = AppInfo(
                    name=str(data.get("name") or data.get("slug")),
                    page_url=app_page_url(self.settings, data),
                )
            else:
                self._failed_at = self._clock()
            return self._app

    async def __call__(self, request: Request) -> Response:
        if not operator_allowed(request, self.settings.status_token):
            body = (
                '<h1>tembo-dispatch</h1><p class="error" id="refused">'
                f"This page is {e(REFUSAL)}.</p>"
            )
            return page("tembo-dispatch: status", body, 401, CHALLENGE)
        settings = self.settings
        runtime = self._get_runtime()
        app = await self.describe_app(runtime.github)
        try:
            stats = await runtime.store.stats()
            counts = await runtime.store.job_counts("delivery")
            usage = await runtime.store.usage(time.time() - 86400)  # the usage table: last day
        except Exception as exc:
            log(logger, "status.store_failed", logging.WARNING, error=type(exc).__name__)
            return page(
                "tembo-dispatch: status",
                '<h1>tembo-dispatch</h1><p class="error">The store is not answering; '
                "see <a href=/readyz>/readyz</a> and the logs.</p>",
                503,
            )
        if app:
            app_cell = (
                f'<a href="{e(app.page_url)}" id="app-name">{e(app.name)}</a> '
                f"<small>(id {e(settings.app_id)})</small>"
            )
        else:
            app_cell = (
                f'<span id="app-name">App {e(settings.app_id)}</span> <small>(GitHub did not '
                "describe it; run <code>python -m bot check</code>)</small>"
            )
        jobs = "".join(
            f"<tr><th>{state}</th><td id='jobs-{state}'>{int(counts.get(state, 0))}</td></tr>"
            for state in ("queued", "running", "failed", "dead", "done")
        )
        rows = "".join(
            "<tr>"
            f"<td>{e(_when(d.get('received_at')))}</td>"
            f"<td>{e(d.get('event'))}{'.' + e(d['action']) if d.get('action') else ''}</td>"
            f"<td>{e(d.get('state') or 'not queued')}</td>"
            f"<td><small><code>{e(d.get('delivery_id'))}</code></small></td>"
            "</tr>"
            for d in stats.get("recent_deliveries", [])
        )
        deliveries = (
            f"<table id='deliveries'><tr><th>received</th><th>event</th><th>job</th>"
            f"<th>delivery</th></tr>{rows}</table>"
            if rows
            else "<p id='deliveries'>None yet.</p>"
        )
        body = f"""
<h1>tembo-dispatch</h1>
<table>
<tr><th>App</th><td>{app_cell}</td></tr>
<tr><th>GitHub</th><td><code>{e(settings.github_url)}</code></td></tr>
<tr><th>Installations seen</th><td id="installations">{int(stats.get("installations", 0))}
<small>({int(stats.get("repositories", 0))} repositories)</small></td></tr>
<tr><th>Default platform</th><td>{e(settings.default_platform)}</td></tr>
</table>
<h2>Jobs</h2>
<table>{jobs}</table>
<h2>Last deliveries</h2>
{deliveries}
<h2>Usage, last day</h2>
{report.status_html(usage)}
<p><small><a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a> ·
<a href="/metrics">/metrics</a> · tembo-dispatch {e(__version__)}</small></p>
"""
        return page("tembo-dispatch: status", body)


def operator_routes(
    settings: Settings,
    get_runtime: Callable[[], RuntimeView],
    *,
    setup_token: str,
    manifest_file: Path | None = None,
    clock: Callable[[], float] = time.time,
) -> list[Route]:
    """`GET /`, `GET /setup` and `GET /setup/callback` for `create_app`'s route list."""
    flow = SetupFlow(settings, get_runtime, setup_token, manifest_file=manifest_file, clock=clock)
    status = StatusPage(settings, get_runtime)

    async def home(request: Request) -> Response:
        if settings.has_github_credentials:
            return await status(request)
        return await flow.setup_page(request)

    return [
        Route("/", home, methods=["GET"]),
        Route(SETUP_PATH, flow.setup_page, methods=["GET"]),
        Route(CALLBACK_PATH, flow.callback, methods=["GET"]),
    ]
