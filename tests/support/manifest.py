"""The manifest flow's test helpers: GitHub's side of the conversion, a parser for the
setup page, and the app run without credentials."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.applications import Starlette

from bot.app import create_app
from bot.settings import Settings

# ---------------------------------------------------------------------------
# GitHub's side of the manifest flow


@dataclass
class FakeManifestGitHub:
    """The conversion call, strict about its contract; `register` plays the person who
    confirms the manifest on GitHub's page and returns the code GitHub would send back."""

    pem: str
    web_url: str = "https://github.com"
    api_url: str = "https://api.github.com"
    app_id: int = 424242
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    refuse: int | None = None  # answer every conversion with this status
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def apps_path(self) -> str:
        # github.com shows Apps under /apps/, GitHub Enterprise Server under /github-apps/.
        return "apps" if self.web_url == "https://github.com" else "github-apps"

    def register(self, manifest: dict[str, Any]) -> str:
        code = f"{secrets.token_hex(10)}{next(self._ids)}"
        self.manifests[code] = manifest
        return code

    def conversion(self, manifest: dict[str, Any]) -> dict[str, Any]:
        slug = re.sub(r"[^a-z0-9-]+", "-", manifest["name"].lower())
        return {
            "id": self.app_id,
            "slug": slug,
            "node_id": "A_kwHOAAB",
            "owner": {"login": "octo-org", "type": "Organization"},
            "name": manifest["name"],
            "description": manifest.get("description", ""),
            "external_url": manifest["url"],
            "html_url": f"{self.web_url}/{self.apps_path}/{slug}",
            "created_at": "2026-11-26T06:00:00Z",
            "updated_at": "2026-11-26T06:00:00Z",
            "permissions": manifest.get("default_permissions", {}),
            "events": manifest.get("default_events", []),
            "installations_count": 0,
            "client_id": "Iv23liFAKECLIENT01",
            "client_secret": secrets.token_hex(20),
            "webhook_secret": secrets.token_hex(20),
            "pem": self.pem,
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, str(request.url)))
        prefix = urlsplit(self.api_url).path
        match = re.fullmatch(
            rf"{re.escape(prefix)}/app-manifests/([^/]+)/conversions", request.url.path
        )
        assert request.url.host == urlsplit(self.api_url).hostname, request.url
        if match is None or request.method != "POST":
            return httpx.Response(404, json={"message": "Not Found"})
        assert "authorization" not in request.headers, "the conversion takes no credentials"
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.headers["x-github-api-version"] == "2022-11-28"
        if self.refuse is not None:
            return httpx.Response(self.refuse, json={"message": "Not Found"})
        manifest = self.manifests.pop(match[1], None)
        if manifest is None:
            return httpx.Response(404, json={"message": "Not Found"})
        answer = self.conversion(manifest)
        self.answers[match[1]] = answer
        return httpx.Response(201, json=answer)


# ---------------------------------------------------------------------------
# Reading pages


class Page(HTMLParser):
    """Elements with an id (their attributes and text), forms' hidden inputs, all text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids: dict[str, dict[str, str]] = {}
        self.texts: dict[str, str] = {}
        self.inputs: dict[str, str] = {}
        self.text = ""
        self._open: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if "id" in values:
            self.ids[values["id"]] = values
            self.texts[values["id"]] = ""
            self._open.append(values["id"])
        elif tag not in ("input", "meta", "br"):
            self._open.append("")
        if tag == "input" and "name" in values:
            self.inputs[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag not in ("input", "meta", "br"):
            self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text += data
        for name in self._open:
            if name:
                self.texts[name] += data


@dataclass
class Registration:
    action: str
    state: str
    manifest: dict[str, Any]


def registration(page: Page) -> Registration:
    action = page.ids["register-form"]["action"]
    assert page.ids["register-form"]["method"] == "post"
    return Registration(
        action=action.split("?")[0],
        state=parse_qs(urlsplit(action).query)["state"][0],
        manifest=json.loads(page.inputs["manifest"]),
    )


# ---------------------------------------------------------------------------
# The app without credentials

SETUP_TOKEN = "the-setup-token-printed-at-start-0123"
LOCAL = "http://localhost:3000"


@dataclass
class SetupHarness:
    """The app without credentials; `client` is the operator's browser, which opened the
    console's setup link (so it holds the setup cookie)."""

    app: Starlette
    client: httpx.AsyncClient
    github: FakeManifestGitHub
    settings: Settings
    token: str = SETUP_TOKEN

    def browser(
        self, base_url: str = LOCAL, peer: tuple[str, int] = ("127.0.0.1", 51000)
    ) -> httpx.AsyncClient:
        """Another browser, without the cookie (the caller closes it)."""
        transport = httpx.ASGITransport(app=self.app, client=peer)
        return httpx.AsyncClient(transport=transport, base_url=base_url)

    async def start(self, path: str = "/setup") -> Registration:
        response = await self.client.get(path)
        assert response.status_code == 200, response.text
        return registration(Page(response.text))

    async def callback(
        self, code: str, state: str, client: httpx.AsyncClient | None = None
    ) -> httpx.Response:
        return await (client or self.client).get(
            "/setup/callback", params={"code": code, "state": state}
        )


async def open_setup_link(client: httpx.AsyncClient, token: str = SETUP_TOKEN) -> httpx.Response:
    """What the operator does first: open `/setup?token=…` from the console."""
    response = await client.get("/setup", params={"token": token})
    assert response.status_code == 303, response.text
    return response


@contextlib.asynccontextmanager
async def running(
    settings: Settings,
    github: FakeManifestGitHub,
    base_url: str = LOCAL,
    *,
    signed_in: bool = True,
) -> AsyncIterator[SetupHarness]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(github))
    app: Starlette = create_app(settings, http=http, setup_token=SETUP_TOKEN)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            if signed_in:
                await open_setup_link(client)
            yield SetupHarness(app, client, github, settings)
    await http.aclose()


def bare_settings(tmp_path: Path, **changes: Any) -> Settings:
    """What `make serve` has before registration: no APP_ID, key or webhook secret."""
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        env_file=str(tmp_path / ".env"),
        **changes,
    )
