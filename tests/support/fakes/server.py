"""Real-process plumbing for end-to-end tests: contract fakes served over real HTTP on
127.0.0.1, and the app itself run as `python -m bot serve` in a child process.

`FakeServer` serves any fake (a callable `httpx.Request -> httpx.Response`, like FakeGitHub
or FakeTembo) from a uvicorn server with its own event loop in a background thread. Calls
into the fake are serialized by `lock`, so fakes need no thread safety; a test that reads a
fake's state while the server runs takes the same lock. A fake that raises an httpx
exception (fault injection of a lost answer: done on the remote side, answer never
delivered) makes the server drop the connection before the body, so the client sees a
transport error, not a status.

`AppProcess` runs the app in a child process with its output in a file, and is killed
(SIGKILL) by `stop()` or by the `Processes` registry's cleanup, whatever the test did.
`app_env`, `Delivery`, `job_counts`, `wait_until` and `tally` are what the real-process
tests (tests/e2e/test_crash.py, tests/e2e/test_replicas.py) share: the environment of an app wired
to the loopback fakes, signed deliveries, the job gauges of `/metrics`, bounded polling,
and the figures of what the fakes saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from tests.support import payloads
from tests.support.app import WEBHOOK_SECRET, signed_headers
from tests.support.fakes import Handler
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.tembo import FakeTembo

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
# Headers the server frames itself; copying the fake's would contradict it.
FRAMING = {b"content-length", b"transfer-encoding", b"connection", b"keep-alive"}


def free_port() -> int:
    """A port that was free a moment ago (for a child process to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class FakeServer:
    """Serve `fake` on http://127.0.0.1:<free port> until `stop()` (or the `with` ends).

    `delay(request, response)` may return seconds to hold an answer after the fake made
    it (the remote has acted, the client does not know yet), without holding the lock.
    """

    def __init__(
        self,
        fake: Handler,
        *,
        delay: Callable[[httpx.Request, httpx.Response], float] | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        self.fake = fake
        self.delay = delay
        self.lock = lock or threading.Lock()
        self.requests = 0
        self.lost = 0  # answers dropped on purpose (the fake raised an httpx exception)
        self.errors: list[str] = []  # anything else the fake raised: a broken contract
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((HOST, 0))
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            self._asgi,
            interface="asgi3",
            lifespan="off",
            loop="asyncio",
            proxy_headers=False,
            http="h11",
            log_config=None,  # uvicorn's records go to the root logger: pytest captures them
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 10.0) -> FakeServer:
        thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"fake-server:{self.port}",
            daemon=True,
        )
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not thread.is_alive():
                raise RuntimeError(f"fake server on port {self.port} failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"fake server on port {self.port} not started in {timeout} s")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._server.should_exit = True
            thread.join(timeout)
            if thread.is_alive():
                self._server.force_exit = True
                thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"fake server on port {self.port} did not stop")
        self._sock.close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def snapshot(self, read: Callable[[], Any]) -> Any:
        """`read()` under the fake's lock: a consistent view while requests come in."""
        with self.lock:
            return read()

    # -- the ASGI side --------------------------------------------------------

    async def _asgi(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        host, port = scope["server"]
        target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = scope["query_string"].decode("latin-1")
        url = f"{scope['scheme']}://{host}:{port}{target}" + (f"?{query}" if query else "")
        request = httpx.Request(
            scope["method"], url, headers=list(scope["headers"]), content=b"".join(chunks)
        )
        response: httpx.Response | None = None
        with self.lock:
            self.requests += 1
            try:
                response = self.fake(request)
            except httpx.HTTPError:
                self.lost += 1
            except Exception as exc:
                self.errors.append(f"{request.method} {request.url.path}: {exc!r}")
                response = httpx.Response(500, json={"message": f"the fake failed: {exc!r}"})
        if response is None:
            # A lost answer: start a response and end the connection before its body. (An
            # ASGI app cannot close a connection without starting a response; uvicorn
            # closes the transport when the app returns with the response incomplete.)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"1")],
                }
            )
            return
        content = response.read()
        if self.delay is not None:
            seconds = self.delay(request, response)
            if seconds > 0:
                await asyncio.sleep(seconds)
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in FRAMING]
        headers.append((b"content-length", str(len(content)).encode()))
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        await send({"type": "http.response.body", "body": content})


