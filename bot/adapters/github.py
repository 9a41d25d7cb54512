"""GitHub's REST API for the App: JWT, installation tokens, the calls the worker makes.

Owns authentication, caching (tokens until shortly before they expire, config files by
ETag, permissions for a few minutes, the App's bot login), taking each content-creating
call's slot in GitHub's content budget (`bot.budget_queue`), watching the primary limit, and
mapping HTTP answers to `GitHubError`. Every comment body it sends passes the secret
scrubber first. It decides nothing about issues.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import jwt

from bot import __version__, logs
from bot.budget import budget_key, parked
from bot.budget_queue import Budget
from bot.events import Comment, User, comment_from
from bot.logs import Scrubber
from bot.ports import BudgetShort, GitHubError, Priority, is_transient_status
from bot.primary_limit import PrimaryLimit
from bot.settings import Settings

if TYPE_CHECKING:
    pass

API_VERSION = "2022-11-28"
TOKEN_REFRESH_MARGIN = 5 * 60  # renew an installation token this long before it expires
CONFIG_TTL = 60.0  # a changed .github/tembo.yml is seen within a minute
PERMISSION_TTL = 300.0
MAX_COMMENT_PAGES = 10
# A content call refused for a secondary limit is tried again this often (each time after
# the pause GitHub asked for) before the job's own retry takes over.
LIMITED_TRIES = 3
CONTENT_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def app_jwt(app_id: str, private_key: str, now: float | None = None) -> str:
    """The App's JSON Web Token: RS256, issued 60 s ago against clock drift, valid 9 minutes."""
    now = int(time.time() if now is None else now)
    claims = {"iat": now - 60, "exp": now + 9 * 60, "iss": app_id}
    return jwt.encode(claims, private_key, algorithm="RS256")


def _retry_after(response: httpx.Response, now: float) -> float | None:
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(float(header), 0.0)
        except ValueError:
            return None
    if response.headers.get("x-ratelimit-remaining") == "0":
        reset = response.headers.get("x-ratelimit-reset")
        if reset and reset.isdigit():
            return max(float(reset) - now, 1.0)
    return None


def secondary_limit(error: GitHubError) -> bool:
    """A 403/429 that is a rate limit, and not the primary one (which is per installation
    and says x-ratelimit-remaining: 0): it pauses the whole content budget."""
    return error.status in (403, 429) and error.retry_after is not None and not error.primary


def error_for(response: httpx.Response, now: float | None = None) -> GitHubError:
    now = time.time() if now is None else now
    try:
        message = str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        message = response.text[:200]
    status = response.status_code
    retry_after = _retry_after(response, now)
    # A 403 is a rate limit when GitHub says so; otherwise it is a missing permission.
    limited = status == 403 and (retry_after is not None or "rate limit" in message.lower())
    if (limited or status == 429) and retry_after is None:
        retry_after = 60.0  # GitHub's advice for secondary limits without a Retry-After
    transient = limited or is_transient_status(status)
    error = GitHubError(
        f"GitHub answered {status}: {message or response.reason_phrase}",
        status=status,
        transient=transient,
        retry_after=retry_after,
    )
    headers = response.headers
    error.primary = headers.get("x-ratelimit-remaining") == "0" and "retry-after" not in headers
    return error


@dataclass
class _Cached:
    value: Any
    at: float
    etag: str | None = None


