"""The operator's pages: registering the GitHub App (manifest flow) and the status page.

Owns `/`, `/setup` and `/setup/callback`. Without credentials, `/` and `/setup` offer one
button that posts the manifest from `app.yml` to `{GITHUB_URL}/settings/apps/new` (or an
organisation's); GitHub sends the browser back to `/setup/callback?code=…`, the code is
exchanged (`POST {GITHUB_API_URL}/app-manifests/{code}/conversions`) and the App's
credentials are written to the env file, mode 0600. With credentials, `/` shows what the
app has seen.

It must never put a secret in a log line or a page, and it does not change the running
process's settings: the new credentials take effect when the server starts again and
reads the env file. Once credentials exist (in the settings or the env file) the setup
flow is closed, so nobody can re-register a running server from its public pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import html
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

import httpx
import yaml
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from bot import __version__
from bot.adapters.github import API_VERSION, GitHubClient
from bot.logs import log
from bot.operator import report
from bot.ports import Store
from bot.settings import Settings, read_env_file

logger = logging.getLogger("bot.setup")

PACKAGED_MANIFEST = Path(__file__).resolve().parent.parent / "app.yml"
CALLBACK_PATH = "/setup/callback"
# What the conversion gives and the env file receives, in this order.
ENV_KEYS = ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET")
STATE_TTL = 3600.0  # GitHub's manifest codes live an hour; so does our side of the handshake
MAX_STATES = 200
APP_INFO_TIMEOUT = 5.0
_ORG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
# Characters that some env-file reader (shell, systemd, compose) would interpret.
_UNSAFE = re.compile(r"[\"'\\$`\x00-\x09\x0b-\x1f\x7f]")


class SetupError(Exception):
    """The registration cannot go on; `message` is shown to the operator as is."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class RuntimeView(Protocol):
    """The parts of `app.Runtime` the pages use."""

    @property
    def store(self) -> Store: ...

    @property
    def http(self) -> httpx.AsyncClient: ...

    @property
    def github(self) -> GitHubClient: ...


# ---------------------------------------------------------------------------
# The manifest


def manifest_path() -> Path:
    """`app.yml` in the working directory (where Probot looks), else beside the package."""
    here = Path("app.yml")
    return here if here.is_file() else PACKAGED_MANIFEST


def load_manifest(path: Path | None = None) -> dict[str, Any]:
    path = path or manifest_path()
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SetupError(f"cannot read the App manifest {path}: {exc.strerror}", 500) from None
    except yaml.YAMLError as exc:
        raise SetupError(f"the App manifest {path} is not valid YAML: {exc}", 500) from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise SetupError(f"the App manifest {path} must be a mapping with a name", 500)
    return data


def webhook_url(settings: Settings, origin: str) -> str:
    """Where GitHub will post: WEBHOOK_PROXY_URL as given, else this server's receiver."""
    return settings.webhook_proxy_url or f"{origin}{settings.webhook_path}"


def build_manifest(template: Mapping[str, Any], settings: Settings, origin: str) -> dict[str, Any]:
    """app.yml with the addresses that depend on where this server runs filled in."""
    manifest = copy.deepcopy(dict(template))
    manifest["url"] = manifest.get("url") or origin
    hook = dict(manifest.get("hook_attributes") or {})
    hook["url"] = webhook_url(settings, origin)
    hook.setdefault("active", True)
    manifest["hook_attributes"] = hook
    manifest["redirect_url"] = f"{origin}{CALLBACK_PATH}"
    # After an installation GitHub sends the browser here: the status page.
    manifest["setup_url"] = manifest.get("setup_url") or f"{origin}/"
    return manifest


def registration_url(settings: Settings, state: str, org: str | None = None) -> str:
    """The page of GitHub (or GitHub Enterprise Server) that receives the manifest."""
    if org:
        base = f"{settings.github_url}/organizations/{quote(org)}/settings/apps/new"
    else:
        base = f"{settings.github_url}/settings/apps/new"
    return f"{base}?{urlencode({'state': state})}"


async def exchange_code(http: httpx.AsyncClient, settings: Settings, code: str) -> dict[str, Any]:
    """Trade the manifest code for the App's id, key and secrets (the code works once)."""
    if not _CODE.match(code):
        raise SetupError("the code GitHub sent back is malformed; start again from /setup")
    url = f"{settings.github_api_url}/app-manifests/{quote(code)}/conversions"
    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
        "User-Agent": f"tembo-dispatch/{__version__}",
    }
    try:
        response = await http.post(url, headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        raise SetupError(
            f"could not reach GitHub at {settings.github_api_url} ({type(exc).__name__}); "
            "check GITHUB_API_URL and start again from /setup",
            502,
        ) from None
    if response.status_code not in (200, 201):
        try:
            said = str(response.json().get("message", ""))
        except (ValueError, AttributeError):
            said = ""
        hint = (
            "the code was already used or has expired (they last an hour)"
            if response.status_code in (404, 422)
            else "see GitHub's answer"
        )
        raise SetupError(
            f"GitHub answered {response.status_code} to the code exchange: "
            f"{said or response.reason_phrase} ({hint}); start again from /setup",
            502,
        )
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or not data.get("id") or not data.get("pem"):
        raise SetupError("GitHub's answer to the code exchange has no App id or key", 502)
    return data


def credentials(conversion: Mapping[str, Any]) -> dict[str, str]:
    """The env file's new lines. PEM newlines become literal `\\n` (settings accept both)."""
    values = {
        "APP_ID": str(conversion.get("id") or ""),
        "PRIVATE_KEY": str(conversion.get("pem") or "")
        .replace("\r\n", "\n")
        .strip()
        .replace("\n", "\\n"),
        "WEBHOOK_SECRET": str(conversion.get("webhook_secret") or ""),
        "GITHUB_CLIENT_ID": str(conversion.get("client_id") or ""),
        "GITHUB_CLIENT_SECRET": str(conversion.get("client_secret") or ""),
    }
    for key, value in values.items():
        if _UNSAFE.search(value.replace("\\n", "")):
            raise SetupError(f"GitHub returned a {key} that cannot be written to an env file", 502)
    return {key: value for key, value in values.items() if value}


def app_page_url(settings: Settings, app: Mapping[str, Any]) -> str:
    """The App's public page: GitHub's `html_url` when it is on GITHUB_URL, else built."""
    given = app.get("html_url")
    if isinstance(given, str) and given.startswith(f"{settings.github_url}/"):
        return given.rstrip("/")
    slug = quote(str(app.get("slug") or app.get("name") or ""))
    return f"{settings.github_url}/apps/{slug}"


def install_url(settings: Settings, app: Mapping[str, Any]) -> str:
    return f"{app_page_url(settings, app)}/installations/new"


# ---------------------------------------------------------------------------
# The env file


def write_env_file(path: str | Path, values: Mapping[str, str], note: str) -> None:
    """Set `values` in the env file, keeping its other lines; the file ends up mode 0600.

    Written to a temporary file (created 0600, so the secrets are never readable by
    others, not even for a moment) and renamed over the old one."""
    target = Path(path)
    kept: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        for line in target.read_text().splitlines():
            key = line.strip().removeprefix("export ").split("=", 1)[0].strip()
            if key not in values:
                kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    lines = [*kept, ""] if kept else []
    lines += [f"# {note}", *(f'{key}="{value}"' for key, value in values.items())]
    text = "\n".join(lines) + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


# ---------------------------------------------------------------------------
# Pages

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;
color:#1f2328}
h1{font-size:1.6rem}code,pre{background:#f6f8fa;border-radius:6px;padding:.1rem .3rem}
pre{padding:.8rem;overflow:auto;font-size:.85rem}
button,.button{font:inherit;background:#1f883d;color:#fff;border:0;border-radius:6px;
padding:.6rem 1.2rem;cursor:pointer;text-decoration:none;display:inline-block}
.secondary{background:#6e7781}
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:.6rem;border-radius:6px}
.error{background:#ffebe9;border:1px solid #ff8182;padding:.6rem;border-radius:6px}
table{border-collapse:collapse}td,th{padding:.2rem .8rem .2rem 0;text-align:left;
vertical-align:top}small{color:#656d76}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(
        text,
        status_code=status_code,
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
        },
    )


def _error(message: str, status_code: int) -> HTMLResponse:
    body = (
        "<h1>Registration stopped</h1>"
        f'<p class="error" id="error">{_e(message)}</p>'
        '<p><a href="/setup">Back to the setup page</a></p>'
    )
    return _page("tembo-dispatch: setup", body, status_code)


def _origin(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _unreachable_from_github(settings: Settings, hook: str) -> bool:
    """GitHub.com cannot post to a loopback or unspecified address (GHES on a LAN might)."""
    host = urlsplit(hook).hostname or ""
    local = host in ("localhost", "0.0.0.0", "::1") or host.startswith("127.")  # noqa: S104
    return local and settings.github_url == "https://github.com"


def _when(timestamp: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(timestamp)))
    except (TypeError, ValueError):
        return "?"


def setup_routes(
    settings: Settings,
    get_runtime: Callable[[], RuntimeView],
    *,
    manifest_file: Path | None = None,
    clock: Callable[[], float] = time.time,
) -> list[Route]:
    """`GET /`, `GET /setup` and `GET /setup/callback` for `create_app`'s route list."""
    states: dict[str, float] = {}  # state sent to GitHub -> when; one use each
    registered: dict[str, Any] = {}  # filled once the env file is written
    exchange_lock = asyncio.Lock()
    app_info: dict[str, Any] = {}

    def closed_because() -> str | None:
        """Why registration is closed, or None when it is open."""
        if settings.has_github_credentials:
            return "this server already has its GitHub App credentials"
        if registered:
            return f"the App {registered['name']} was just registered"
        written = read_env_file(settings.env_file)
        if written.get("APP_ID"):
            return (
                f"{settings.env_file} already holds APP_ID={written['APP_ID']} but this "
                "server was started without it: restart it so it reads that file, or remove "
                "those lines to register a new App"
            )
        return None

    def issue_state() -> str:
        now = clock()
        for key, at in list(states.items()):
            if now - at > STATE_TTL:
                del states[key]
        while len(states) >= MAX_STATES:
            del states[next(iter(states))]
        state = secrets.token_urlsafe(24)
        states[state] = now
        return state

    def take_state(state: str) -> bool:
        at = states.pop(state, None)
        return at is not None and clock() - at <= STATE_TTL

    async def setup_page(request: Request) -> Response:
        reason = closed_because()
        if reason is not None:
            body = (
                "<h1>tembo-dispatch is registered</h1>"
                f'<p id="closed">Registration is closed: {_e(reason)}.</p>'
            )
            if registered:
                body += (
                    f'<p><a class="button" id="install" href="{_e(registered["install_url"])}">'
                    f"Install {_e(registered['name'])}</a></p>"
                )
            body += '<p><a href="/">Status</a></p>'
            return _page("tembo-dispatch: setup", body)
        try:
            template = await asyncio.to_thread(load_manifest, manifest_file)
        except SetupError as exc:
            return _error(exc.message, exc.status_code)
        org = request.query_params.get("org", "").strip() or None
        if org is not None and not _ORG.match(org):
            return _error(f"{org!r} is not a GitHub organisation name", 400)
        origin = _origin(request)
        manifest = build_manifest(template, settings, origin)
        action = registration_url(settings, issue_state(), org)
        hook = manifest["hook_attributes"]["url"]
        warning = ""
        if _unreachable_from_github(settings, hook):
            warning = (
                '<p class="warn" id="warning">GitHub.com cannot deliver webhooks to '
                f"<code>{_e(hook)}</code>. Set <code>WEBHOOK_PROXY_URL</code> to a public URL "
                "that forwards to this server (a tunnel, or a smee.io channel with its client) "
                "and restart before registering, or change the webhook URL in the App's "
                "settings afterwards.</p>"
            )
        permissions = ", ".join(
            f"{key}: {value}" for key, value in (manifest.get("default_permissions") or {}).items()
        )
        where = f"the organisation <b>{_e(org)}</b>" if org else "your personal account"
        body = f"""
<h1>Register tembo-dispatch on GitHub</h1>
<p>This server has no GitHub App yet. The button sends the App's description
(<code>app.yml</code>) to <code>{_e(settings.github_url)}</code>, where you name the App and
confirm. GitHub then sends you back here and the App's id, private key and webhook secret are
written to <code>{_e(settings.env_file)}</code> (readable by its owner only).</p>
{warning}
<form method="post" action="{_e(action)}" id="register-form">
<input type="hidden" name="manifest" value="{_e(json.dumps(manifest))}">
<button type="submit" id="register">Register the GitHub App for {where}</button>
</form>
<details><summary>Register it for an organisation instead</summary>
<form method="get" action="/setup"><label>Organisation
<input name="org" value="{_e(org or "")}" pattern="[A-Za-z0-9][A-Za-z0-9-]*"></label>
<button type="submit" class="secondary" id="use-org">Use this organisation</button></form>
</details>
<details><summary>What will be registered</summary>
<table>
<tr><th>Webhook URL</th><td><code id="hook-url">{_e(hook)}</code></td></tr>
<tr><th>Events</th><td>{_e(", ".join(manifest.get("default_events") or []))}</td></tr>
<tr><th>Permissions</th><td>{_e(permissions)}</td></tr>
</table>
<pre>{_e(json.dumps(manifest, indent=2))}</pre>
</details>
<p><small>tembo-dispatch {_e(__version__)}</small></p>
"""
        return _page("tembo-dispatch: setup", body)

    async def callback(request: Request) -> Response:
        reason = closed_because()
        if reason is not None:
            return _error(f"registration is closed: {reason}", 409)
        code = request.query_params.get("code", "")
        state = request.query_params.get("state", "")
        if not code:
            return _error("GitHub sent no code; start again from /setup", 400)
        if not take_state(state):
            return _error(
                "this registration was not started from this server's setup page, or it "
                "expired; start again from /setup",
                400,
            )
        async with exchange_lock:
            if closed_because() is not None:
                return _error("registration is closed: the App was just registered", 409)
            try:
                conversion = await exchange_code(get_runtime().http, settings, code)
                values = credentials(conversion)
                note = (
                    f"GitHub App {conversion.get('slug') or conversion.get('name')}, registered "
                    f"by tembo-dispatch setup on {_when(clock())}"
                )
                await asyncio.to_thread(write_env_file, settings.env_file, values, note)
            except SetupError as exc:
                log(logger, "setup.failed", logging.WARNING, error=exc.message)
                return _error(exc.message, exc.status_code)
            except OSError as exc:
                log(logger, "setup.failed", logging.ERROR, error=f"env file: {exc.strerror}")
                return _error(f"cannot write {settings.env_file}: {exc.strerror}", 500)
            name = str(conversion.get("name") or conversion.get("slug") or "the App")
            registered.update(
                name=name,
                slug=conversion.get("slug"),
                install_url=install_url(settings, conversion),
                page_url=app_page_url(settings, conversion),
            )
        log(
            logger,
            "setup.registered",
            app_id=values.get("APP_ID"),
            slug=registered["slug"],
            env_file=str(settings.env_file),
            written=sorted(values),
        )
        missing = [key for key in ENV_KEYS if key not in values]
        note_missing = (
            f'<p class="warn">GitHub did not return {_e(", ".join(missing))}; set '
            f"{'it' if len(missing) == 1 else 'them'} by hand from the App's settings page.</p>"
            if missing
            else ""
        )
        body = f"""
<h1>{_e(name)} is registered</h1>
<p id="written">Its credentials ({_e(", ".join(values))}) were written to
<code>{_e(settings.env_file)}</code> with mode 0600. They are not shown here.</p>
{note_missing}
<ol>
<li>Restart the server (<code>make serve</code>, or your service manager) so it reads them.</li>
<li><a class="button" id="install" href="{_e(registered["install_url"])}">Install {_e(name)}</a>
on the organisation or repositories it should serve.</li>
<li>Label an issue <code>tembo</code> or comment <code>/tembo</code> on one.</li>
</ol>
<p><small>App settings: <a href="{_e(registered["page_url"])}">{
            _e(registered["page_url"])
        }</a></small></p>
"""
        return _page("tembo-dispatch: registered", body)

    async def describe_app(runtime: RuntimeView) -> dict[str, Any] | None:
        if app_info:
            return app_info
        try:
            data = await asyncio.wait_for(
                runtime.github.app_request("GET", "/app"), APP_INFO_TIMEOUT
            )
        except Exception as exc:
            # Logged by name only: an exception's text could quote a request.
            log(logger, "status.app_unknown", logging.WARNING, error=type(exc).__name__)
            return None
        if isinstance(data, dict):
            app_info.update(
                name=data.get("name") or data.get("slug"),
                slug=data.get("slug"),
                page_url=app_page_url(settings, data),
            )
        return app_info or None

    async def status_page(request: Request) -> Response:
        runtime = get_runtime()
        app = await describe_app(runtime)
        try:
            stats = await runtime.store.stats()
            counts = await runtime.store.job_counts("delivery")
            usage = await runtime.store.usage(time.time() - 86400)  # the usage table: last day
        except Exception as exc:
            log(logger, "status.store_failed", logging.WARNING, error=type(exc).__name__)
            return _page(
                "tembo-dispatch: status",
                '<h1>tembo-dispatch</h1><p class="error">The store is not answering; '
                "see <a href=/readyz>/readyz</a> and the logs.</p>",
                503,
            )
        if app:
            app_cell = (
                f'<a href="{_e(app["page_url"])}" id="app-name">{_e(app["name"])}</a> '
                f"<small>(id {_e(settings.app_id)})</small>"
            )
        else:
            app_cell = (
                f'<span id="app-name">App {_e(settings.app_id)}</span> <small>(GitHub did not '
                "describe it; run <code>python -m bot check</code>)</small>"
            )
        jobs = "".join(
            f"<tr><th>{state}</th><td id='jobs-{state}'>{int(counts.get(state, 0))}</td></tr>"
            for state in ("queued", "running", "failed", "dead", "done")
        )
        rows = "".join(
            "<tr>"
            f"<td>{_e(_when(d.get('received_at')))}</td>"
            f"<td>{_e(d.get('event'))}{'.' + _e(d['action']) if d.get('action') else ''}</td>"
            f"<td>{_e(d.get('state') or 'not queued')}</td>"
            f"<td><small><code>{_e(d.get('delivery_id'))}</code></small></td>"
            "</tr>"
            for d in stats.get("recent_deliveries", [])
        )
        deliveries = (
            f"<table id='deliveries'><tr><th>received</th><th>event</th><th>job</th>"
            f"<th>delivery</th></tr>{rows}</table>"
            if rows
            else "<p id='deliveries'>None yet.</p>"
        )
        body = f"""
<h1>tembo-dispatch</h1>
<table>
<tr><th>App</th><td>{app_cell}</td></tr>
<tr><th>GitHub</th><td><code>{_e(settings.github_url)}</code></td></tr>
<tr><th>Installations seen</th><td id="installations">{int(stats.get("installations", 0))}
<small>({int(stats.get("repositories", 0))} repositories)</small></td></tr>
<tr><th>Default platform</th><td>{_e(settings.default_platform)}</td></tr>
</table>
<h2>Jobs</h2>
<table>{jobs}</table>
<h2>Last deliveries</h2>
{deliveries}
<h2>Usage, last day</h2>
{report.status_html(usage)}
<p><small><a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a> ·
<a href="/metrics">/metrics</a> · tembo-dispatch {_e(__version__)}</small></p>
"""
        return _page("tembo-dispatch: status", body)

    async def home(request: Request) -> Response:
        if settings.has_github_credentials:
            return await status_page(request)
        return await setup_page(request)

    return [
        Route("/", home, methods=["GET"]),
        Route("/setup", setup_page, methods=["GET"]),
        Route(CALLBACK_PATH, callback, methods=["GET"]),
    ]
