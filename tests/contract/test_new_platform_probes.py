"""`python -m bot check`'s probes for Devin, Jules and Cursor against their fakes: one
read-only call each, which says whether the key is accepted and never prints it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from bot.adapters.platforms import cursor, devin, jules
from tests.support.fakes.cursor import FakeCursor
from tests.support.fakes.devin import FakeDevin
from tests.support.fakes.jules import FakeJules

pytestmark = pytest.mark.anyio

Probe = Callable[[httpx.AsyncClient, str, str], Awaitable[tuple[bool, str]]]
CASES: list[tuple[str, Probe, Callable[[], Any], str]] = [
    ("devin", devin.probe, FakeDevin, "GET /v1/sessions"),
    ("jules", jules.probe, FakeJules, "GET /v1alpha/sources"),
    ("cursor", cursor.probe, FakeCursor, "GET /v1/agents"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(("name", "probe", "make", "call"), CASES)
async def test_an_accepted_key_is_verified_with_a_read(
    name: str, probe: Probe, make: Callable[[], Any], call: str
) -> None:
    fake = make()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        ok, line = await probe(http, fake.api_key, fake.base_url)
    assert ok, line
    assert line == f"{name.upper()}_API_KEY accepted by {fake.base_url} ({call})"
    assert fake.api_key not in line


@pytest.mark.parametrize(("name", "probe", "make", "call"), CASES)
async def test_a_refused_key_says_how_to_fix_it_and_is_not_printed(
    name: str, probe: Probe, make: Callable[[], Any], call: str
) -> None:
    fake = make()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        ok, line = await probe(http, "wrong-key-123", fake.base_url)
    assert not ok
    assert f"{name.upper()}_API_KEY was refused" in line and "(401)" in line
    assert "wrong-key-123" not in line


@pytest.mark.parametrize(("name", "probe", "make", "call"), CASES)
async def test_a_wrong_base_url_is_named(
    name: str, probe: Probe, make: Callable[[], Any], call: str
) -> None:
    fake = make()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        ok, line = await probe(http, fake.api_key, f"{fake.base_url}/nothing")
    assert not ok
    assert f"{name.upper()}_BASE_URL" in line and "404" in line


@pytest.mark.parametrize(("name", "probe", "make", "call"), CASES)
async def test_an_unreachable_platform_is_named(
    name: str, probe: Probe, make: Callable[[], Any], call: str
) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as http:
        ok, line = await probe(http, "key", "https://platform.test")
    assert not ok
    assert f"{name.upper()}_BASE_URL https://platform.test cannot be reached" in line
