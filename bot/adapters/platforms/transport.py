"""How every platform adapter sends a request and turns the answer into data or a
`PlatformError`: one place for timeouts, status classes, `Retry-After` and the
"was it carried out?" question of a lost answer.

An adapter holds one `Api` (its label, base URL and headers) and says only the method,
path and body of each call; `state` reduces a platform's status word to a `SessionState`
through the adapter's table of phases; `follow_explain` words the refusals of a call on
one session. Adapters never read an `httpx.Response` themselves."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import httpx

from bot import __version__
from bot.events import dig
from bot.ports import Phase, PlatformError, Session, SessionState, is_transient_status
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


def with_agent(headers: Mapping[str, str]) -> dict[str, str]:
    """The adapter's headers, with our User-Agent under them."""
    return {"User-Agent": f"tembo-dispatch/{__version__}", **headers}


@contextlib.contextmanager
def reaching(platform: str, *, ambiguous: bool) -> Iterator[None]:
    """Turn a failure to exchange a request with `platform` into a transient
    `PlatformError`. `ambiguous`: the request, if it arrived, changes something."""
    try:
        yield
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
            ambiguous=ambiguous,
        ) from exc


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
    with reaching(platform, ambiguous=method != "GET"):
        response = await http.request(
            method,
            url,
            headers=with_agent(headers),
            json=json,
            params=params,
            timeout=wait,
        )
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


async def ours_on_conflict(create: Awaitable[T], find: Callable[[], Awaitable[T | None]]) -> T:
    """A create that names its own id (derived from the dispatch): 409, that id is taken,
    means an earlier send of ours made it if `find` reads it back. Anything else, and a
    409 `find` cannot explain, is raised as it came."""
    try:
        return await create
    except PlatformError as exc:
        if exc.status != 409:
            raise
        found = await find()
        if found is None:
            raise
        return found


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


class Api:
    """One platform's HTTP API as an adapter sees it: calls by path with its credentials
    (`headers`; JSON is asked for), answers as JSON or a `PlatformError` (see `send`)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        label: str,
        base_url: str,
        headers: Mapping[str, str],
    ) -> None:
        self.http = http
        self.label = label
        self.base_url = base_url.rstrip("/")
        self.headers = {**headers, "Accept": "application/json"}

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        explain: dict[int, str] | None = None,
        wait: httpx.Timeout = TIMEOUT,
    ) -> Any:
        return await send(
            self.http,
            self.label,
            method,
            self.url(path),
            headers=self.headers,
            json=json,
            params=params,
            explain=explain,
            wait=wait,
        )

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Any:
        return await self.call("POST", path, **kwargs)

    async def read(
        self,
        path: str,
        explain: dict[int, str],
        *,
        inside: str | None = None,
        carrying: str | None = "id",
        what: str = "session",
        **kwargs: Any,
    ) -> dict[str, Any]:
        """GET the object at `path` (under `inside` in the answer, if given), which must
        carry `carrying` (if given); an answer without it is a passing fault, tried again."""
        data = await self.get(path, explain=explain, **kwargs)
        found = dig(data, inside) if inside else data
        if not isinstance(found, dict) or (carrying and not found.get(carrying)):
            raise PlatformError(
                f"{self.label} answered a {what} read with no {what}", transient=True
            )
        return found

    async def lookup(self, path: str, *, params: dict[str, Any] | None = None) -> Any:
        """A read for reconciling a lost answer; None when the platform refuses it for
        good (a key that may create but not read must still create: the worker then
        sends again, which may duplicate)."""
        try:
            return await self.get(path, params=params)
        except PlatformError as exc:
            if exc.transient:
                raise
            return None


def state(
    raw: str,
    phases: Mapping[str, Phase],
    reasons: Mapping[str, str] | None = None,
    pull_requests: Iterable[Any] = (),
) -> SessionState:
    """A platform's status word as a `SessionState`. An unknown word is not an end: keep
    following, and show what the platform said. `pull_requests` keeps the strings, each
    once, in the platform's order."""
    urls: list[str] = []
    for url in pull_requests:
        if isinstance(url, str) and url and url not in urls:
            urls.append(url)
    return SessionState(
        phase=phases.get(raw, "working"),
        pull_requests=tuple(urls),
        reason=(reasons or {}).get(raw, ""),
        raw_status=raw,
    )


def items(data: Any, *keys: str) -> list[dict[str, Any]]:
    """The objects of the list under `data[key]` (for each key in turn: a list inside
    objects inside a list is flattened), skipping anything that is not an object."""
    found: list[Any] = [data]
    for key in keys:
        found = [inner for item in found for inner in _list(dig(item, key))]
    return [item for item in found if isinstance(item, dict)]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def follow_explain(
    label: str, refused: str, base_variable: str, session_id: str, noun: str = "session"
) -> dict[int, str]:
    """The refusals of a call on one of our sessions, in words a maintainer can act on."""
    return {
        401: refused,
        403: f"the {label} key may not see {noun} {session_id}",
        404: f"{label} does not know {noun} {session_id} (or {base_variable} is wrong)",
    }


async def probe_read(
    api: Api, path: str, params: dict[str, Any], prefix: str, fix: str
) -> tuple[bool, str]:
    """`python -m bot check` for a platform whose variables are `{prefix}_API_KEY` and
    `{prefix}_BASE_URL`: one read-only request that needs the same credentials as a
    create, told as `(ok, one line)`. Never raises for a wrong setting."""
    variable, base_variable, base_url = f"{prefix}_API_KEY", f"{prefix}_BASE_URL", api.base_url
    try:
        await api.get(path, params=params)
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
            f"{api.label} answered {exc.status} to GET {path}; the key could not be verified, "
            "try again later"
        )
    return True, f"{variable} accepted by {base_url} (GET {path})"
