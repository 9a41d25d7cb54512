"""The setup page in a real browser, as an operator meets it: `python -m bot serve` runs
without credentials and prints its setup link; headless Chromium (Debian's `chromium`
package, driven by Playwright, no browser download) first opens the page without the token,
then the printed link, and clicks through the manifest flow against a fake GitHub
Enterprise Server on loopback, under a non-default path (`/ghe`, API at `/ghe/api/v3`).

Both servers listen on 127.0.0.1 only, and the browser aborts any request for another host.
Screenshots of each step go to test-output/setup-browser/.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import uvicorn
from playwright.sync_api import Route as BrowserRoute
from playwright.sync_api import sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.settings import Settings, read_env_file
from tests.support.app import KeyPair
from tests.support.fakes.server import AppProcess, free_port
from tests.support.manifest import FakeManifestGitHub

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "setup-browser"
PREFIX = "/ghe"  # GitHub Enterprise Server behind a path, to prove no URL is hard-coded
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Belt and braces with the request filter below: no name but loopback resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]


def find_chromium() -> str | None:
    """Debian's chromium (what .ci/run installs); never a downloaded browser."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    for path in ("/usr/bin/chromium", "/usr/lib/chromium/chromium"):
        if os.access(path, os.X_OK):
            return path
    return None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason=(
        "!!! BROWSER TEST SKIPPED: no chromium executable on PATH or in /usr/bin. Install "
        "Debian's package (apt-get install chromium), as .ci/run does, to run it. !!!"
    ),
)


# ---------------------------------------------------------------------------
# Loopback servers


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def serve(app: Starlette, sock: socket.socket, *, lifespan: Literal["on", "off"]) -> Iterator[None]:
    """Run `app` with uvicorn on `sock` in a thread until the block ends."""
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan=lifespan,
        ws="none",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@dataclass
class FakeGitHubSite:
    """GitHub's pages and API for the manifest flow, over HTTP: the registration page
    that receives the form, the "Create GitHub App" confirmation, the conversion call
    (`FakeManifestGitHub`'s contract) and the installation page."""

    core: FakeManifestGitHub
    received: list[dict[str, Any]] = field(default_factory=list)
    conversions: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def new_app(request: Request) -> Response:
            form = parse_qs((await request.body()).decode())
            assert request.headers["content-type"] == "application/x-www-form-urlencoded"
            manifest = json.loads(form["manifest"][0])
            state = request.query_params["state"]
            self.received.append({"path": request.url.path, "state": state, "manifest": manifest})
            code = self.core.register(manifest)
            back = f"{manifest['redirect_url']}?{urlencode({'code': code, 'state': state})}"
            return HTMLResponse(
                "<!doctype html><title>Create GitHub App</title>"
                f"<h1>Create a GitHub App: <span id='name'>{escape(manifest['name'])}</span></h1>"
                f"<p>Webhook URL: {escape(manifest['hook_attributes']['url'])}</p>"
                f"<a id='create' href='{escape(back)}'>Create GitHub App</a>"
            )

        async def conversions(request: Request) -> Response:
            code = request.path_params["code"]
            self.conversions.append(code)
            assert "authorization" not in request.headers
            assert request.headers["x-github-api-version"] == "2022-11-28"
            manifest = self.core.manifests.pop(code, None)
            if manifest is None:
                return JSONResponse({"message": "Not Found"}, status_code=404)
            answer = self.core.conversion(manifest)
            self.core.answers[code] = answer
            return JSONResponse(answer, status_code=201)

        async def install(request: Request) -> Response:
            slug = escape(request.path_params["slug"])
            return HTMLResponse(f"<!doctype html><h1 id='install-page'>Install {slug}</h1>")

        return Starlette(
            routes=[
                Route(f"{PREFIX}/settings/apps/new", new_app, methods=["POST"]),
                Route(
                    f"{PREFIX}/organizations/{{org}}/settings/apps/new", new_app, methods=["POST"]
                ),
                Route(
                    f"{PREFIX}/api/v3/app-manifests/{{code}}/conversions",
                    conversions,
                    methods=["POST"],
                ),
                Route(f"{PREFIX}/github-apps/{{slug}}/installations/new", install),
            ]
        )


def only_loopback(route: BrowserRoute) -> None:
    if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        route.abort()


# ---------------------------------------------------------------------------


@contextlib.contextmanager
def stopping(app: AppProcess) -> Iterator[AppProcess]:
    try:
        yield app
    finally:
        app.stop()


