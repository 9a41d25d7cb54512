"""The HTTP side: `create_app(settings) -> Starlette`. Routes only.

The webhook route hands each request to `bot.ingest` (refuse, verify, dedupe, one
durable write, then 202). The worker runs in the same process (lifespan task) when
asked to; `python -m bot serve` runs it in a process of its own (bot/serve.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot import budget, ingest
from bot import platforms as registry
from bot.actions import Context
from bot.adapters.github import GitHubClient
from bot.adapters.store import open_store
from bot.budget_queue import Budget
from bot.handler import Handler
from bot.ingest import Ingest
from bot.logs import log
from bot.metrics import Metrics, http_observer, metrics_route
from bot.operator.pages import operator_routes
from bot.operator.setup import new_setup_token
from bot.ports import PlatformFactory, Store
from bot.repo_config import RepoConfig
from bot.settings import Settings
from bot.worker import Worker

logger = logging.getLogger("bot.app")


@dataclass
class Runtime:
    """What the lifespan builds and the routes use; tests reach the worker through it."""

    settings: Settings
    store: Store
    http: httpx.AsyncClient
    github: GitHubClient
    worker: Worker | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    ingest: Ingest | None = None


def create_app(
    settings: Settings,
    *,
    http: httpx.AsyncClient | None = None,
    store: Store | None = None,
    platforms: PlatformFactory | None = None,
    run_worker: bool = True,
    worker_name: str | None = None,
    content_per_minute: int | None = None,
    clock: Callable[[], float] = time.time,
    setup_token: str | None = None,
    on_queued: Callable[[], None] | None = None,
) -> Starlette:
    """`setup_token`: what the setup page asks for (`python -m bot serve` prints it); a
    random one nobody knows when not given."""
    state: dict[str, Runtime] = {}
    metrics = Metrics()  # this app's own registry: several apps in one process never clash

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own_http = http is None
        client = http or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))
        the_store = store or open_store(settings.database_url)
        await the_store.migrate()
        per_minute = content_per_minute
        if per_minute is None:
            per_minute = settings.github_content_per_minute
        # 0 (tests that are not about it): no budget, no store round trip per call.
        content_budget = None
        if per_minute > 0:
            limits = budget.Limits(
                per_minute=int(per_minute),
                per_hour=settings.github_content_per_hour,
                minute_seconds=settings.github_content_minute_seconds,
                hour_seconds=settings.github_content_hour_seconds,
            )
            content_budget = Budget(
                the_store,
                limits,
                clock=clock,
                on_wait=lambda seconds: metrics.rate_limit_wait(seconds, "budget"),
            )
        observe = http_observer(
            metrics,
            settings.github_api_url,
            registry.base_urls(settings),
        )
        client.event_hooks["response"].append(observe)
        github = GitHubClient(settings, client, budget=content_budget, clock=clock)
        runtime = Runtime(
            settings=settings, store=the_store, http=client, github=github, metrics=metrics
        )
        if run_worker and settings.has_github_credentials:
            ctx = Context(
                github=github,
                store=the_store,
                platforms=platforms or registry.platform_factory(settings, client),
                clock=clock,
                metrics=metrics,
                max_attempts=settings.max_attempts,
            )
            handler = Handler(ctx, RepoConfig.defaults(settings))
            runtime.worker = Worker(
                the_store,
                handler,
                concurrency=settings.worker_concurrency,
                max_attempts=settings.max_attempts,
                lease_seconds=settings.lease_seconds,
                retry_base=settings.retry_base_seconds,
                retry_cap=settings.retry_max_seconds,
                clock=clock,
                name=worker_name,
                on_rate_limit=lambda seconds: metrics.rate_limit_wait(seconds, "remote"),
                retention=settings.retention_days * 24 * 3600,
                dedupe_window=ingest.DEDUPE_WINDOW,
            )
            runtime.tasks.append(asyncio.create_task(runtime.worker.run()))
        state["runtime"] = runtime
        runtime.ingest = Ingest(
            settings,
            the_store,
            metrics,
            limits=ingest.Limits(
                body_timeout=settings.webhook_body_timeout,
                max_pending=settings.webhook_max_pending,
            ),
            clock=clock,
            on_queued=runtime.worker.notify if runtime.worker is not None else on_queued,
        )
        app.state.runtime = runtime
        log(
            logger,
            "app.started",
            worker=runtime.worker is not None,
            credentials=settings.has_github_credentials,
        )
        try:
            yield
        finally:
            if runtime.worker is not None:
                await runtime.worker.stop()
            for task in runtime.tasks:
                task.cancel()
            for task in runtime.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if store is None:
                await the_store.close()
            if own_http:
                await client.aclose()
            else:
                # A client the caller owns may serve the next app: count for this one only.
                client.event_hooks["response"].remove(observe)

    async def receive(request: Request) -> Response:
        ingest = state["runtime"].ingest
        assert ingest is not None
        return await ingest.receive(request)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        ok = await state["runtime"].store.ping()
        return PlainTextResponse("ok" if ok else "store not ready", status_code=200 if ok else 503)

    paths = {settings.webhook_path, "/api/github/webhooks"}
    routes = [Route(path, receive, methods=["POST"]) for path in sorted(paths)]
    routes += [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        metrics_route(
            metrics,
            lambda: state["runtime"].store.job_counts("delivery"),
            status_token=settings.status_token,
        ),
    ]
    routes += operator_routes(
        settings, lambda: state["runtime"], setup_token=setup_token or new_setup_token()
    )
    return Starlette(routes=routes, lifespan=lifespan)


def runtime_of(app: Starlette) -> Runtime:
    runtime: Any = app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime
