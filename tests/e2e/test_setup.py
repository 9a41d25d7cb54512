"""The setup page (GitHub App manifest flow) and the status page, driven through the app.

GitHub's side of the manifest flow is faked by `FakeManifestGitHub`, which follows
docs.github.com "Registering a GitHub App from a manifest" (REST API 2022-11-28): the
browser posts a `manifest` form field to `{web}/settings/apps/new?state=…` (or
`/organizations/{org}/settings/apps/new`), GitHub redirects to `redirect_url?code=…&state=…`,
and `POST {api}/app-manifests/{code}/conversions` (no authentication; the code works once,
for an hour) answers 201 with the App's id, slug, name, html_url, client_id, client_secret,
webhook_secret and pem.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from bot.app import create_app
from bot.operator.setup import MAX_STATES, write_env_file
from bot.settings import Secret, Settings, read_env_file
from tests.support import payloads
from tests.support.app import WEBHOOK_SECRET, Harness, KeyPair
from tests.support.fakes import route
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.server import AppProcess, free_port
from tests.support.fakes.tembo import FakeTembo
from tests.support.manifest import (
    SETUP_TOKEN,
    FakeManifestGitHub,
    Page,
    SetupHarness,
    bare_settings,
    open_setup_link,
    registration,
    running,
)

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake(app_key: KeyPair) -> FakeManifestGitHub:
    return FakeManifestGitHub(pem=app_key.private)


@pytest.fixture
async def setup(tmp_path: Path, fake: FakeManifestGitHub) -> AsyncIterator[SetupHarness]:
    async with running(bare_settings(tmp_path), fake) as harness:
        yield harness


# ---------------------------------------------------------------------------
# The setup page


@pytest.mark.parametrize("path", ["/", "/setup"])
async def test_without_credentials_the_page_offers_one_button_posting_app_yml(
    setup: SetupHarness, path: str
) -> None:
    response = await setup.client.get(path)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    page = Page(response.text)
    assert "register" in page.ids
    found = registration(page)
    assert found.action == "https://github.com/settings/apps/new"
    assert len(found.state) >= 20

    app_yml = yaml.safe_load((ROOT / "app.yml").read_text())
    manifest = found.manifest
    assert manifest["name"] == app_yml["name"] == "tembo-dispatch"
    assert manifest["public"] is False
    assert manifest["default_events"] == ["issues", "issue_comment"]
    assert manifest["default_permissions"] == {
        "issues": "write",
        "metadata": "read",
        "contents": "read",
    }
    assert manifest["hook_attributes"] == {"url": "http://localhost:3000/webhook", "active": True}
    assert manifest["redirect_url"] == "http://localhost:3000/setup/callback"
    assert manifest["url"] == "http://localhost:3000"


async def test_each_page_view_gets_its_own_state(setup: SetupHarness) -> None:
    first, second = await setup.start(), await setup.start()
    assert first.state != second.state


async def test_webhook_url_in_the_manifest_comes_from_webhook_proxy_url(
    tmp_path: Path, fake: FakeManifestGitHub
) -> None:
    settings = bare_settings(tmp_path, webhook_proxy_url="https://smee.io/abc123")
    async with running(settings, fake, base_url="http://localhost:3000") as harness:
        response = await harness.client.get("/setup")
        found = registration(Page(response.text))
    assert found.manifest["hook_attributes"]["url"] == "https://smee.io/abc123"
    assert found.manifest["redirect_url"] == "http://localhost:3000/setup/callback"
    assert "warning" not in Page(response.text).ids


async def test_a_localhost_webhook_url_is_flagged_for_githubcom(
    tmp_path: Path, fake: FakeManifestGitHub
) -> None:
    async with running(bare_settings(tmp_path), fake, base_url="http://localhost:3000") as harness:
        page = Page((await harness.client.get("/")).text)
    assert "WEBHOOK_PROXY_URL" in page.texts["warning"]
    assert registration(page).manifest["hook_attributes"]["url"] == "http://localhost:3000/webhook"


async def test_webhook_path_setting_is_used_in_the_manifest(
    tmp_path: Path, fake: FakeManifestGitHub
) -> None:
    async with running(bare_settings(tmp_path, webhook_path="/gh/hook"), fake) as harness:
        found = await harness.start()
    assert found.manifest["hook_attributes"]["url"] == "http://localhost:3000/gh/hook"


async def test_an_organisation_gets_the_organisations_registration_page(
    setup: SetupHarness,
) -> None:
    found = await setup.start("/setup?org=octo-org")
    assert found.action == "https://github.com/organizations/octo-org/settings/apps/new"


@pytest.mark.parametrize("org", ["../evil", "a b", "x" * 40, "-lead"])
async def test_a_malformed_organisation_name_is_refused(setup: SetupHarness, org: str) -> None:
    response = await setup.client.get("/setup", params={"org": org})
    assert response.status_code == 400
    assert "register-form" not in Page(response.text).ids


# ---------------------------------------------------------------------------
# Who may register: the setup token, its cookie, the Host header


async def test_the_takeover_sequence_is_refused_without_the_setup_token(
    setup: SetupHarness,
) -> None:
    """A visitor from elsewhere tries to register their own App on this server."""
    operator = await setup.start()  # the operator is mid-registration
    async with setup.browser(peer=("203.0.113.9", 40000)) as visitor:
        page = await visitor.get("/setup")
        assert page.status_code == 403
        text = Page(page.text).texts["token-needed"]
        assert "console" in text and "setup?token=" in text
        assert SETUP_TOKEN not in page.text
        assert "register-form" not in Page(page.text).ids
        assert "set-cookie" not in page.headers
        assert (await visitor.get("/")).status_code == 403

        theirs = setup.github.register({"name": "not-ours", "url": "https://evil.example"})
        # With a made-up state, and even with the operator's own state (leaked, say).
        for state in ("made-up", operator.state):
            response = await setup.callback(theirs, state, client=visitor)
            assert response.status_code == 403
            assert "setup token" in Page(response.text).texts["error"]
    assert setup.github.calls == []
    assert not Path(setup.settings.env_file).exists()

    # The operator's registration goes on untouched.
    code = setup.github.register(operator.manifest)
    assert (await setup.callback(code, operator.state)).status_code == 200
    assert read_env_file(setup.settings.env_file)["APP_ID"] == "424242"


async def test_the_console_link_sets_an_httponly_samesite_cookie_and_drops_the_token(
    tmp_path: Path, fake: FakeManifestGitHub
) -> None:
    async with running(bare_settings(tmp_path), fake, signed_in=False) as harness:
        response = await open_setup_link(harness.client)
        assert response.headers["location"] == "http://localhost:3000/setup"
        cookie = response.headers["set-cookie"].lower()
        assert cookie.startswith("tembo_setup=")
        assert SETUP_TOKEN.lower() not in cookie
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # plain http on localhost: a Secure cookie is never sent
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        page = await harness.client.get("/setup")
        assert page.status_code == 200
        assert SETUP_TOKEN not in page.text
        registration(Page(page.text))


@pytest.mark.parametrize("token", ["wrong", SETUP_TOKEN[:-1], SETUP_TOKEN + "x", ""])
async def test_a_wrong_setup_token_is_refused_without_a_cookie(
    tmp_path: Path, fake: FakeManifestGitHub, token: str
) -> None:
    async with running(bare_settings(tmp_path), fake, signed_in=False) as harness:
        response = await harness.client.get("/setup", params={"token": token})
        assert response.status_code == 403
        assert "set-cookie" not in response.headers
        assert SETUP_TOKEN not in response.text
        assert (await harness.client.get("/setup")).status_code == 403


async def test_a_state_works_only_for_the_browser_that_got_it(setup: SetupHarness) -> None:
    found = await setup.start()
    async with setup.browser() as other:
        await open_setup_link(other)  # holds the token too, but it is another session
        code = setup.github.register(found.manifest)
        assert (await setup.callback(code, found.state, client=other)).status_code == 403
    assert setup.github.calls == []
    assert (await setup.callback(code, found.state)).status_code == 200


async def test_anonymous_visits_do_not_evict_the_operators_state(setup: SetupHarness) -> None:
    found = await setup.start()
    async with setup.browser(peer=("203.0.113.9", 40000)) as visitor:
        for _ in range(300):
            assert (await visitor.get("/setup")).status_code == 403
    code = setup.github.register(found.manifest)
    assert (await setup.callback(code, found.state)).status_code == 200


async def test_outstanding_states_are_bounded(setup: SetupHarness) -> None:
    first = await setup.start()
    for _ in range(MAX_STATES - 1):
        await setup.start()
    kept = await setup.start()  # one more than the bound: the oldest goes
    code = setup.github.register(first.manifest)
    assert (await setup.callback(code, first.state)).status_code == 403
    assert (await setup.callback(code, kept.state)).status_code == 200


@pytest.mark.parametrize(
    "given",
    [
        {"app_id": "77"},
        {"webhook_secrets": (Secret("only-the-secret"),)},
        {"private_key": Secret("-----BEGIN RSA PRIVATE KEY-----\n…")},
    ],
    ids=["APP_ID", "WEBHOOK_SECRET", "PRIVATE_KEY"],
)
async def test_any_one_credential_in_the_settings_closes_registration(
    tmp_path: Path, fake: FakeManifestGitHub, given: dict[str, object]
) -> None:
    async with running(bare_settings(tmp_path, **given), fake, signed_in=False) as harness:
        response = await harness.client.get("/setup", params={"token": SETUP_TOKEN})
        assert response.status_code == 200
        assert "register-form" not in Page(response.text).ids
        assert "set-cookie" not in response.headers
        code = fake.register({"name": "late", "url": "http://localhost:3000"})
        assert (await harness.callback(code, "any")).status_code == 409
    assert fake.calls == []
    assert not Path(harness.settings.env_file).exists()


@pytest.mark.parametrize(
    "line", ['WEBHOOK_SECRET="s3cret"', "PRIVATE_KEY_PATH=/etc/key.pem", "PRIVATE_KEY=x"]
)
async def test_any_one_credential_in_the_env_file_closes_registration(
    tmp_path: Path, fake: FakeManifestGitHub, line: str
) -> None:
    settings = bare_settings(tmp_path)
    Path(settings.env_file).write_text(f"APP_ID=\n{line}\n")
    async with running(settings, fake, signed_in=False) as harness:
        response = await harness.client.get("/setup", params={"token": SETUP_TOKEN})
        assert "register-form" not in Page(response.text).ids
        assert line.split("=")[0] in Page(response.text).texts["closed"]


@pytest.mark.parametrize(
    "base_url", ["http://evil.example", "http://tembo.example.com:3000", "http://10.1.2.3:3000"]
)
async def test_an_unknown_host_header_never_reaches_the_manifest(
    tmp_path: Path, fake: FakeManifestGitHub, base_url: str
) -> None:
    settings = bare_settings(tmp_path, public_url="https://tembo.example.com")
    async with running(settings, fake, signed_in=False) as harness:
        async with harness.browser(base_url=base_url) as browser:
            response = await browser.get("/setup", params={"token": SETUP_TOKEN})
            assert response.status_code == 400
            assert "PUBLIC_URL" in Page(response.text).texts["error"]
            assert "set-cookie" not in response.headers
        # Nor with a cookie from a good address: the Host is checked on every request.
        forged = await harness.client.get("/setup", headers={"host": "evil.example"})
        assert forged.status_code == 400
        assert "manifest" not in Page(forged.text).inputs


async def test_public_url_is_trusted_and_gives_https_addresses_and_a_secure_cookie(
    tmp_path: Path, fake: FakeManifestGitHub
) -> None:
    settings = bare_settings(tmp_path, public_url="https://tembo.example.com")
    async with (
        running(settings, fake, signed_in=False) as harness,
        harness.browser(base_url="https://tembo.example.com") as browser,
    ):
        signed = await open_setup_link(browser)
        assert "secure" in signed.headers["set-cookie"].lower()
        response = await browser.get("/setup")
        found = registration(Page(response.text))
    assert found.manifest["redirect_url"] == "https://tembo.example.com/setup/callback"
    assert found.manifest["hook_attributes"]["url"] == "https://tembo.example.com/webhook"


# ---------------------------------------------------------------------------
# The callback


async def test_callback_writes_the_credentials_0600_and_shows_the_install_link(
    setup: SetupHarness, app_key: KeyPair
) -> None:
    found = await setup.start()
    code = setup.github.register(found.manifest)
    response = await setup.callback(code, found.state)
    assert response.status_code == 200, response.text
    answer = setup.github.answers[code]

    page = Page(response.text)
    assert page.ids["install"]["href"] == (
        "https://github.com/apps/tembo-dispatch/installations/new"
    )
    for secret in (answer["pem"], answer["webhook_secret"], answer["client_secret"]):
        assert secret not in response.text
    assert app_key.private.splitlines()[1] not in response.text

    env_file = Path(setup.settings.env_file)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    written = read_env_file(env_file)
    assert written == {
        "APP_ID": "424242",
        "PRIVATE_KEY": answer["pem"].strip().replace("\n", "\\n"),
        "WEBHOOK_SECRET": answer["webhook_secret"],
        "GITHUB_CLIENT_ID": answer["client_id"],
        "GITHUB_CLIENT_SECRET": answer["client_secret"],
    }
    # What the next start reads is a working configuration.
    loaded = Settings.from_env(written)
    assert loaded.has_github_credentials
    assert loaded.app_id == "424242"
    assert loaded.private_key is not None
    assert loaded.private_key.reveal().strip() == app_key.private.strip()
    assert [s.reveal() for s in loaded.webhook_secrets] == [answer["webhook_secret"]]


async def test_the_env_file_keeps_its_other_lines(setup: SetupHarness) -> None:
    env_file = Path(setup.settings.env_file)
    env_file.write_text("# mine\nTEMBO_API_KEY=tk-123\nLOG_LEVEL=debug\n")
    env_file.chmod(0o644)
    found = await setup.start()
    response = await setup.callback(setup.github.register(found.manifest), found.state)
    assert response.status_code == 200
    written = read_env_file(env_file)
    assert written["TEMBO_API_KEY"] == "tk-123"
    assert written["LOG_LEVEL"] == "debug"
    assert written["APP_ID"] == "424242"
    assert env_file.read_text().startswith("# mine\n")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


async def test_a_callback_not_started_here_is_refused_and_writes_nothing(
    setup: SetupHarness,
) -> None:
    found = await setup.start()
    code = setup.github.register(found.manifest)
    response = await setup.callback(code, "forged-state")
    assert response.status_code == 403
    assert "start again" in Page(response.text).texts["error"]
    assert setup.github.calls == []
    assert not Path(setup.settings.env_file).exists()


async def test_a_state_works_once(setup: SetupHarness) -> None:
    found = await setup.start()
    setup.github.refuse = 422
    first = await setup.callback(setup.github.register(found.manifest), found.state)
    assert first.status_code == 502
    setup.github.refuse = None
    second = await setup.callback(setup.github.register(found.manifest), found.state)
    assert second.status_code == 403


async def test_an_expired_code_says_so_and_writes_nothing(setup: SetupHarness) -> None:
    found = await setup.start()
    response = await setup.callback("0123456789abcdef0123", found.state)  # GitHub never issued it
    assert response.status_code == 502
    message = Page(response.text).texts["error"]
    assert "404" in message and "expired" in message and "start again" in message
    assert not Path(setup.settings.env_file).exists()


async def test_a_malformed_code_never_reaches_github(setup: SetupHarness) -> None:
    found = await setup.start()
    response = await setup.callback("../../app", found.state)
    assert response.status_code == 400
    assert setup.github.calls == []


async def test_after_registration_the_flow_is_closed(setup: SetupHarness) -> None:
    found = await setup.start()
    other = await setup.start()
    assert (await setup.callback(setup.github.register(found.manifest), found.state)).is_success
    before = Path(setup.settings.env_file).read_text()

    again = await setup.callback(setup.github.register(other.manifest), other.state)
    assert again.status_code == 409
    assert Path(setup.settings.env_file).read_text() == before

    page = Page((await setup.client.get("/setup")).text)
    assert "register-form" not in page.ids
    assert page.ids["install"]["href"].endswith("/apps/tembo-dispatch/installations/new")


async def test_an_env_file_holding_an_app_closes_the_flow(
    tmp_path: Path, fake: FakeManifestGitHub
) -> None:
    settings = bare_settings(tmp_path)
    Path(settings.env_file).write_text('APP_ID="77"\n')
    async with running(settings, fake, signed_in=False) as harness:
        page = Page((await harness.client.get("/")).text)
        assert "register-form" not in page.ids
        assert "restart" in page.texts["closed"]
        response = await harness.callback("abc", "def")
    assert response.status_code == 409
    assert fake.calls == []


async def test_ghes_uses_github_url_and_the_api_path_everywhere(
    tmp_path: Path, app_key: KeyPair
) -> None:
    ghes = FakeManifestGitHub(
        pem=app_key.private,
        web_url="https://ghe.example.test",
        api_url="https://ghe.example.test/api/v3",
    )
    settings = bare_settings(tmp_path, github_url=ghes.web_url, github_api_url=ghes.api_url)
    async with running(settings, ghes) as harness:
        found = await harness.start("/setup?org=platform")
        assert found.action == "https://ghe.example.test/organizations/platform/settings/apps/new"
        code = ghes.register(found.manifest)
        response = await harness.callback(code, found.state)
    assert response.status_code == 200
    assert ghes.calls == [
        ("POST", f"https://ghe.example.test/api/v3/app-manifests/{code}/conversions")
    ]
    page = Page(response.text)
    assert page.ids["install"]["href"] == (
        "https://ghe.example.test/github-apps/tembo-dispatch/installations/new"
    )


# ---------------------------------------------------------------------------
# The env file


def test_env_file_round_trip_and_mode(tmp_path: Path, app_key: KeyPair) -> None:
    path = tmp_path / "nested" / ".env"
    pem = app_key.private.strip().replace("\n", "\\n")
    write_env_file(path, {"APP_ID": "1", "PRIVATE_KEY": pem}, "test")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_env_file(path) == {"APP_ID": "1", "PRIVATE_KEY": pem}
    write_env_file(path, {"APP_ID": "2"}, "again")
    assert read_env_file(path) == {"APP_ID": "2", "PRIVATE_KEY": pem}
    assert path.read_text().count("APP_ID") == 1
    assert [p.name for p in path.parent.iterdir()] == [".env"]  # no temporary left behind


def test_read_env_file_takes_the_usual_forms(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# comment\n\nexport A=1\nB='two words'\nC=\"x\\ny\"\nD=plain # note\nnot a line\n"
    )
    assert read_env_file(path) == {"A": "1", "B": "two words", "C": "x\\ny", "D": "plain"}
    assert read_env_file(tmp_path / "missing") == {}


# ---------------------------------------------------------------------------
# The status page


async def test_with_credentials_home_is_a_status_page_without_secrets(
    harness: Harness, settings: Settings, app_key: KeyPair
) -> None:
    harness.github.permissions[("Codertocat/Hello-World", "Codertocat")] = "write"
    delivered = await harness.deliver("issues", payloads.labeled(), "delivery-status-1")
    assert delivered.status_code == 202
    installed = payloads.fixture("installation.created.1.json")
    assert (await harness.deliver("installation", installed)).status_code == 202
    await harness.settle()

    response = await harness.client.get("/")
    assert response.status_code == 200
    page = Page(response.text)
    assert page.texts["app-name"] == "tembo-dispatch"  # GitHub's GET /app
    assert page.texts["installations"].split()[0] == "1"
    assert page.texts["jobs-done"] == "2"
    assert page.texts["jobs-queued"] == "0"
    assert page.texts["jobs-failed"] == "0"
    assert "delivery-status-1" in page.texts["deliveries"]
    assert "register-form" not in page.ids
    for secret in (WEBHOOK_SECRET, harness.tembo.api_key, app_key.private.splitlines()[1]):
        assert secret not in response.text

    # GET /app is asked once, not at every view.
    await harness.client.get("/")
    assert harness.github.count("GET", "/app") == 1


async def test_with_credentials_the_setup_flow_is_closed(harness: Harness) -> None:
    page = Page((await harness.client.get("/setup")).text)
    assert "register-form" not in page.ids
    response = await harness.client.get("/setup/callback", params={"code": "x", "state": "y"})
    assert response.status_code == 409


def status_token_settings(settings: Settings) -> Settings:
    return settings.replace(status_token=Secret("status-token-0123456789abcdef"))


async def test_the_status_page_is_refused_off_loopback_without_the_token(
    harness: Harness,
) -> None:
    path = "/"
    remote = httpx.ASGITransport(app=harness.app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=remote, base_url="http://tembo.example.com") as c:
        response = await c.get(path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "STATUS_TOKEN" in response.text
        assert "deliveries" not in response.text
    # Through a proxy on this machine: the peer is 127.0.0.1 but the client is not.
    for header in ("x-forwarded-for", "forwarded", "x-real-ip"):
        proxied = await harness.client.get(path, headers={header: "203.0.113.9"})
        assert proxied.status_code == 401, header
    assert (await harness.client.get(path)).status_code == 200  # this machine, directly


async def test_the_status_token_opens_the_status_page_from_anywhere(
    settings: Settings, github: FakeGitHub, tembo: FakeTembo
) -> None:
    path = "/"
    settings = status_token_settings(settings)
    http = httpx.AsyncClient(transport=route({github.host: github, tembo.host: tembo}))
    app = create_app(settings, http=http)
    token = "status-token-0123456789abcdef"
    async with app.router.lifespan_context(app):
        remote = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))
        async with httpx.AsyncClient(transport=remote, base_url="https://tembo.example") as c:
            bearer = await c.get(path, headers={"authorization": f"Bearer {token}"})
            query = await c.get(path, params={"token": token})
            proxied = await c.get(
                path, headers={"authorization": f"Bearer {token}", "x-forwarded-for": "1.2.3.4"}
            )
            wrong = await c.get(path, headers={"authorization": f"Bearer {token[:-1]}"})
            setup_token = await c.get(path, params={"token": "something-else-entirely"})
    await http.aclose()
    assert [bearer.status_code, query.status_code, proxied.status_code] == [200, 200, 200]
    assert [wrong.status_code, setup_token.status_code] == [401, 401]
    assert token not in bearer.text


async def test_the_status_page_does_not_call_github_at_each_view_even_when_it_fails(
    harness: Harness,
) -> None:
    harness.github.fault = lambda request: (
        httpx.Response(502, json={"message": "Server Error"})
        if request.url.path == "/app"
        else None
    )
    first = await harness.client.get("/")
    assert first.status_code == 200
    assert "did not describe it" in Page(first.text).text
    for _ in range(5):
        assert (await harness.client.get("/")).status_code == 200
    assert harness.github.count("GET", "/app") == 1


@pytest.mark.slow
async def test_serve_prints_the_setup_link_on_its_console_and_that_link_registers(
    tmp_path: Path,
) -> None:
    """`python -m bot serve` without credentials, as `make serve` runs it on a fresh machine."""
    port = free_port()
    env = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "ENV_FILE": str(tmp_path / ".env"),
        "LOG_LEVEL": "warning",  # the link is in the log even when info lines are not
        "LOG_FORMAT": "json",
    }
    process = AppProcess("serve", env, tmp_path / "serve.log").start()
    try:
        await process.wait_ready()
        output = process.log_path.read_text()
        printed = re.search(rf"Open (http://localhost:{port}/setup\?token=([\w-]+))\n", output)
        assert printed, output
        link, token = printed[1], printed[2]
        assert len(token) >= 40
        logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert any(line.get("event") == "setup.token" and line["urls"] == [link] for line in logged)

        local = link.replace("localhost", "127.0.0.1")
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as browser:
            assert (await browser.get(f"{process.url}/setup")).status_code == 403
            signed = await browser.get(local)
            assert signed.status_code == 303
            page = await browser.get(signed.headers["location"])
            assert page.status_code == 200
            found = registration(Page(page.text))
        assert found.manifest["redirect_url"] == f"http://127.0.0.1:{port}/setup/callback"
    finally:
        process.stop()