class GitHubClient:
    """Implements `ports.GitHub` with httpx. Created once per process, shared by workers."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        *,
        budget: Budget | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base = settings.github_api_url
        self._app_id = settings.app_id
        self._key = settings.private_key.reveal() if settings.private_key else None
        self._http = http
        self._clock = clock
        self._sleep = sleep  # waits for GitHub's limits; tests move a hand clock instead
        self._tokens: dict[int, _Cached] = {}
        self._token_locks: dict[int, asyncio.Lock] = {}
        self._files: dict[tuple[int, str, str], _Cached] = {}
        self._permissions: dict[tuple[str, str], _Cached] = {}
        self._app_login: str | None = None
        # Comments are public: whatever reaches one is scrubbed of every secret the
        # process knows, including tokens it minted itself.
        self.scrub = Scrubber(settings.secrets())
        # None: no budget at all (tests that are not about it).
        self.budget = budget
        self._scope = settings.github_content_scope
        self.primary = PrimaryLimit()
        # Until when GitHub's last secondary-limit answer asked this process to wait. Reads
        # wait for it too (GitHub's docs: no new request before then); content calls wait
        # on the budget's pause in the store, which every replica shares.
        self.secondary_until = 0.0

    # -- authentication -------------------------------------------------------

    def jwt(self) -> str:
        if not self._app_id or not self._key:
            raise GitHubError("APP_ID and PRIVATE_KEY must be set to talk to GitHub")
        token = app_jwt(self._app_id, self._key, self._clock())
        self._minted(token)
        return token

    def _minted(self, secret: str) -> None:
        self.scrub.add(secret)
        logs.remember_secret(secret)

    async def installation_token(self, installation_id: int) -> str:
        cached = self._tokens.get(installation_id)
        if cached and cached.value[1] - TOKEN_REFRESH_MARGIN > self._clock():
            return str(cached.value[0])
        lock = self._token_locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(installation_id)
            if cached and cached.value[1] - TOKEN_REFRESH_MARGIN > self._clock():
                return str(cached.value[0])
            data = await self.app_request(
                "POST", f"/app/installations/{installation_id}/access_tokens"
            )
            token = str(data["token"])
            self._minted(token)
            expires_at = _parse_time(str(data.get("expires_at", ""))) or self._clock() + 3600
            self._tokens[installation_id] = _Cached((token, expires_at), self._clock())
            return token

    # -- transport ------------------------------------------------------------

    def _headers(self, auth: str | None) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"tembo-dispatch/{__version__}",
        }
        if auth is not None:
            headers["Authorization"] = auth
        return headers

    async def _send(
        self,
        method: str,
        path: str,
        auth: str | None,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        installation_id: int | None = None,
    ) -> httpx.Response:
        url = path if path.startswith("http") else f"{self.base}{path}"
        try:
            response = await self._http.request(
                method,
                url,
                json=json,
                params=params,
                headers={**self._headers(auth), **(headers or {})},
            )
        except httpx.TimeoutException as exc:
            raise GitHubError(
                f"GitHub did not answer {method} {path} in time",
                transient=True,
                ambiguous=method != "GET",
            ) from exc
        except httpx.TransportError as exc:
            raise GitHubError(
                f"could not reach GitHub at {self.base}: {type(exc).__name__}",
                transient=True,
                ambiguous=method != "GET",
            ) from exc
        if installation_id is not None:
            self.primary.observe(installation_id, response.headers, self._clock())
        if response.status_code >= 400 and response.status_code != 404:
            raise error_for(response, self._clock())
        return response

    async def meta(self) -> Any:
        """`GET /meta` without credentials: whether GITHUB_API_URL is GitHub's REST API.
        Raises `GitHubError` (404 included; no status when unreachable)."""
        response = await self._send("GET", "/meta", None)
        if response.status_code == 404:
            raise error_for(response, self._clock())
        return response.json() if response.content else None

    async def app_response(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call authenticated as the App itself (JWT); the whole response, for paging."""
        response = await self._send(method, path, f"Bearer {self.jwt()}", **kwargs)
        if response.status_code == 404:
            raise error_for(response, self._clock())
        return response

    async def app_request(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call authenticated as the App itself (JWT); the decoded body."""
        response = await self.app_response(method, path, **kwargs)
        return response.json() if response.content else None

    async def convert_manifest(self, code: str) -> Any:
        """`POST /app-manifests/{code}/conversions`: the manifest flow's code for the new
        App's id, key and secrets. No authentication; a code works once, for an hour."""
        response = await self._send(
            "POST", f"/app-manifests/{quote(code, safe='')}/conversions", None
        )
        if response.status_code == 404:
            raise error_for(response, self._clock())
        return response.json() if response.content else None

    async def _request(
        self,
        installation_id: int,
        method: str,
        path: str,
        *,
        priority: Priority = Priority.REPLY,
        wait: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        token = await self.installation_token(installation_id)
        content = method in CONTENT_METHODS and self.budget is not None
        key = budget_key(self._scope, self._app_id, installation_id)
        for attempt in range(1, LIMITED_TRIES + 1):
            await self._primary_wait(installation_id, secondary=not content)
            if content and self.budget is not None:
                await self.budget.take(key, priority, wait=wait)
            try:
                return await self._send(
                    method, path, f"token {token}", installation_id=installation_id, **kwargs
                )
            except GitHubError as exc:
                if exc.status == 401:
                    # The token was revoked or the installation changed: fetch a new one.
                    self._tokens.pop(installation_id, None)
                    exc.transient = True
                if secondary_limit(exc):
                    assert exc.retry_after is not None
                    until = self._clock() + exc.retry_after
                    self.secondary_until = max(self.secondary_until, until)
                if not (content and self.budget is not None and secondary_limit(exc)):
                    raise
                # Every caller of every replica stops until GitHub's pause ends.
                assert exc.retry_after is not None
                await self.budget.pause(key, exc.retry_after)
                if not wait:
                    raise BudgetShort(self._clock() + exc.retry_after) from exc
                if attempt == LIMITED_TRIES:
                    raise
        raise AssertionError("unreachable")

    async def _primary_wait(self, installation_id: int, *, secondary: bool) -> None:
        """Wait out the installation's primary limit and, with `secondary`, this process's
        last secondary-limit pause (content calls wait for that in the budget instead)."""
        now = self._clock()
        delay = self.primary.delay(installation_id, now)
        if secondary:
            delay = max(delay, self.secondary_until - now)
        if delay > 0:
            async with parked():
                await self._sleep(delay)

    async def _json(self, installation_id: int, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(installation_id, method, path, **kwargs)
        if response.status_code == 404:
            raise error_for(response, self._clock())
        return response.json() if response.content else None

    # -- ports.GitHub ---------------------------------------------------------

    async def create_reaction(
        self,
        installation_id: int,
        repo: str,
        *,
        content: str,
        issue: int | None = None,
        comment_id: int | None = None,
        priority: Priority = Priority.REPLY,
        wait: bool = True,
    ) -> None:
        if comment_id is not None:
            path = f"/repos/{repo}/issues/comments/{comment_id}/reactions"
        else:
            path = f"/repos/{repo}/issues/{issue}/reactions"
        await self._json(
            installation_id, "POST", path, json={"content": content}, priority=priority, wait=wait
        )

    async def create_comment(
        self,
        installation_id: int,
        repo: str,
        issue: int,
        body: str,
        *,
        priority: Priority = Priority.REPLY,
    ) -> int:
        data = await self._json(
            installation_id,
            "POST",
            f"/repos/{repo}/issues/{issue}/comments",
            json={"body": self.scrub(body)},
            priority=priority,
        )
        return int(data["id"])

    async def update_comment(
        self,
        installation_id: int,
        repo: str,
        comment_id: int,
        body: str,
        *,
        priority: Priority = Priority.REPLY,
        wait: bool = True,
    ) -> None:
        await self._json(
            installation_id,
            "PATCH",
            f"/repos/{repo}/issues/comments/{comment_id}",
            json={"body": self.scrub(body)},
            priority=priority,
            wait=wait,
        )

    async def list_comments(self, installation_id: int, repo: str, issue: int) -> list[Comment]:
        comments: list[Comment] = []
        url: str | None = f"/repos/{repo}/issues/{issue}/comments"
        params: dict[str, Any] | None = {"per_page": 100}
        for _ in range(MAX_COMMENT_PAGES):
            if url is None:
                break
            response = await self._request(installation_id, "GET", url, params=params)
            if response.status_code == 404:
                return comments
            for raw in response.json():
                user = raw.get("user") or {}
                author = User(
                    login=str(user.get("login", "ghost")), type=str(user.get("type", "User"))
                )
                comment = comment_from(raw, author) if isinstance(raw, dict) else None
                if comment is not None:
                    comments.append(comment)
            url = response.links.get("next", {}).get("url")
            params = None
        return comments

    async def app_login(self) -> str:
        """The App's bot user, `<slug>[bot]`: the author of every comment the App writes.
        `GET /app` (JWT) gives the slug; it never changes, so it is asked once."""
        if self._app_login is None:
            data = await self.app_request("GET", "/app")
            self._app_login = f"{data['slug']}[bot]"
        return self._app_login

    async def permission(self, installation_id: int, repo: str, login: str) -> str:
        key = (repo, login)
        cached = self._permissions.get(key)
        if cached and self._clock() - cached.at < PERMISSION_TTL:
            return str(cached.value)
        response = await self._request(
            installation_id, "GET", f"/repos/{repo}/collaborators/{quote(login)}/permission"
        )
        if response.status_code == 404:
            role = "none"
        else:
            data = response.json()
            # role_name distinguishes triage and maintain, which `permission` folds away.
            role = str(data.get("role_name") or data.get("permission") or "none")
        self._permissions[key] = _Cached(role, self._clock())
        return role

    async def read_file(self, installation_id: int, repo: str, path: str) -> str | None:
        key = (installation_id, repo, path)
        cached = self._files.get(key)
        if cached and self._clock() - cached.at < CONFIG_TTL:
            return cached.value  # type: ignore[no-any-return]
        headers = {"Accept": "application/vnd.github.raw+json"}
        if cached and cached.etag:
            headers["If-None-Match"] = cached.etag
        response = await self._request(
            installation_id, "GET", f"/repos/{repo}/contents/{path}", headers=headers
        )
        if response.status_code == 304 and cached:
            cached.at = self._clock()
            return cached.value  # type: ignore[no-any-return]
        text = None if response.status_code == 404 else response.text
        self._files[key] = _Cached(text, self._clock(), response.headers.get("etag"))
        return text


def _parse_time(value: str) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
