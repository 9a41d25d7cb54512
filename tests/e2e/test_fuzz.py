"""Fuzzing the real endpoint: mutated bodies, headers and fixture payloads, signed and not.

Whatever arrives: never a 5xx, never an unhandled exception in the log, never a store
write without a valid signature. `make fuzz` runs 10,000 cases (FUZZ_EXAMPLES); the
default suite runs a sample.
"""

from __future__ import annotations

import json
import logging
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio.from_thread
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import webhook
from bot.app import create_app, runtime_of
from bot.settings import Settings
from tests.support import payloads
from tests.support.app import WEBHOOK_SECRET
from tests.support.fakes import route
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FIXTURES = payloads.all_fixtures()
EVENTS = sorted({event for event, _, _ in FIXTURES} | {"issues", "issue_comment"})


class Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Target:
    portal: anyio.from_thread.BlockingPortal
    client: httpx.AsyncClient
    settings: Settings
    errors: Errors
    app: Any

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.portal.call(lambda: self.client.post("/webhook", content=body, headers=headers))

    def writes(self) -> int:
        store = runtime_of(self.app).store
        return int(sum(self.portal.call(store.job_counts).values()))


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, app_key: Any) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("fuzz")
    github = FakeGitHub(public_key=app_key.public)
    tembo = FakeTembo()
    from bot.settings import PlatformEnv, Secret

    config = Settings(
        app_id=github.app_id,
        private_key=Secret(app_key.private),
        webhook_secrets=(Secret(WEBHOOK_SECRET),),
        github_api_url=github.base_url,
        database_url=f"sqlite:///{tmp / 'store.db'}",
        platform_env=PlatformEnv.of(TEMBO_API_KEY=tembo.api_key, TEMBO_BASE_URL=tembo.base_url),
        retry_base_seconds=0.01,
        retry_max_seconds=0.02,
        max_attempts=2,
    )
    errors = Errors()
    logging.getLogger().addHandler(errors)
    with anyio.from_thread.start_blocking_portal() as portal:
        http = httpx.AsyncClient(transport=route({github.host: github, tembo.host: tembo}))
        app = create_app(config, http=http, content_per_minute=0)
        lifespan = portal.wrap_async_context_manager(app.router.lifespan_context(app))
        with lifespan:
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            )
            yield Target(portal, client, config, errors, app)
            portal.call(client.aclose)
        portal.call(http.aclose)
    logging.getLogger().removeHandler(errors)


header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


def mutate(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """Replace, drop or retype a few fields of a real payload."""
    junk: list[Any] = [None, 0, -1, 2**63, "", "x" * 300, [], {}, True, 1.5, "/tembo go"]
    if isinstance(value, dict) and value:
        value = dict(value)
        for key in rng.sample(sorted(value), k=min(len(value), rng.randint(1, 3))):
            roll = rng.random()
            if roll < 0.3:
                del value[key]
            elif roll < 0.6 or depth > 3:
                value[key] = rng.choice(junk)
            else:
                value[key] = mutate(value[key], rng, depth + 1)
        return value
    if isinstance(value, list) and value:
        return [mutate(v, rng, depth + 1) for v in value[: rng.randint(0, len(value))]]
    return rng.choice(junk)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[bytes, dict[str, str], bool]:
    kind = draw(st.sampled_from(["fixture", "mutated", "json", "bytes"]))
    event, _, payload = draw(st.sampled_from(FIXTURES))
    if kind == "fixture":
        body = json.dumps(payload).encode()
    elif kind == "mutated":
        rng = random.Random(draw(st.integers(0, 2**32)))
        body = json.dumps(mutate(payload, rng)).encode()
    elif kind == "json":
        value = draw(
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4)
                ),
                max_leaves=12,
            )
        )
        body = json.dumps(value).encode()
    else:
        body = draw(st.binary(max_size=400))
    event = draw(st.sampled_from([*EVENTS, "", "issues "]) | header_text)
    signing = draw(
        st.sampled_from(["valid", "valid", "other-secret", "other-body", "garbage", "missing"])
    )
    headers = {
        "x-github-event": event,
        "x-github-delivery": draw(st.sampled_from([str(uuid.uuid4()), ""]) | header_text),
    }
    if signing == "valid":
        headers["x-hub-signature-256"] = webhook.signature(body, WEBHOOK_SECRET)
    elif signing == "other-secret":
        headers["x-hub-signature-256"] = webhook.signature(body, "wrong")
    elif signing == "other-body":
        headers["x-hub-signature-256"] = webhook.signature(body + b" ", WEBHOOK_SECRET)
    elif signing == "garbage":
        headers["x-hub-signature-256"] = draw(header_text)
    if draw(st.booleans()):
        headers["content-type"] = draw(st.sampled_from(["application/json", "text/plain", ""]))
    return body, headers, signing == "valid"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=deliveries())
def test_no_input_gets_a_5xx_or_writes_without_a_signature(
    target: Target, case: tuple[bytes, dict[str, str], bool]
) -> None:
    body, headers, signed = case
    before = target.writes()
    response = target.post(body, headers)
    assert response.status_code < 500, response.text
    if not signed:
        # What the headers alone refuse is refused before the body is read (400, 413,
        # 415); what gets as far as the signature check is a 401.
        assert response.status_code in (400, 401, 413, 415)
        assert target.writes() == before
    assert response.status_code in (200, 202, 400, 401, 413, 415)


def test_fuzzing_left_no_unhandled_exception_in_the_log(target: Target) -> None:
    # Runs after the property test in this module (pytest keeps file order).
    worker = runtime_of(target.app).worker
    assert worker is not None

    async def settle() -> None:
        with anyio.fail_after(30):
            await worker.idle.wait()

    target.portal.call(settle)
    assert [r.getMessage() for r in target.errors.records] == []
