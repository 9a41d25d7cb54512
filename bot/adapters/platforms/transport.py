"""How every platform adapter sends a request and turns the answer into data or a
`PlatformError`: one place for timeouts, status classes, `Retry-After` and the
"was it carried out?" question of a lost answer."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, TypeVar

import httpx

from bot import __version__
from bot.ports import PlatformError, Session, is_transient_status
from bot.sanitize import code

T = TypeVar("T")
MEMORY = 1000  # dispatches an adapter remembers between attempts; the oldest go first

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def error_message(response: httpx.Response) -> str:
    """The platform's own words: `error`, `message` or `detail`, else the body's start."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(data, dict):
        said: list[str] = []
        for key in ("error", "message", "detail"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str) and value:
                said.append(value)
        # Fastify-style bodies put the reason phrase in `error` and the words in `message`.
        useful = [s for s in said if s.lower() != response.reason_phrase.lower()]
        if useful or said:
            return (useful or said)[0]
    return str(data)[:300]


# The words shown for a refused credential: never the platform's own, which may quote the
# key it refused (some APIs echo the Authorization header back).
CREDENTIAL_REFUSED = {
    401: "the API key was refused; check the platform's API key setting",
    403: "the API key may not do this; check the platform's API key and its scopes",
}
SHOWN = 300  # characters of a platform's own words shown on an issue


def error_for(
    platform: str, response: httpx.Response, explain: dict[int, str] | None = None
) -> PlatformError:
    """The `PlatformError` for a non-2xx answer, worded for a public issue comment.

    401 and 403 say only the status and which setting to fix. Other answers show the
    platform's words as one line of inert inline code, cut short: they may contain
    anything, including Markdown meant to render in our comment.
    """
    status = response.status_code
    reason = (explain or {}).get(status)
    if status in CREDENTIAL_REFUSED:
        message = f"{platform} answered {status} ({reason or CREDENTIAL_REFUSED[status]})"
    else:
        said = code(error_message(response), SHOWN)
        message = f"{platform} answered {status}: {said}" + (f" ({reason})" if reason else "")
    return PlatformError(
        message,
        status=status,
        transient=is_transient_status(status),
        retry_after=retry_after(response),
    )


def retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("retry-after")
    if not header:
        return None
    try:
        return max(float(header), 0.0)
    except ValueError:
        return None


async def send(
    http: httpx.AsyncClient,
    platform: str,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    json: Any = None,
    params: dict[str, Any] | None = None,
    explain: dict[int, str] | None = None,
    wait: httpx.Timeout = TIMEOUT,
) -> Any:
    """Send one request; return the decoded JSON body of a 2xx answer.

    `explain` maps a status to the sentence a maintainer should read for it.
    """
    try:
        response = await http.request(
            method,
            url,
            headers={"User-Agent": f"tembo-dispatch/{__version__}", **headers},
            json=json,
            params=params,
            timeout=wait,
        )
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        # Nothing reached the platform: safe to send again.
        raise PlatformError(
            f"could not reach {platform} ({type(exc).__name__})", transient=True
        ) from exc
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        # The request may have been received and acted on; only its answer was lost.
        raise PlatformError(
            f"{platform} did not answer in time ({type(exc).__name__})",
            transient=True,
            ambiguous=method != "GET",
        ) from exc
    status = response.status_code
    if status < 300:
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise PlatformError(
                f"{platform} answered {status} with a body that is not JSON",
                status=status,
                transient=True,
                ambiguous=method != "GET",
            ) from None
    raise error_for(platform, response, explain)


def remember(memory: OrderedDict[str, T], key: str, value: T) -> None:
    """Keep `value` under `key` in a bounded, oldest-first-out memory."""
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > MEMORY:
        memory.popitem(last=False)


def session_from(data: Any, platform: str, url_template: str) -> Session:
    """A `Session` from an answer carrying `id` (and maybe `status`); the link is
    `url_template` with `{id}`. An answer without an id may hide a created session."""
    if not isinstance(data, dict) or not data.get("id"):
        raise PlatformError(
            f"{platform} answered without a session id", transient=True, ambiguous=True
        )
    session_id = str(data["id"])
    return Session(
        id=session_id,
        url=url_template.format(id=session_id),
        status=str(data.get("status") or ""),
    )


async def probe_read(
    http: httpx.AsyncClient,
    platform: str,
    base_url: str,
    path: str,
    *,
    headers: dict[str, str],
    params: dict[str, Any],
    variable: str,
    base_variable: str,
    fix: str,
) -> tuple[bool, str]:
    """`python -m bot check` for a platform: one read-only request that needs the same
    credentials as a create, told as `(ok, one line)`. Never raises for a wrong setting."""
    try:
        await send(http, platform, "GET", f"{base_url}{path}", headers=headers, params=params)
    except PlatformError as exc:
        if exc.status is None:
            return False, f"{base_variable} {base_url} cannot be reached ({exc.message})"
        if exc.status in (401, 403):
            return False, f"{variable} was refused by {base_url} ({exc.status}): {fix}"
        if exc.status == 404:
            return False, (
                f"{base_variable} {base_url} has no GET {path} (404): check {base_variable}"
            )
        return False, (
            f"{platform} answered {exc.status} to GET {path}; the key could not be verified, "
            "try again later"
        )
    return True, f"{variable} accepted by {base_url} (GET {path})"
