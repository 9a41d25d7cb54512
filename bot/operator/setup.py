"""Registering the GitHub App from this server (the manifest flow), for its operator only.

Owns `/setup` and `/setup/callback` (and `/` while there are no credentials). The flow:

1. At start, `python -m bot serve` prints `Open http://localhost:PORT/setup?token=…` on its
   console (as Jupyter does). The token is random per process and compared in constant
   time; opening that link trades it for an HttpOnly, SameSite=Lax cookie naming a
   server-side session, and redirects to `/setup` so the token leaves the address bar.
2. `/setup`, with that cookie, offers one button posting the manifest from `app.yml` to
   `{GITHUB_URL}/settings/apps/new?state=…`; the `state` belongs to that session.
3. GitHub sends the browser to `/setup/callback?code=…&state=…`. Without the cookie, or
   with a state that is not the cookie's, nothing happens (403). Otherwise the code is
   exchanged through `GitHubClient.convert_manifest` and the App's credentials are written
   to the env file, mode 0600.

The manifest's URLs are built from the `Host` header only when it is loopback, `HOST`, or
the host of `PUBLIC_URL`/`WEBHOOK_PROXY_URL`. Registration closes as soon as any GitHub
credential is set, in the settings or in the env file. This module never puts a secret in a
log line or a page (the setup token is shown only on the console and in the log), and it
does not change the running process's settings: the new credentials take effect when the
server starts again and reads the env file.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

import yaml
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot import __version__
from bot.adapters.github import GitHubClient
from bot.logs import log
from bot.operator.access import is_loopback_address, same_secret
from bot.operator.html import e, page
from bot.ports import GitHubError
from bot.settings import Settings, read_env_file

logger = logging.getLogger("bot.operator.setup")

PACKAGED_MANIFEST = Path(__file__).resolve().parents[2] / "app.yml"
SETUP_PATH = "/setup"
CALLBACK_PATH = "/setup/callback"
COOKIE = "tembo_setup"
# What the conversion gives and the env file receives, in this order.
ENV_KEYS = ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET")
# Any of these, in the settings or the env file, means an App is (being) configured.
CREDENTIAL_KEYS = ("APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET")
STATE_TTL = 3600.0  # GitHub's manifest codes live an hour; so does our side of the handshake
SESSION_TTL = 24 * 3600.0
# Only token holders create sessions and states, so these bound the operator's own tabs.
MAX_SESSIONS = 8
MAX_STATES = 32
_ORG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
# Characters that some env-file reader (shell, systemd, compose) would interpret.
_UNSAFE = re.compile(r"[\"'\\$`\x00-\x09\x0b-\x1f\x7f]")
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")  # noqa: S104 - names, not a bind


def new_setup_token() -> str:
    return secrets.token_urlsafe(32)


def registration_closed_because(settings: Settings) -> str | None:
    """Why registering an App from this server is not possible, or None when it is."""
    if settings.app_id or settings.private_key or settings.webhook_secrets:
        return "this server already has GitHub App credentials"
    written = read_env_file(settings.env_file)
    found = [key for key in CREDENTIAL_KEYS if written.get(key)]
    if found:
        return (
            f"{settings.env_file} already holds {', '.join(found)} but this server was "
            "started without it: restart it so it reads that file, or remove those lines "
            "to register a new App"
        )
    return None


def setup_urls(settings: Settings, token: str) -> list[str]:
    """Where the operator opens the setup page: this machine, and PUBLIC_URL if set."""
    query = urlencode({"token": token})
    host = settings.host
    if host in _WILDCARD_HOSTS or is_loopback_address(host) or host == "localhost":
        local = f"http://localhost:{settings.port}"
    else:
        local = f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"
    urls = [f"{local}{SETUP_PATH}?{query}"]
    if settings.public_url:
        urls.append(f"{settings.public_url}{SETUP_PATH}?{query}")
    return urls


class SetupError(Exception):
    """The registration cannot go on; `message` is shown to the operator as is."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


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


async def exchange_code(github: GitHubClient, settings: Settings, code: str) -> dict[str, Any]:
    """Trade the manifest code for the App's id, key and secrets (the code works once)."""
    if not _CODE.match(code):
        raise SetupError("the code GitHub sent back is malformed; start again from /setup")
    try:
        data = await github.convert_manifest(code)
    except GitHubError as exc:
        if exc.status is None:
            raise SetupError(
                f"could not reach GitHub at {settings.github_api_url}; "
                "check GITHUB_API_URL and start again from /setup",
                502,
            ) from None
        hint = (
            "the code was already used or has expired (they last an hour)"
            if exc.status in (404, 422)
            else "see GitHub's answer"
        )
        raise SetupError(
            f"the code exchange failed: {exc.message} ({hint}); start again from /setup", 502
        ) from None
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
# Who is asking, and from where