# -- the app in a child process ---------------------------------------------------


class AppProcess:
    """`python -m bot <args>` with `env` (nothing inherited but PATH and locale), output
    (stdout and stderr) appended to `log_path`."""

    def __init__(
        self, name: str, env: Mapping[str, str], log_path: Path, args: tuple[str, ...] = ("serve",)
    ) -> None:
        self.name = name
        self.env = dict(env)
        self.log_path = log_path
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = int(self.env.get("PORT", "3000"))

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> AppProcess:
        assert self.proc is None, "already started"
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
        env |= {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", **self.env}
        with self.log_path.open("ab") as log:
            log.write(f"--- {self.name}: python -m bot {' '.join(self.args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "bot", *self.args],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of pytest does not reach it
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def wait_ready(self, timeout: float = 20.0) -> None:
        """Until `GET /readyz` answers 200 (store migrated, server listening)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
            while True:
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited early:\n{self.tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} not ready in {timeout} s:\n{self.tail()}")
                await asyncio.sleep(0.05)

    def family(self) -> list[int]:
        """This process and its descendants (`serve` runs ingest and the worker as
        children of a supervisor), from /proc."""
        found, queue = [], [self.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    queue += [int(c) for c in (task / "children").read_text().split()]
        return found

    def kill(self) -> None:
        """`kill -9` of the whole process group: no shutdown, no flush, no lease handed
        back. Safe from any thread."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def wait(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Kill and reap (idempotent): for cleanup, where a graceful stop proves nothing."""
        if self.proc is None:
            return
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"({self.log_path}: {exc.strerror})"
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    """Every app process a test started, so a fixture finalizer can kill them all."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[AppProcess] = []

    def start(
        self, name: str, env: Mapping[str, str], args: tuple[str, ...] = ("serve",)
    ) -> AppProcess:
        log_path = self.folder / f"{name}.log"
        process = AppProcess(name, env, log_path, args)
        self.started.append(process)
        return process.start()

    def stop_all(self) -> None:
        for process in self.started:
            process.stop()

    def tails(self, lines: int = 40) -> str:
        return "\n".join(
            f"===== {p.name} (pid {p.proc.pid if p.proc else '-'}, exit "
            f"{p.proc.returncode if p.proc else '-'}) {p.log_path}\n{p.tail(lines)}"
            for p in self.started
        )

    @contextlib.contextmanager
    def shown_on_failure(self, lines: int = 40) -> Iterator[None]:
        """On any failure inside, print each process's last lines (pytest shows them)."""
        try:
            yield
        except BaseException:
            self.stop_all()
            print(f"\n{self.tails(lines)}", file=sys.stderr)
            raise


# -- deliveries in, figures out -------------------------------------------------------

DISPATCH_LINE = re.compile(r"^tembo-dispatch-id: (\S+)\s*$", re.MULTILINE)
ISSUE_LINE = re.compile(r"repository https://github\.com/(\S+) to resolve issue #(\d+):")
COMMENT_MARKER = re.compile(r"<!-- dispatch-id: (\S+) -->")
JOB_GAUGE = re.compile(r'^tembo_dispatch_jobs\{state="(\w+)"\} ([0-9.eE+-]+)$', re.MULTILINE)


REPLICA_PATH = re.compile(r"^/r(\d+)(/.*)$")


def per_replica(request: httpx.Request) -> tuple[int, httpx.Request]:
    """A request to a fake served at one base URL per replica (`<url>/r<n>`), so the fake
    knows who calls: the replica's number, and the request as the fake expects it."""
    match = REPLICA_PATH.match(request.url.path)
    assert match, f"{request.url.path} names no replica"
    inner = httpx.Request(
        request.method,
        request.url.copy_with(path=match[2]),
        headers=request.headers,
        content=request.content,
    )
    return int(match[1]), inner


def app_env(
    *,
    private_key: str,
    github: FakeGitHub,
    github_server: FakeServer,
    database_url: str,
    port: int,
    folder: Path,
    tembo: FakeTembo | None = None,
    tembo_url: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of one app process wired to the loopback fakes (to Tembo's when
    `tembo` is given; other platforms' variables come in `extra`)."""
    platform = {} if tembo is None else {"TEMBO_API_KEY": tembo.api_key}
    if tembo_url is not None:
        platform["TEMBO_BASE_URL"] = tembo_url
    return {
        "APP_ID": github.app_id,
        "PRIVATE_KEY": private_key,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GITHUB_API_URL": f"{github_server.url}{github.prefix}",
        **platform,
        "DATABASE_URL": database_url,
        "HOST": HOST,
        "PORT": str(port),
        "LEASE_SECONDS": "2",
        "RETRY_BASE_SECONDS": "0.05",
        "GITHUB_CONTENT_PER_MINUTE": "100000",
        "GITHUB_CONTENT_PER_HOUR": "100000",
        "LOG_LEVEL": "warning",
        "LOG_FORMAT": "json",
        "ENV_FILE": str(folder / ".env"),
        **extra,
    }


@dataclass(frozen=True)
class Loopback:
    """The App's key and the fakes an app process talks to, served on loopback: what
    every process of one test shares."""

    private_key: str
    github: FakeGitHub
    github_server: FakeServer
    tembo: FakeTembo
    tembo_url: str

    def env(self, database_url: str, folder: Path, **extra: str) -> dict[str, str]:
        """`app_env` for one more process (on a port of its own)."""
        fakes = {f.name: getattr(self, f.name) for f in fields(self)}  # the fields are its keys
        return app_env(**fakes, database_url=database_url, port=free_port(), folder=folder, **extra)


@dataclass(frozen=True)
class Delivery:
    """One signed webhook delivery, ready to be sent (and sent again) as is."""

    id: str
    event: str
    body: bytes

    @classmethod
    def labeled(cls, repo: str, number: int, sender: str = "Codertocat") -> Delivery:
        body = json.dumps(payloads.labeled(repo=repo, number=number, sender=sender)).encode()
        return cls(str(uuid.uuid4()), "issues", body)

    @property
    def dispatch_id(self) -> str:
        return f"gh-{self.id}"

    async def send(self, client: httpx.AsyncClient, base_url: str) -> int | None:
        """The status of the answer, or None when none came (refused, reset, timed out)."""
        try:
            response = await client.post(
                f"{base_url}/webhook",
                content=self.body,
                headers=signed_headers(self.body, self.event, self.id),
            )
        except httpx.TransportError:
            return None
        return response.status_code


async def job_counts(client: httpx.AsyncClient, base_url: str) -> dict[str, int] | None:
    """Jobs by state, from the app's `GET /metrics` (None if it does not answer)."""
    try:
        response = await client.get(f"{base_url}/metrics")
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    return {state: int(float(value)) for state, value in JOB_GAUGE.findall(response.text)}


def settled(counts: dict[str, int] | None, expected: int) -> bool:
    """Every expected job has ended (done, failed or dead) and none is queued or running."""
    if counts is None:
        return False
    ended = counts.get("done", 0) + counts.get("failed", 0) + counts.get("dead", 0)
    return counts.get("queued", 0) + counts.get("running", 0) == 0 and ended == expected


def time_left(seconds: float) -> Callable[[], float]:
    """A run's budget of `seconds` from now: each call says how much is left (never quite
    zero, so a wait bounded by it still looks once)."""
    deadline = time.monotonic() + seconds
    return lambda: max(deadline - time.monotonic(), 0.1)


async def resend_until_accepted(
    deliveries: list[Delivery],
    client: httpx.AsyncClient,
    base_url: str,
    left: Callable[[], float],
    seen: list[int | None] | None = None,
) -> None:
    """Send each delivery again until the app answers it with a 2xx, as `replay` would;
    every answer's status (None: no answer) goes to `seen`."""
    for delivery in deliveries:

        async def answered(d: Delivery = delivery) -> bool:
            status = await d.send(client, base_url)
            if seen is not None:
                seen.append(status)
            return status is not None and status < 300

        await wait_until(answered, left(), f"a 2xx for resent delivery {delivery.id}", 0.1)


async def until_settled(
    client: httpx.AsyncClient, base_url: str, expected: int, left: Callable[[], float]
) -> dict[str, int] | None:
    """Wait until the `expected` jobs have all ended; the job counts then."""

    async def finished() -> bool:
        return settled(await job_counts(client, base_url), expected)

    await wait_until(finished, left(), f"all {expected} jobs ended", every=0.1)
    return await job_counts(client, base_url)


async def wait_until(
    check: Callable[[], Awaitable[bool] | bool], timeout: float, what: str, every: float = 0.02
) -> None:
    """Poll `check` until true; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached in {timeout} s")
        await asyncio.sleep(every)


@dataclass
class Tally:
    """What the fakes saw: sessions at Tembo, the app's comments on GitHub."""

    sessions: int
    comments: int
    linked: int  # status comments holding the link of their own dispatch's session
    dispatch_ids: set[str]
    sessions_per_dispatch: Counter[str]
    sessions_per_issue: Counter[str]
    comments_per_dispatch: Counter[str]
    unlinked: list[str] = field(default_factory=list)

    @property
    def duplicate_sessions(self) -> dict[str, int]:
        return {k: n for k, n in self.sessions_per_dispatch.items() if n > 1}

    @property
    def duplicate_issues(self) -> dict[str, int]:
        return {k: n for k, n in self.sessions_per_issue.items() if n > 1}

    @property
    def duplicate_comments(self) -> dict[str, int]:
        return {k: n for k, n in self.comments_per_dispatch.items() if n > 1}

    @property
    def duplicates(self) -> int:
        """Extra sessions (per dispatch id or per issue, whichever is more) plus extra
        status comments."""
        extra_sessions = max(
            sum(n - 1 for n in self.duplicate_sessions.values()),
            sum(n - 1 for n in self.duplicate_issues.values()),
        )
        return extra_sessions + sum(n - 1 for n in self.duplicate_comments.values())


def tally(
    github: FakeGitHub, github_server: FakeServer, tembo: FakeTembo, tembo_server: FakeServer
) -> Tally:
    sessions: list[dict[str, Any]] = tembo_server.snapshot(
        lambda: [dict(s) for s in tembo.sessions]
    )
    comments: list[tuple[str, int, str]] = github_server.snapshot(
        lambda: [(c.repo, c.issue, c.body) for c in github.app_comments()]
    )
    per_dispatch: Counter[str] = Counter()
    per_issue: Counter[str] = Counter()
    urls: dict[str, set[str]] = {}
    for session in sessions:
        prompt = str(session.get("prompt", ""))
        ids = DISPATCH_LINE.findall(prompt)
        ident = ids[-1] if ids else "(no dispatch-id line)"
        issue = ISSUE_LINE.search(prompt)
        per_dispatch[ident] += 1
        per_issue[f"{issue[1]}#{issue[2]}" if issue else "(no issue)"] += 1
        urls.setdefault(ident, set()).add(str(session["htmlUrl"]))
    per_comment: Counter[str] = Counter()
    linked, unlinked = 0, []
    for repo, issue, body in comments:
        marker = COMMENT_MARKER.search(body)
        ident = marker[1] if marker else f"(no marker on {repo}#{issue})"
        per_comment[ident] += 1
        if any(url in body for url in urls.get(ident, ())):
            linked += 1
        else:
            unlinked.append(ident)
    return Tally(
        sessions=len(sessions),
        comments=len(comments),
        linked=linked,
        dispatch_ids=set(per_dispatch),
        sessions_per_dispatch=per_dispatch,
        sessions_per_issue=per_issue,
        comments_per_dispatch=per_comment,
        unlinked=unlinked,
    )


def assert_exactly_once(
    figures: Tally, expected: set[str], counts: dict[str, int] | None, issues: int
) -> None:
    """Every dispatch made exactly one session and one status comment with its link."""
    assert figures.duplicate_sessions == {}
    assert figures.duplicate_issues == {}
    assert figures.duplicate_comments == {}
    assert figures.dispatch_ids == expected
    assert figures.sessions == issues
    assert figures.comments == issues
    assert figures.unlinked == []
    assert figures.linked == issues
    assert counts is not None and counts.get("done") == issues
