"""The webhook endpoint: status codes, durability before 202, dedupe, never a 5xx."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from bot.app import create_app
from bot.logs import JSONFormatter
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import WEBHOOK_SECRET, Clock, Harness, signed_headers
from tests.support.fakes import route
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.server import AppProcess, Processes, free_port
from tests.support.fakes.tembo import FakeTembo

pytestmark = pytest.mark.anyio


async def test_wrong_signature_is_401_and_writes_nothing(harness: Harness) -> None:
    body = json.dumps(payloads.labeled()).encode()
    headers = signed_headers(body, "issues", secret="not the secret")
    response = await harness.client.post("/webhook", content=body, headers=headers)
    assert response.status_code == 401
    assert await harness.runtime.store.job_counts("delivery") == {}
    assert (await harness.runtime.store.stats())["recent_deliveries"] == []


async def test_missing_signature_is_401(harness: Harness) -> None:
    body = json.dumps(payloads.labeled()).encode()
    headers = signed_headers(body, "issues")
    del headers["x-hub-signature-256"]
    response = await harness.client.post("/webhook", content=body, headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize("missing", ["x-github-event", "x-github-delivery"])
async def test_missing_github_headers_are_400(harness: Harness, missing: str) -> None:
    body = json.dumps(payloads.labeled()).encode()
    headers = signed_headers(body, "issues")
    del headers[missing]
    response = await harness.client.post("/webhook", content=body, headers=headers)
    assert response.status_code == 400


async def test_signed_body_that_is_not_json_is_400(harness: Harness) -> None:
    body = b"{not json"
    response = await harness.client.post(
        "/webhook", content=body, headers=signed_headers(body, "issues")
    )
    assert response.status_code == 400
    assert "not JSON" in response.json()["error"]


async def test_body_over_25_mb_is_413(harness: Harness) -> None:
    body = b"x" * (25 * 1024 * 1024 + 1)
    response = await harness.client.post(
        "/webhook", content=body, headers=signed_headers(body, "issues")
    )
    assert response.status_code == 413


async def test_streamed_body_over_the_cap_is_413_without_content_length(harness: Harness) -> None:
    chunk = b"x" * (1024 * 1024)

    async def stream():  # type: ignore[no-untyped-def]
        for _ in range(26):
            yield chunk

    headers = signed_headers(b"", "issues")
    response = await harness.client.post("/webhook", content=stream(), headers=headers)
    assert response.status_code == 413


async def test_ping_is_ignored_with_200(harness: Harness) -> None:
    response = await harness.deliver("ping", payloads.fixture("ping.none.1.json"))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}


async def test_labeled_issue_is_accepted_with_202_after_a_durable_write(harness: Harness) -> None:
    response = await harness.deliver("issues", payloads.labeled())
    assert response.status_code == 202
    assert response.json() == {"status": "queued"}
    stats = await harness.runtime.store.stats()
    assert [d["event"] for d in stats["recent_deliveries"]] == ["issues"]


async def test_a_delivery_id_seen_before_is_200_and_queues_nothing(harness: Harness) -> None:
    delivery = str(uuid.uuid4())
    first = await harness.deliver("issues", payloads.labeled(), delivery)
    second = await harness.deliver("issues", payloads.labeled(), delivery)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json() == {"status": "duplicate"}
    await harness.settle()
    assert sum((await harness.runtime.store.job_counts("delivery")).values()) == 1


async def test_the_probot_path_is_served_too(harness: Harness) -> None:
    body = json.dumps(payloads.labeled()).encode()
    response = await harness.client.post(
        "/api/github/webhooks", content=body, headers=signed_headers(body, "issues")
    )
    assert response.status_code == 202


async def test_ingest_never_calls_github_or_tembo(harness: Harness) -> None:
    worker = harness.runtime.worker
    assert worker is not None
    await worker.stop()  # only ingest runs now
    for _ in range(5):
        assert (await harness.deliver("issues", payloads.labeled())).status_code == 202
    assert harness.github.calls == []
    assert harness.tembo.requests == []


@pytest.mark.parametrize(
    ("event", "name", "payload"),
    payloads.all_fixtures(),
    ids=[n for _, n, _ in payloads.all_fixtures()],
)
async def test_every_fixture_is_answered_without_a_5xx(
    harness: Harness, event: str, name: str, payload: dict[str, object]
) -> None:
    response = await harness.deliver(event, payload)
    assert response.status_code in (200, 202), response.text
    await harness.settle()
    counts = await harness.runtime.store.job_counts("delivery")
    assert counts.get("dead", 0) == 0, counts


# -- replays: the signature covers the body only, so a replay is deduped on what it repeats --


def _jobs(counts: dict[str, int]) -> int:
    return sum(counts.values())


async def test_the_same_signed_body_under_fresh_delivery_ids_queues_one_job(
    harness: Harness,
) -> None:
    body = json.dumps(payloads.labeled()).encode()
    statuses = []
    for _ in range(3):
        response = await harness.client.post(
            "/webhook", content=body, headers=signed_headers(body, "issues")
        )
        statuses.append((response.status_code, response.json()["status"]))
    assert statuses == [(202, "queued"), (200, "duplicate"), (200, "duplicate")]
    await harness.settle()
    assert _jobs(await harness.runtime.store.job_counts("delivery")) == 1


async def test_one_comment_in_two_different_bodies_queues_one_job(harness: Harness) -> None:
    first = payloads.comment("/tembo fix it", comment_id=777)
    second = payloads.comment("/tembo fix it", comment_id=777)
    assert first != second  # fresh timestamps: only the comment id is the same
    answers = [await harness.deliver("issue_comment", p) for p in (first, second)]
    assert [a.status_code for a in answers] == [202, 200]
    assert answers[1].json() == {"status": "duplicate"}


async def test_one_label_event_in_two_different_bodies_queues_one_job(harness: Harness) -> None:
    first, second = payloads.labeled(), payloads.labeled()
    second["issue"]["updated_at"] = first["issue"]["updated_at"]
    second["sender"]["id"] = 1  # a different body, the same issue, label and time
    answers = [await harness.deliver("issues", p) for p in (first, second)]
    assert [a.status_code for a in answers] == [202, 200]


async def test_the_same_label_added_again_later_is_a_new_trigger(harness: Harness) -> None:
    # GitHub stamps the issue's updated_at anew: not a replay.
    answers = [await harness.deliver("issues", payloads.labeled()) for _ in range(2)]
    assert [a.status_code for a in answers] == [202, 202]


# -- refusing before reading -------------------------------------------------------------


class Trickle:
    """A request body that sends `chunks` and then never ends; counts what was read."""

    def __init__(self, chunks: tuple[bytes, ...] = ()) -> None:
        self.chunks = chunks
        self.pulled = 0
        self.never = asyncio.Event()

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        for chunk in self.chunks:
            self.pulled += 1
            yield chunk
        self.pulled += 1
        await self.never.wait()
        yield b""


async def _post_within(client: httpx.AsyncClient, seconds: float, **kwargs: Any) -> httpx.Response:
    with anyio.fail_after(seconds):
        return await client.post("/webhook", **kwargs)


@pytest.mark.parametrize(
    ("missing", "status"),
    [("x-hub-signature-256", 401), ("x-github-event", 400), ("x-github-delivery", 400)],
)
async def test_a_request_missing_a_required_header_is_refused_before_its_body_is_read(
    harness: Harness, missing: str, status: int
) -> None:
    headers = signed_headers(b"{}", "issues")
    del headers[missing]
    body = Trickle()
    response = await _post_within(harness.client, 5, content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["connection"] == "close"
    assert body.pulled == 0


async def test_a_body_that_is_not_declared_json_is_415(harness: Harness) -> None:
    body = json.dumps(payloads.labeled()).encode()
    headers = signed_headers(body, "issues") | {"content-type": "application/x-www-form-urlencoded"}
    response = await harness.client.post("/webhook", content=body, headers=headers)
    assert response.status_code == 415
    assert await harness.runtime.store.job_counts("delivery") == {}


@pytest.fixture
async def limited(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> AsyncIterator[Harness]:
    """The real app with a short body deadline and room for two requests at once."""
    http = httpx.AsyncClient(transport=route({github.host: github, tembo.host: tembo}))
    tight = settings.replace(webhook_body_timeout=0.2, webhook_max_pending=2)
    app = create_app(tight, http=http, content_per_minute=0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Harness(app, client, github, tembo)
    await http.aclose()


async def test_a_body_that_trickles_in_is_cut_with_408(limited: Harness) -> None:
    headers = signed_headers(b"{}", "issues")
    body = Trickle((b'{"action": ',))
    response = await _post_within(limited.client, 5, content=body, headers=headers)
    assert response.status_code == 408
    assert response.headers["connection"] == "close"
    assert await limited.runtime.store.job_counts("delivery") == {}


async def test_requests_over_the_pending_limit_get_503_with_retry_after(limited: Harness) -> None:
    # Two requests stall in their bodies (each is cut at 0.2 s); meanwhile a third is refused.
    stalled = [Trickle((b"{",)) for _ in range(2)]
    async with anyio.create_task_group() as group:
        for body in stalled:
            group.start_soon(
                functools.partial(
                    _post_within,
                    limited.client,
                    5,
                    content=body,
                    headers=signed_headers(b"", "issues"),
                )
            )
        with anyio.fail_after(5):
            while sum(b.pulled for b in stalled) < 2:
                await anyio.wait_all_tasks_blocked()
        third = await limited.deliver("issues", payloads.labeled())
    assert third.status_code == 503
    assert third.headers["retry-after"] == "1"
    again = await limited.deliver("issues", payloads.labeled())
    assert again.status_code == 202  # the room is back once the stalled ones are cut


async def test_a_signed_body_nested_100000_levels_deep_is_400(harness: Harness) -> None:
    body = b'{"action": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await harness.client.post(
        "/webhook", content=body, headers=signed_headers(body, "issues")
    )
    assert response.status_code == 400
    assert "not JSON" in response.json()["error"]


async def test_header_values_in_log_lines_are_cut_short(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps(payloads.labeled()).encode()
    huge = "d" * 8_000_000
    headers = signed_headers(body, "issues", delivery_id=huge)
    with caplog.at_level(logging.DEBUG, logger="bot"):
        response = await harness.client.post("/webhook", content=body, headers=headers)
    assert response.status_code == 400
    lines = [JSONFormatter().format(r) for r in caplog.records if r.name.startswith("bot")]
    assert lines, "the refusal is logged"
    assert max(len(line) for line in lines) < 1000


# -- the socket: a real `python -m bot serve` ---------------------------------------------


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[AppProcess]:
    env = {
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "WEBHOOK_BODY_TIMEOUT": "1",
        "LOG_LEVEL": "warning",
        "ENV_FILE": str(tmp_path / ".env"),
    }
    processes = Processes(tmp_path)
    app = processes.start("ingest", env, ("serve", "--no-worker"))
    try:
        with processes.shown_on_failure():
            await app.wait_ready()
            yield app
    finally:
        processes.stop_all()


async def _raw(app: AppProcess, request: bytes, then_wait: bool = True) -> bytes:
    """Send `request` as is; what the server answers before it closes (10 s at most)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(request)
            await writer.drain()
        with anyio.fail_after(10):
            return await reader.read()
    finally:
        writer.close()