def _authority(host_header: str) -> tuple[str, int | None] | None:
    """(hostname, port) of a Host header; None when it is not a plain host[:port]."""
    if not re.fullmatch(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?", host_header):
        return None
    parts = urlsplit(f"//{host_header}")
    try:
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return None


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def trusted_origin(request: Request, settings: Settings) -> str | None:
    """The origin to build the manifest's URLs from, or None when the `Host` header is
    not one this server knows as its own (loopback, `HOST`, PUBLIC_URL, WEBHOOK_PROXY_URL):
    a forged Host must not end up as the App's webhook or redirect URL."""
    host_header = request.headers.get("host", "")
    authority = _authority(host_header)
    if authority is None:
        return None
    name, port = authority
    for configured in (settings.public_url, settings.webhook_proxy_url):
        if not configured:
            continue
        parts = urlsplit(configured)
        ours = parts.port or _default_port(parts.scheme)
        if name == (parts.hostname or "").lower() and (port or _default_port(parts.scheme)) == ours:
            if configured == settings.public_url:
                return configured.rstrip("/")
            return f"{parts.scheme}://{parts.netloc}"
    bound = settings.host.strip("[]").lower()
    if (
        name == "localhost"
        or is_loopback_address(name)
        or (bound not in _WILDCARD_HOSTS and name.strip("[]") == bound)
    ):
        return f"{request.url.scheme}://{host_header.lower()}"
    return None


# ---------------------------------------------------------------------------
# Pages


def _error(message: str, status_code: int) -> Response:
    body = (
        "<h1>Registration stopped</h1>"
        f'<p class="error" id="error">{e(message)}</p>'
        f'<p><a href="{SETUP_PATH}">Back to the setup page</a></p>'
    )
    return page("tembo-dispatch: setup", body, status_code)


def _token_needed(wrong: bool) -> Response:
    said = (
        "That is not this server's setup token (it changes each time the server starts). "
        if wrong
        else ""
    )
    body = f"""
<h1>Registration needs the setup token</h1>
<p id="token-needed">{said}This server has no GitHub App yet, and only the person who started
it may register one. Open the link it printed on its console when it started, the line
<code>Open http://localhost:PORT/setup?token=…</code> in the output of
<code>python -m bot serve</code> (<code>make serve</code>). It is also in the server's log
(event <code>setup.token</code>: <code>journalctl -u tembo-dispatch</code>,
<code>docker compose logs app</code>, <code>kubectl logs</code>). The token is not shown
here.</p>
"""
    return page("tembo-dispatch: setup", body, 403)


def _unknown_host(request: Request) -> Response:
    host = request.headers.get("host", "")
    body = f"""
<h1>Registration stopped</h1>
<p class="error" id="error">This server builds the App's webhook and callback addresses from
the address you opened, and it does not know <code>{e(host[:200])}</code> as its own. Open
it at <code>http://localhost:PORT/setup</code> on its own machine, or set
<code>PUBLIC_URL</code> to the address you use (for example
<code>PUBLIC_URL=https://{e(host[:200] or "tembo.example.com")}</code>) and restart it.</p>
"""
    return page("tembo-dispatch: setup", body, 400)


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


class RuntimeView(Protocol):
    """The part of `app.Runtime` the setup flow uses."""

    @property
    def github(self) -> GitHubClient: ...


@dataclass
class _Registered:
    name: str
    slug: str | None
    install_url: str
    page_url: str


class SetupFlow:
    """The manifest flow's server side: sessions (one per browser that showed the setup
    token), the states each has sent to GitHub, and the pages."""

    def __init__(
        self,
        settings: Settings,
        get_runtime: Callable[[], RuntimeView],
        token: str,
        *,
        manifest_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._get_runtime = get_runtime
        self._token = token
        self._manifest_file = manifest_file
        self._clock = clock
        self._sessions: dict[str, float] = {}  # cookie value -> when the token was shown
        self._states: dict[str, tuple[str, float]] = {}  # state -> (session, when)
        self._lock = asyncio.Lock()
        self.registered: _Registered | None = None

    # -- sessions and states ----------------------------------------------------

    def _new_session(self) -> str:
        now = self._clock()
        for key, at in list(self._sessions.items()):
            if now - at > SESSION_TTL:
                del self._sessions[key]
        while len(self._sessions) >= MAX_SESSIONS:
            self._drop_session(next(iter(self._sessions)))
        session = secrets.token_urlsafe(32)
        self._sessions[session] = now
        return session

    def _drop_session(self, session: str) -> None:
        self._sessions.pop(session, None)
        for state, (owner, _) in list(self._states.items()):
            if owner == session:
                del self._states[state]

    def _session(self, request: Request) -> str | None:
        """The request's session, if its cookie names a live one."""
        given = request.cookies.get(COOKIE, "")
        for session, at in self._sessions.items():
            if same_secret(given, session):
                return session if self._clock() - at <= SESSION_TTL else None
        return None

    def _issue_state(self, session: str) -> str:
        now = self._clock()
        for key, (_, at) in list(self._states.items()):
            if now - at > STATE_TTL:
                del self._states[key]
        while len(self._states) >= MAX_STATES:
            del self._states[next(iter(self._states))]
        state = secrets.token_urlsafe(24)
        self._states[state] = (session, now)
        return state

    def _take_state(self, state: str, session: str) -> bool:
        """One use: the state must be this session's and fresh."""
        found = self._states.get(state)
        if found is None or not same_secret(found[0], session):
            return False
        del self._states[state]
        return self._clock() - found[1] <= STATE_TTL

    def closed_because(self) -> str | None:
        if self.registered is not None:
            return f"the App {self.registered.name} was just registered"
        return registration_closed_because(self.settings)

    # -- routes -----------------------------------------------------------------

    async def setup_page(self, request: Request) -> Response:
        reason = self.closed_because()
        if reason is not None:
            return self._closed_page(request, reason)
        origin = trusted_origin(request, self.settings)
        if origin is None:
            log(logger, "setup.refused", logging.WARNING, reason="unknown host")
            return _unknown_host(request)
        org = request.query_params.get("org", "").strip() or None
        if org is not None and not _ORG.match(org):
            return _error(f"{org!r} is not a GitHub organisation name", 400)
        token = request.query_params.get("token")
        if token is not None:
            if not same_secret(token, self._token):
                log(logger, "setup.refused", logging.WARNING, reason="wrong setup token")
                return _token_needed(wrong=True)
            # The token leaves the address bar (and history) at once; the cookie stays.
            target = f"{origin}{SETUP_PATH}" + (f"?{urlencode({'org': org})}" if org else "")
            response = RedirectResponse(target, status_code=303)
            response.headers["Cache-Control"] = "no-store"
            response.headers["Referrer-Policy"] = "no-referrer"
            response.set_cookie(
                COOKIE,
                self._new_session(),
                path="/",
                httponly=True,
                # Lax, not Strict: GitHub's redirect back to the callback is a cross-site
                # top-level navigation, which must carry the cookie.
                samesite="lax",
                secure=origin.startswith("https://"),
            )
            log(logger, "setup.session_started")
            return response
        session = self._session(request)
        if session is None:
            return _token_needed(wrong=False)
        try:
            template = await asyncio.to_thread(load_manifest, self._manifest_file)
        except SetupError as exc:
            return _error(exc.message, exc.status_code)
        return self._form(origin, build_manifest(template, self.settings, origin), org, session)

    def _closed_page(self, request: Request, reason: str) -> Response:
        body = (
            "<h1>tembo-dispatch is registered</h1>"
            f'<p id="closed">Registration is closed: {e(reason)}.</p>'
        )
        # Only the browser that registered it is shown where to install it.
        if self.registered is not None and self._session(request) is not None:
            body += (
                f'<p><a class="button" id="install" href="{e(self.registered.install_url)}">'
                f"Install {e(self.registered.name)}</a></p>"
            )
        body += '<p><a href="/">Status</a></p>'
        return page("tembo-dispatch: setup", body)

    def _form(
        self, origin: str, manifest: dict[str, Any], org: str | None, session: str
    ) -> Response:
        settings = self.settings
        action = registration_url(settings, self._issue_state(session), org)
        hook = manifest["hook_attributes"]["url"]
        warning = ""
        if _unreachable_from_github(settings, hook):
            warning = (
                '<p class="warn" id="warning">GitHub.com cannot deliver webhooks to '
                f"<code>{e(hook)}</code>. Set <code>WEBHOOK_PROXY_URL</code> to a public URL "
                "that forwards to this server (a tunnel, or a smee.io channel with its client) "
                "and restart before registering, or change the webhook URL in the App's "
                "settings afterwards.</p>"
            )
        permissions = ", ".join(
            f"{key}: {value}" for key, value in (manifest.get("default_permissions") or {}).items()
        )
        where = f"the organisation <b>{e(org)}</b>" if org else "your personal account"
        body = f"""
<h1>Register tembo-dispatch on GitHub</h1>
<p>This server has no GitHub App yet. The button sends the App's description
(<code>app.yml</code>) to <code>{e(settings.github_url)}</code>, where you name the App and
confirm. GitHub then sends you back here and the App's id, private key and webhook secret are
written to <code>{e(settings.env_file)}</code> (readable by its owner only).</p>
{warning}
<form method="post" action="{e(action)}" id="register-form">
<input type="hidden" name="manifest" value="{e(json.dumps(manifest))}">
<button type="submit" id="register">Register the GitHub App for {where}</button>
</form>
<details><summary>Register it for an organisation instead</summary>
<form method="get" action="{e(origin)}{SETUP_PATH}"><label>Organisation
<input name="org" value="{e(org or "")}" pattern="[A-Za-z0-9][A-Za-z0-9-]*"></label>
<button type="submit" class="secondary" id="use-org">Use this organisation</button></form>
</details>
<details><summary>What will be registered</summary>
<table>
<tr><th>Webhook URL</th><td><code id="hook-url">{e(hook)}</code></td></tr>
<tr><th>Events</th><td>{e(", ".join(manifest.get("default_events") or []))}</td></tr>
<tr><th>Permissions</th><td>{e(permissions)}</td></tr>
</table>
<pre>{e(json.dumps(manifest, indent=2))}</pre>
</details>
<p><small>tembo-dispatch {e(__version__)}</small></p>
"""
        return page("tembo-dispatch: setup", body)

    async def callback(self, request: Request) -> Response:
        reason = self.closed_because()
        if reason is not None:
            return _error(f"registration is closed: {reason}", 409)
        if trusted_origin(request, self.settings) is None:
            return _unknown_host(request)
        session = self._session(request)
        if session is None:
            log(logger, "setup.refused", logging.WARNING, reason="callback without session")
            return _error(
                "this browser has not opened the setup page with the setup token; open the "
                "link the server printed on its console and start again from there",
                403,
            )
        code = request.query_params.get("code", "")
        state = request.query_params.get("state", "")
        if not self._take_state(state, session):
            log(logger, "setup.refused", logging.WARNING, reason="unknown state")
            return _error(
                "this registration was not started from this browser's setup page, or it "
                "expired; start again from /setup",
                403,
            )
        if not code:
            return _error("GitHub sent no code; start again from /setup", 400)
        async with self._lock:
            if self.closed_because() is not None:
                return _error("registration is closed: the App was just registered", 409)
            settings = self.settings
            try:
                conversion = await exchange_code(self._get_runtime().github, settings, code)
                values = credentials(conversion)
                note = (
                    f"GitHub App {conversion.get('slug') or conversion.get('name')}, registered "
                    f"by tembo-dispatch setup on {_when(self._clock())}"
                )
                await asyncio.to_thread(write_env_file, settings.env_file, values, note)
            except SetupError as exc:
                log(logger, "setup.failed", logging.WARNING, error=exc.message)
                return _error(exc.message, exc.status_code)
            except OSError as exc:
                log(logger, "setup.failed", logging.ERROR, error=f"env file: {exc.strerror}")
                return _error(f"cannot write {settings.env_file}: {exc.strerror}", 500)
            name = str(conversion.get("name") or conversion.get("slug") or "the App")
            registered = _Registered(
                name=name,
                slug=conversion.get("slug"),
                install_url=install_url(settings, conversion),
                page_url=app_page_url(settings, conversion),
            )
            self.registered = registered
            self._states.clear()
        log(
            logger,
            "setup.registered",
            app_id=values.get("APP_ID"),
            slug=registered.slug,
            env_file=str(settings.env_file),
            written=sorted(values),
        )
        missing = [key for key in ENV_KEYS if key not in values]
        note_missing = (
            f'<p class="warn">GitHub did not return {e(", ".join(missing))}; set '
            f"{'it' if len(missing) == 1 else 'them'} by hand from the App's settings page.</p>"
            if missing
            else ""
        )
        body = f"""
<h1>{e(name)} is registered</h1>
<p id="written">Its credentials ({e(", ".join(values))}) were written to
<code>{e(settings.env_file)}</code> with mode 0600. They are not shown here.</p>
{note_missing}
<ol>
<li>Restart the server (<code>make serve</code>, or your service manager) so it reads them.</li>
<li><a class="button" id="install" href="{e(registered.install_url)}">Install {e(name)}</a>
on the organisation or repositories it should serve.</li>
<li>Label an issue <code>tembo</code> or comment <code>/tembo</code> on one.</li>
</ol>
<p><small>App settings: <a href="{e(registered.page_url)}">{e(registered.page_url)}</a></small></p>
"""
        return page("tembo-dispatch: registered", body)
