"""Fixtures: an RSA key for the App, fakes of GitHub and Tembo, and the real app wired to
them through `httpx.MockTransport`. Helpers live in tests/support/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.settings import PlatformEnv, Secret, Settings
from tests.support.app import WEBHOOK_SECRET, Harness, KeyPair, running
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.server import Processes
from tests.support.fakes.tembo import FakeTembo
from tests.support.stores import Backend, fresh_database, open_backend


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def app_key() -> KeyPair:
    return KeyPair.generate()


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
        platform_env=PlatformEnv.of(TEMBO_API_KEY=tembo.api_key, TEMBO_BASE_URL=tembo.base_url),
        retry_base_seconds=0.01,
        retry_max_seconds=0.05,
        env_file=str(tmp_path / ".env"),
    )


@pytest.fixture
async def harness(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> AsyncIterator[Harness]:
    async with running(settings, github, tembo) as harness:
        yield harness


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each store: a test using this runs once on SQLite and once on PostgreSQL."""
    async with open_backend(request.param, tmp_path) as place:
        yield place


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """App processes a test starts (`python -m bot …`), killed when it ends, whatever
    happened."""
    found = Processes(tmp_path)
    yield found
    found.stop_all()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """DATABASE_URL for app processes, once on each store: a SQLite file, or a fresh
    PostgreSQL database (skipped, saying why, when the server is unreachable)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    async with fresh_database() as url:
        yield url