def _head(*extra: str) -> bytes:
    lines = ["POST /webhook HTTP/1.1", "Host: x", "Content-Type: application/json", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.slow
async def test_headers_over_64_kib_or_over_100_get_431_and_the_connection_closes(
    served: AppProcess,
) -> None:
    long = await _raw(served, _head(f"X-GitHub-Delivery: {'d' * 70_000}"))
    many = await _raw(served, _head(*(f"X-Pad-{n}: x" for n in range(150))))
    assert long.startswith(b"HTTP/1.1 431 ")
    assert many.startswith(b"HTTP/1.1 431 ")
    # Megabytes more than it reads: the server closes on the rest (a reset, a broken pipe
    # while the rest is still being written, or the 431).
    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
        huge = await _raw(served, _head(f"X-GitHub-Delivery: {'d' * 8_000_000}"))
        assert huge.startswith(b"HTTP/1.1 431 ")
    await served.wait_ready(5)


@pytest.mark.slow
async def test_headers_that_trickle_in_are_cut_with_408(served: AppProcess) -> None:
    # Half a request line, then nothing: without a deadline this connection stays for ever.
    answer = await _raw(served, b"POST /webhook HT")
    assert answer.startswith(b"HTTP/1.1 408 ")


# -- what the repository's configuration proves cannot trigger -----------------------------


@pytest.fixture
async def clocked(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> AsyncIterator[tuple[Harness, Clock]]:
    clock = Clock()
    http = httpx.AsyncClient(transport=route({github.host: github, tembo.host: tembo}))
    app = create_app(settings, http=http, content_per_minute=0, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Harness(app, client, github, tembo), clock
    await http.aclose()


async def test_deliveries_the_cached_config_proves_idle_are_answered_without_a_job(
    clocked: tuple[Harness, Clock],
) -> None:
    harness, clock = clocked
    await harness.deliver("issues", payloads.labeled(repo="acme/seen", number=1))
    await harness.settle()  # the worker has read acme/seen's configuration
    clock.now += 6  # past what ingest remembers of not knowing it
    before = _jobs(await harness.runtime.store.job_counts("delivery"))
    idle = [
        await harness.deliver("issues", payloads.labeled("bug", repo="acme/seen", number=2)),
        await harness.deliver(
            "issue_comment", payloads.comment("/label bug, thanks", repo="acme/seen", number=2)
        ),
    ]
    assert [(r.status_code, r.json()["status"]) for r in idle] == [(200, "ignored")] * 2
    assert _jobs(await harness.runtime.store.job_counts("delivery")) == before
    # A command still makes a job; so does any label on a repository not seen yet.
    still = [
        await harness.deliver(
            "issue_comment", payloads.comment("/tembo go", repo="acme/seen", number=2)
        ),
        await harness.deliver("issues", payloads.labeled("bug", repo="acme/unseen", number=1)),
    ]
    assert [r.status_code for r in still] == [202, 202]
