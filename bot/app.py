"""The HTTP side: `create_app(settings) -> Starlette`. Routes only.

Ingest answers before anything slow happens: size cap, signature, headers, a cheap
relevance filter, then one durable write of the delivery and its job. The worker runs
in the same process (lifespan task) unless told not to.
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
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import platforms as registry
from bot import policy, webhook
from bot.actions import Context
from bot.adapters.github import GitHubClient
from bot.adapters.store import open_store
from bot.budget import Budget, Limits
from bot.events import lock_key
from bot.handler import Handler
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


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise webhook.PayloadTooLarge(f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise webhook.PayloadTooLarge(f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


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
            limits = Limits(
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
            )
            runtime.tasks.append(asyncio.create_task(runtime.worker.run()))
        state["runtime"] = runtime
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
        runtime = state["runtime"]
        if not settings.webhook_secrets:
            metrics.delivery(request.headers.get("x-github-event"), "unconfigured")
            return JSONResponse(
                {"error": "WEBHOOK_SECRET is not set; register the App from the setup page"},
                status_code=503,
            )
        try:
            body = await _read_capped(request, webhook.MAX_BODY_BYTES)
            delivery = webhook.parse(request.headers, body, settings.webhook_secrets)
        except webhook.WebhookError as exc:
            metrics.rejected(request.headers.get("x-github-event"), exc)
            log(
                logger,
                "delivery.rejected",
                logging.WARNING,
                status=exc.status_code,
                error=str(exc),
                delivery_id=request.headers.get("x-github-delivery"),
            )
            return JSONResponse({"error": str(exc)}, status_code=exc.status_code)
        except ClientDisconnect:
            return Response(status_code=400)
        fields: dict[str, Any] = {
            "delivery_id": delivery.delivery_id,
            "github_event": delivery.event,
            "action": delivery.action,
        }
        if not policy.worth_queueing(delivery.event, delivery.payload):
            metrics.delivery(delivery.event, "ignored")
            return JSONResponse({"status": "ignored"}, status_code=200)
        queued = await runtime.store.enqueue(
            delivery.delivery_id,
            delivery.event,
            delivery.action,
            body,
            lock_key(delivery.payload),
            clock(),
        )
        if not queued:
            metrics.delivery(delivery.event, "duplicate")
            log(logger, "delivery.duplicate", **fields)
            return JSONResponse({"status": "duplicate"}, status_code=200)
        if runtime.worker is not None:
            runtime.worker.notify()
        metrics.delivery(delivery.event, "queued")
        log(logger, "delivery.queued", **fields)
        return JSONResponse({"status": "queued"}, status_code=202)

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
