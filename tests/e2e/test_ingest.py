"""The webhook endpoint: status codes, durability before 202, dedupe, never a 5xx."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support import payloads
from tests.support.app import Harness, signed_headers

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
