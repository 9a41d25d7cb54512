"""Shared fixtures: an RSA key for the App, fakes of GitHub and Tembo, and the real app
wired to them through `httpx.MockTransport`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette

from bot import webhook
from bot.app import Runtime, create_app, runtime_of
from bot.settings import Secret, Settings
from tests.fakes import route
from tests.fakes.github import FakeGitHub
from tests.fakes.tembo import FakeTembo

WEBHOOK_SECRET = "It's a Secret to Everybody"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    """A clock tests move by hand; shared by the app and the fakes that check times."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class KeyPair:
    private: str
    public: str


@pytest.fixture(scope="session")
def app_key() -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return KeyPair(private, public)


@pytest.fixture
def github(app_key: KeyPair) -> FakeGitHub:
    return FakeGitHub(public_key=app_key.public)


@pytest.fixture
def tembo() -> FakeTembo:
    return FakeTembo()


@pytest.fixture
def settings(tmp_path: Path, app_key: KeyPair, github: FakeGitHub, tembo: FakeTembo) -> Settings:
    return Settings(
        app_id=github.app_id,
        private_key=Secret(app_key.private),
        webhook_secrets=(Secret(WEBHOOK_SECRET),),
        github_api_url=github.base_url,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        tembo_api_key=Secret(tembo.api_key),
        tembo_base_url=tembo.base_url,
        retry_base_seconds=0.01,
        retry_max_seconds=0.05,
        env_file=str(tmp_path / ".env"),
    )


def signed_headers(
    body: bytes, event: str, delivery_id: str | None = None, secret: str = WEBHOOK_SECRET
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": delivery_id or str(uuid.uuid4()),
        "x-hub-signature-256": webhook.signature(body, secret),
    }


@dataclass
class Harness:
    """The real app, in-process, with its worker, talking to the fakes."""

    app: Starlette
    client: httpx.AsyncClient
    github: FakeGitHub
    tembo: FakeTembo

    @property
    def runtime(self) -> Runtime:
        return runtime_of(self.app)

    async def deliver(
        self, event: str, payload: dict[str, Any], delivery_id: str | None = None
    ) -> httpx.Response:
        body = json.dumps(payload).encode()
        return await self.client.post(
            "/webhook", content=body, headers=signed_headers(body, event, delivery_id)
        )

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until the worker has nothing left to do (event, not sleep)."""
        import asyncio

        worker = self.runtime.worker
        assert worker is not None
        await asyncio.wait_for(worker.idle.wait(), timeout)


@pytest.fixture
async def harness(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> AsyncIterator[Harness]:
    http = httpx.AsyncClient(transport=route({github.host: github, tembo.host: tembo}))
    app = create_app(settings, http=http, content_per_minute=0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Harness(app, client, github, tembo)
    await http.aclose()
