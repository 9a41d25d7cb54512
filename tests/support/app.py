"""What most tests share: the App's key pair, a hand-moved clock, signed deliveries and
the real app in-process (with its worker) talking to the fakes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette

from bot import webhook
from bot.app import Runtime, create_app, runtime_of
from bot.settings import Settings
from tests.support.fakes import route
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo

WEBHOOK_SECRET = "It's a Secret to Everybody"


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

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh RSA key as PEM: the App's private key and the public half a GitHub fake
        checks its JWTs with."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        public = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        return cls(private, public)


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
        worker = self.runtime.worker
        assert worker is not None
        await asyncio.wait_for(worker.idle.wait(), timeout)

    async def tick(self, clock: Clock, seconds: float) -> None:
        """Move the app's hand-moved `clock` on (jobs come due), then settle."""
        clock.now += seconds
        worker = self.runtime.worker
        assert worker is not None
        worker.notify()
        await self.settle()

    async def run_until_idle(self, clock: Clock, step: float = 1.0, steps: int = 60) -> None:
        """Let hand-moved time pass in small steps until the worker has nothing due
        (retries wait on this clock too)."""
        worker = self.runtime.worker
        assert worker is not None
        for _ in range(steps):
            clock.now += step
            worker.notify()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.idle.wait(), 0.2)
                return
        raise AssertionError("the worker never became idle")


@contextlib.asynccontextmanager
async def running(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo, clock: Clock | None = None
) -> AsyncIterator[Harness]:
    """The real app with its worker, wired to the fakes, for the length of the block; on
    `clock` (shared with the GitHub fake) when given."""
    if clock is not None:
        github.clock = clock
    http = httpx.AsyncClient(transport=route({github.host: github, tembo.host: tembo}))
    app = create_app(settings, http=http, content_per_minute=0, clock=clock or time.time)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Harness(app, client, github, tembo)
    await http.aclose()
