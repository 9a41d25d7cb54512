"""`/metrics`: Prometheus text from each app's own registry, and the hooks that feed it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from bot import webhook
from bot.app import create_app
from bot.metrics import Metrics, metrics_route
from bot.settings import Secret, Settings
from tests.support import payloads
from tests.support.app import Harness, signed_headers
from tests.support.fakes.github import FakeGitHub

pytestmark = pytest.mark.anyio


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_a_dispatched_delivery_shows_in_deliveries_and_job_states(harness: Harness) -> None:
    harness.github.permissions[("Codertocat/Hello-World", "Codertocat")] = "write"
    assert (await harness.deliver("issues", payloads.labeled())).status_code == 202
    await harness.settle()
    text = await scrape(harness.client)
    assert value(text, "tembo_dispatch_deliveries_total", event="issues", outcome="queued") == 1
    assert value(text, "tembo_dispatch_jobs", state="done") == 1
    assert value(text, "tembo_dispatch_jobs", state="queued") == 0
    # Every state is exposed from the start, so dashboards need no "absent" special case.
    for state in ("queued", "running", "done", "failed", "dead"):
        assert ("tembo_dispatch_jobs", (("state", state),)) in samples(text)
    assert "tembo_dispatch_dispatch_seconds_bucket" in text


async def test_calls_and_dispatch_latency_are_measured_on_the_real_path(harness: Harness) -> None:
    harness.github.permissions[("Codertocat/Hello-World", "Codertocat")] = "write"
    refusals = [httpx.Response(429, json={"error": "slow down"}, headers={"retry-after": "0"})]
    harness.tembo.fault = lambda request: refusals.pop() if refusals else None
    await harness.deliver("issues", payloads.labeled())
    await harness.settle()
    text = await scrape(harness.client)
    assert value(text, "tembo_dispatch_dispatch_seconds_count") == 1
    assert (
        value(text, "tembo_dispatch_platform_requests_total", platform="tembo", status="429") == 1
    )
    assert (
        value(text, "tembo_dispatch_platform_requests_total", platform="tembo", status="200") == 1
    )
    assert (
        value(text, "tembo_dispatch_github_requests_total", status="201") >= 3
    )  # token, 👀, comment
    assert value(text, "tembo_dispatch_rate_limit_waits_total", source="remote") == 1


async def test_each_ingest_outcome_is_counted(harness: Harness) -> None:
    labeled = payloads.labeled()
    await harness.deliver("issues", labeled, "same-delivery")
    await harness.deliver("issues", labeled, "same-delivery")
    await harness.deliver("star", payloads.fixture("star.created.1.json"))
    await harness.deliver("issues", payloads.fixture("issues.edited.1.json"))
    body = json.dumps(labeled).encode()
    forged = signed_headers(body, "issues", secret="not the secret")
    assert (await harness.client.post("/webhook", content=body, headers=forged)).status_code == 401
    headers = signed_headers(b"{not json", "issues")
    assert (
        await harness.client.post("/webhook", content=b"{not json", headers=headers)
    ).status_code == 400
    await harness.settle()

    text = await scrape(harness.client)
    count = {
        (dict(labels)["event"], dict(labels)["outcome"]): v
        for (name, labels), v in samples(text).items()
        if name == "tembo_dispatch_deliveries_total"
    }
    assert count == {
        ("issues", "queued"): 1,
        ("issues", "duplicate"): 1,
        ("other", "ignored"): 1,  # star: not an event the app subscribes to
        ("issues", "ignored"): 1,  # issues.edited: no rule acts on it
        ("issues", "bad_signature"): 1,
        ("issues", "bad_request"): 1,
    }


async def test_a_delivery_before_registration_counts_as_unconfigured(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.db'}", env_file=str(tmp_path / "e"))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(
                "/webhook", content=b"{}", headers={"x-github-event": "issues"}
            )
            assert response.status_code == 503
            text = await scrape(client)
    assert (
        value(text, "tembo_dispatch_deliveries_total", event="issues", outcome="unconfigured") == 1
    )


async def test_two_apps_in_one_process_count_separately_and_not_globally(tmp_path: Path) -> None:
    def app(name: str) -> Starlette:
        return create_app(
            Settings(
                webhook_secrets=(Secret("s3cret-value"),),
                database_url=f"sqlite:///{tmp_path / name}.db",
                env_file=str(tmp_path / f"{name}.env"),
            ),
            run_worker=False,
        )

    first, second = app("first"), app("second")
    body = json.dumps(payloads.fixture("star.created.1.json")).encode()
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        one = httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://a")
        two = httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://b")
        async with one, two:
            for _ in range(3):
                headers = {
                    "x-github-event": "star",
                    "x-github-delivery": "d",
                    "x-hub-signature-256": webhook.signature(body, "s3cret-value"),
                }
                await one.post("/webhook", content=body, headers=headers)
            await two.post("/webhook", content=body, headers=headers)
            first_text, second_text = await scrape(one), await scrape(two)
    name = "tembo_dispatch_deliveries_total"
    assert value(first_text, name, event="other", outcome="ignored") == 3
    assert value(second_text, name, event="other", outcome="ignored") == 1
    assert REGISTRY.get_sample_value(name, {"event": "other", "outcome": "ignored"}) is None


def test_hooks_record_what_they_are_told() -> None:
    metrics = Metrics()
    metrics.observe_dispatch(1.5)
    metrics.observe_dispatch(42.0)
    metrics.github_call(200)
    metrics.github_call(200)
    metrics.github_call(403)
    metrics.github_call(None)
    metrics.github_call("timeout")
    metrics.platform_call("tembo", 201)
    metrics.platform_call("tembo", 503)
    metrics.rate_limit_wait(2.5, "github")
    metrics.rate_limit_wait(0.5, "github")
    metrics.rate_limit_wait(1.0, "pacer")
    text = metrics.exposition().decode()

    assert value(text, "tembo_dispatch_dispatch_seconds_count") == 2
    assert value(text, "tembo_dispatch_dispatch_seconds_sum") == 43.5
    assert value(text, "tembo_dispatch_dispatch_seconds_bucket", le="2.0") == 1
    assert value(text, "tembo_dispatch_github_requests_total", status="200") == 2
    assert value(text, "tembo_dispatch_github_requests_total", status="403") == 1
    assert value(text, "tembo_dispatch_github_requests_total", status="error") == 1
    assert value(text, "tembo_dispatch_github_requests_total", status="timeout") == 1
    assert (
        value(text, "tembo_dispatch_platform_requests_total", platform="tembo", status="201") == 1
    )
    assert (
        value(text, "tembo_dispatch_platform_requests_total", platform="tembo", status="503") == 1
    )
    assert value(text, "tembo_dispatch_rate_limit_waits_total", source="github") == 2
    assert value(text, "tembo_dispatch_rate_limit_wait_seconds_total", source="github") == 3.0
    assert value(text, "tembo_dispatch_rate_limit_wait_seconds_total", source="pacer") == 1.0


def test_labels_a_sender_controls_are_bounded() -> None:
    metrics = Metrics()
    for i in range(50):
        metrics.delivery(f"made-up-{i}", "queued")
        metrics.delivery("issues", f"weird-{i}")
    metrics.github_call(999)
    text = metrics.exposition().decode()
    deliveries = [k for k in samples(text) if k[0] == "tembo_dispatch_deliveries_total"]
    assert len(deliveries) == 2
    assert value(text, "tembo_dispatch_deliveries_total", event="other", outcome="queued") == 50
    assert value(text, "tembo_dispatch_deliveries_total", event="issues", outcome="other") == 50
    assert value(text, "tembo_dispatch_github_requests_total", status="error") == 1


async def test_a_failing_store_does_not_fail_the_scrape(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    metrics.set_job_counts({"queued": 4})

    async def broken() -> dict[str, int]:
        raise OSError("disk gone")

    app = Starlette(routes=[metrics_route(metrics, broken)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        with caplog.at_level(logging.WARNING, logger="bot.metrics"):
            text = await scrape(client)
    assert value(text, "tembo_dispatch_jobs", state="queued") == 4  # the last known value
    assert any(r.getMessage() == "metrics.job_counts_failed" for r in caplog.records)


async def test_an_app_leaves_no_hook_on_a_client_it_does_not_own(
    settings: Settings, github: FakeGitHub
) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(github)) as http:
        for _ in range(2):  # e.g. a restart in the same process
            app = create_app(settings, http=http, run_worker=False)
            async with app.router.lifespan_context(app):
                assert len(http.event_hooks["response"]) == 1
        assert http.event_hooks["response"] == []


async def test_metrics_are_refused_off_loopback_and_through_a_proxy_without_the_token(
    harness: Harness,
) -> None:
    remote = httpx.ASGITransport(app=harness.app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=remote, base_url="http://tembo.example.com") as c:
        response = await c.get("/metrics")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "STATUS_TOKEN" in response.text
    assert "tembo_dispatch" not in response.text
    # A reverse proxy on this machine connects from 127.0.0.1 for everyone it forwards.
    for header in ("x-forwarded-for", "forwarded", "x-real-ip"):
        proxied = await harness.client.get("/metrics", headers={header: "203.0.113.9"})
        assert proxied.status_code == 401, header
    for peer in ("127.0.0.1", "::1", "127.0.0.2"):
        local = httpx.ASGITransport(app=harness.app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=local, base_url="http://localhost") as c:
            assert (await c.get("/metrics")).status_code == 200, peer


async def test_the_status_token_lets_a_remote_prometheus_scrape(tmp_path: Path) -> None:
    token = "scrape-token-0123456789abcdef"
    metrics = Metrics()

    async def counts() -> dict[str, int]:
        return {"queued": 3}

    app = Starlette(routes=[metrics_route(metrics, counts, status_token=Secret(token))])
    remote = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=remote, base_url="http://t") as client:
        bearer = await client.get("/metrics", headers={"authorization": f"Bearer {token}"})
        query = await client.get("/metrics", params={"token": token})
        wrong = await client.get("/metrics", headers={"authorization": "Bearer nope"})
        basic = await client.get("/metrics", headers={"authorization": f"Basic {token}"})
    assert (bearer.status_code, query.status_code) == (200, 200)
    assert value(bearer.text, "tembo_dispatch_jobs", state="queued") == 3
    assert (wrong.status_code, basic.status_code) == (401, 401)
