"""Prometheus metrics: one registry per app, small hooks to count, and the `/metrics` route.

Owns metric names, labels and buckets. Each `create_app` makes its own `Metrics` (its own
`CollectorRegistry`, never the global one), so several apps in one process do not clash.
Callers only call the hooks (`metrics.delivery(...)`, `metrics.observe_dispatch(...)`, …);
they never touch prometheus_client. Labels are bounded: anything a sender controls is
folded into a fixed set, so a flood of odd requests cannot grow the series without end.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import httpx
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.logs import log
from bot.operator.access import CHALLENGE, REFUSAL, operator_allowed
from bot.settings import Secret
from bot.webhook import BadSignature, PayloadTooLarge, WebhookError

logger = logging.getLogger("bot.metrics")
PREFIX = "tembo_dispatch"
# Events the app subscribes to (app.yml) or always receives; anything else is "other".
EVENTS = frozenset({"issues", "issue_comment", "installation", "installation_repositories", "ping"})
OUTCOMES = frozenset(
    {"queued", "duplicate", "ignored", "bad_signature", "bad_request", "too_large", "unconfigured"}
)
JOB_STATES = ("queued", "running", "done", "failed", "dead")
# Delivery received -> session link posted: seconds when all is well, minutes under retries.
DISPATCH_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def _status_label(status: int | str | None) -> str:
    """An HTTP status as a label; `None` (no answer) and odd values fold into one word."""
    if isinstance(status, int) and 100 <= status <= 599:
        return str(status)
    if isinstance(status, str) and status in ("timeout", "error"):
        return status
    return "error"


class Metrics:
    """The app's metrics and the hooks that change them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._deliveries = Counter(
            f"{PREFIX}_deliveries",
            "Webhook deliveries received, by event and what ingest did with them.",
            ["event", "outcome"],
            registry=self.registry,
        )
        self._jobs = Gauge(
            f"{PREFIX}_jobs",
            "Delivery jobs in the store by state (read from the store at each scrape).",
            ["state"],
            registry=self.registry,
        )
        self._dispatch = Histogram(
            f"{PREFIX}_dispatch_seconds",
            "Time from a delivery being received to the session link being posted.",
            buckets=DISPATCH_BUCKETS,
            registry=self.registry,
        )
        self._github = Counter(
            f"{PREFIX}_github_requests",
            "Requests to GitHub's REST API by HTTP status (timeout/error: no answer).",
            ["status"],
            registry=self.registry,
        )
        self._platform = Counter(
            f"{PREFIX}_platform_requests",
            "Requests to session platforms by platform and HTTP status.",
            ["platform", "status"],
            registry=self.registry,
        )
        self._waits = Counter(
            f"{PREFIX}_rate_limit_waits",
            "Times a call waited because of a rate limit (own pacing or the remote's word).",
            ["source"],
            registry=self.registry,
        )
        self._waited = Counter(
            f"{PREFIX}_rate_limit_wait_seconds",
            "Seconds spent waiting for rate limits.",
            ["source"],
            registry=self.registry,
        )
        # Series that exist from the start read 0 instead of being absent.
        for state in JOB_STATES:
            self._jobs.labels(state=state).set(0)

    # -- hooks ----------------------------------------------------------------

    def delivery(self, event: str | None, outcome: str) -> None:
        """Count one delivery. `event` is the X-GitHub-Event header (None if absent)."""
        self._deliveries.labels(
            event=event if event in EVENTS else "other",
            outcome=outcome if outcome in OUTCOMES else "other",
        ).inc()

    def rejected(self, event: str | None, error: WebhookError) -> None:
        """Count a delivery ingest refused (bad signature, malformed, too large)."""
        if isinstance(error, BadSignature):
            outcome = "bad_signature"
        elif isinstance(error, PayloadTooLarge):
            outcome = "too_large"
        else:
            outcome = "bad_request"
        self.delivery(event, outcome)

    def observe_dispatch(self, seconds: float) -> None:
        """A session link was posted `seconds` after its delivery was received."""
        self._dispatch.observe(max(seconds, 0.0))

    def github_call(self, status: int | str | None) -> None:
        """One GitHub request finished with `status` ("timeout"/"error"/None: no answer)."""
        self._github.labels(status=_status_label(status)).inc()

    def platform_call(self, platform: str, status: int | str | None) -> None:
        """One platform request finished; `platform` is a PLATFORMS name."""
        self._platform.labels(platform=platform[:20], status=_status_label(status)).inc()

    def rate_limit_wait(self, seconds: float, source: str = "github") -> None:
        """A call waited `seconds` for a rate limit; `source`: budget (GitHub's content
        budget), remote or a platform."""
        label = source[:20]
        self._waits.labels(source=label).inc()
        self._waited.labels(source=label).inc(max(seconds, 0.0))

    def set_job_counts(self, counts: dict[str, int]) -> None:
        for state in {*JOB_STATES, *counts}:
            self._jobs.labels(state=state).set(counts.get(state, 0))

    # -- exposition -------------------------------------------------------------

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_route(
    metrics: Metrics,
    job_counts: Callable[[], Awaitable[dict[str, int]]],
    path: str = "/metrics",
    *,
    status_token: Secret | None = None,
) -> Route:
    """`GET /metrics` in Prometheus' text format; job gauges are refreshed from the store
    at each scrape (a failing store leaves the last values and does not fail the scrape).

    Served to this machine, or with `status_token` (Prometheus: `authorization:
    {credentials: …}`): the job counts and call rates are the operator's business."""

    async def endpoint(request: Request) -> Response:
        if not operator_allowed(request, status_token):
            return PlainTextResponse(f"/metrics is {REFUSAL}\n", 401, headers=CHALLENGE)
        try:
            metrics.set_job_counts(await job_counts())
        except Exception as exc:
            log(logger, "metrics.job_counts_failed", logging.WARNING, error=type(exc).__name__)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Route(path, endpoint, methods=["GET"])


def http_observer(
    metrics: Metrics, github_api_url: str, platform_urls: dict[str, str]
) -> Callable[[httpx.Response], Awaitable[None]]:
    """An httpx response hook counting every GitHub and platform call by status, so the
    adapters need no metrics code of their own."""
    github_host = urlsplit(github_api_url).netloc
    platforms = {urlsplit(url).netloc: name for name, url in platform_urls.items()}

    async def observe(response: httpx.Response) -> None:
        host = response.request.url.netloc.decode()
        if host == github_host:
            metrics.github_call(response.status_code)
        elif host in platforms:
            metrics.platform_call(platforms[host], response.status_code)

    return observe