def printed_setup_link(app: AppProcess) -> str:
    """The line `python -m bot serve` printed on its console, as the operator reads it."""
    deadline = time.monotonic() + 20
    while True:
        found = re.search(r"Open (http://\S+/setup\?token=\S+)", app.log_path.read_text())
        if found:
            return found[1]
        assert app.alive and time.monotonic() < deadline, app.tail()
        time.sleep(0.05)


def test_register_the_app_from_the_setup_page_in_chromium(tmp_path: Path, app_key: KeyPair) -> None:
    assert CHROMIUM is not None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    github_sock = free_socket()
    github_url = f"http://127.0.0.1:{github_sock.getsockname()[1]}{PREFIX}"
    port = free_port()
    app_url = f"http://localhost:{port}"
    site = FakeGitHubSite(
        FakeManifestGitHub(pem=app_key.private, web_url=github_url, api_url=f"{github_url}/api/v3")
    )
    env_file = tmp_path / ".env"
    app = AppProcess(
        "serve",
        {
            "GITHUB_URL": github_url,
            "GITHUB_API_URL": f"{github_url}/api/v3",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
            "ENV_FILE": str(env_file),
        },
        tmp_path / "serve.log",
    )
    seen_hosts: set[str] = set()

    with (
        serve(site.app(), github_sock, lifespan="off"),
        stopping(app.start()),
        sync_playwright() as playwright,
    ):
        link = printed_setup_link(app)
        assert link.startswith(f"{app_url}/setup?token=")
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh user-data-dir
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1000, "height": 800},
        )
        try:
            browser.route("**/*", only_loopback)
            browser.on("request", lambda r: seen_hosts.add(urlsplit(r.url).hostname or ""))
            page = browser.new_page()

            # Without the console's link: the page says where the token is, not what it is.
            refused = page.goto(f"{app_url}/")
            assert refused is not None and refused.status == 403
            assert "console" in (page.text_content("#token-needed") or "")
            assert link.split("token=")[1] not in page.content()
            page.screenshot(path=SCREENSHOTS / "0-token-needed.png", full_page=True)

            page.goto(link)
            assert page.url == f"{app_url}/setup"  # the token left the address bar
            assert page.text_content("h1") == "Register tembo-dispatch on GitHub"
            [cookie] = browser.cookies(app_url)
            assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
            page.screenshot(path=SCREENSHOTS / "1-setup-page.png", full_page=True)

            page.click("#register")
            page.wait_for_selector("#create")
            page.screenshot(path=SCREENSHOTS / "2-github-confirms.png", full_page=True)
            [posted] = site.received
            assert posted["path"] == f"{PREFIX}/settings/apps/new"
            manifest = posted["manifest"]
            assert manifest["name"] == "tembo-dispatch"
            assert manifest["hook_attributes"] == {"url": f"{app_url}/webhook", "active": True}
            assert manifest["redirect_url"] == f"{app_url}/setup/callback"
            assert manifest["default_events"] == ["issues", "issue_comment"]
            assert manifest["default_permissions"] == {
                "issues": "write",
                "metadata": "read",
                "contents": "read",
            }
            assert manifest["public"] is False

            page.click("#create")
            page.wait_for_selector("#install")
            page.screenshot(path=SCREENSHOTS / "3-registered.png", full_page=True)
            assert page.url.startswith(f"{app_url}/setup/callback?code=")
            href = page.get_attribute("#install", "href")
            assert href == f"{github_url}/github-apps/tembo-dispatch/installations/new"
            content = page.content()
            answer = next(iter(site.core.answers.values()))
            for secret in (answer["webhook_secret"], answer["client_secret"]):
                assert secret not in content

            page.click("#install")
            page.wait_for_selector("#install-page")
        finally:
            browser.close()

    assert seen_hosts == {"127.0.0.1", "localhost"}
    assert len(site.conversions) == 1
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    written = read_env_file(env_file)
    assert set(written) == {
        "APP_ID",
        "PRIVATE_KEY",
        "WEBHOOK_SECRET",
        "GITHUB_CLIENT_ID",
        "GITHUB_CLIENT_SECRET",
    }
    loaded = Settings.from_env({**written, "GITHUB_URL": github_url})
    assert loaded.has_github_credentials
    assert loaded.private_key is not None
    assert loaded.private_key.reveal().strip() == app_key.private.strip()
    assert (SCREENSHOTS / "3-registered.png").stat().st_size > 0
