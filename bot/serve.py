"""Serving: the HTTP server's socket-level limits and the process model of `serve`.

uvicorn bounds neither the time a client may take to send its headers nor their size
or count, so a connection can be held open for ever, one byte every few seconds, or
make a megabytes-long header that every log line would repeat. `GuardedProtocol` adds
those bounds below the app: a request must arrive whole within its deadline
(headers, then body) or get 408 and lose its connection; headers are capped in bytes
and in count (431). The app's own body deadline (`bot.ingest`) is a second shorter
one on the webhook path, where it answers first.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bot.logs import log
from bot.settings import Settings

logger = logging.getLogger("bot.serve")

MAX_HEADER_BYTES = 64 * 1024  # request line and headers together; GitHub sends ~1 KB
MAX_HEADERS = 100
_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a per-request deadline and header limits."""

    request_timeout = 10.0  # set from settings before the server starts

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0  # received since the request began, while in its headers
        self._header_count = 0
        self._header_size = 0  # the same, counted header by header
        self._in_headers = True
        self._refused = False

    # -- deadline ------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self._refuse(408, b"request not received in time")
        else:
            self.transport.close()

    def _refuse(self, status: int, message: bytes) -> None:
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        reason = _REASONS[status]
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, reason, len(message), message)
        )
        self.transport.close()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()

    # -- uvicorn's hooks -----------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.request_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Counted here, not in the parser's callbacks: httptools holds a header's pieces
        # until the header ends, so a long one would be in memory before we saw it.
        if self._refused:
            return
        if self._in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._in_headers and self._header_bytes > MAX_HEADER_BYTES:
            self._refuse(431, b"request headers too large")

    def send_400_response(self, msg: str) -> None:
        if not self._refused:
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = self._header_size = 0
        self._arm(self.request_timeout)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Headers that came in one read (up to 256 KiB) are only seen here, whole.
        self._header_count += 1
        self._header_size += len(name) + len(value)
        if self._header_count > MAX_HEADERS or self._header_size > MAX_HEADER_BYTES:
            self._refuse(431, b"request headers too large or too many")
            raise ValueError("headers over the limit")  # stops the parser here
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        super().on_headers_complete()
        # A second longer than the app's own body deadline, so that one answers first.
        self._arm(self.request_timeout + 1.0)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_headers, self._header_bytes = True, 0  # the next request's come next
        super().on_message_complete()


# -- the process model -----------------------------------------------------------------
#
# `python -m bot serve` is a supervisor: it migrates the store, binds the listening
# socket once and starts N ingest processes that share it (the kernel hands each new
# connection to one of them) and one worker process, so ingest and the worker each get a
# core. A child that dies is started again; the socket stays bound meanwhile, so
# connections wait in its backlog instead of being refused. SIGTERM (or SIGINT) is passed
# to every child, which drain (uvicorn finishes answering, the worker hands back its
# leases) before the supervisor exits. Children die with the supervisor (PR_SET_PDEATHSIG),
# so a `kill -9` of it leaves nothing behind holding the port or a lease.
#
# Ingest wakes the worker through a datagram socket pair: one byte per queued delivery,
# dropped when the worker is behind (it polls the store anyway).

SUPERVISOR_ENV = "TEMBO_SUPERVISOR_PID"
RESTART_PAUSE = 1.0  # seconds before restarting a child that died within its first second
STOP_GRACE = 20.0  # seconds children get to drain after SIGTERM


def die_with_supervisor() -> None:
    """In a child: be killed when the supervisor dies, however it dies (Linux)."""
    parent = os.environ.get(SUPERVISOR_ENV)
    if not parent:
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != int(parent):  # it died before the line above
        os._exit(1)


def wake_sender(fd: int | None) -> Callable[[], None] | None:
    """What ingest calls after a 202: a byte to the worker, never blocking."""
    if fd is None:
        return None
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)

    def wake() -> None:
        with contextlib.suppress(OSError):  # full (the worker is behind) or gone
            sock.send(b"!")

    return wake


def wake_receiver(fd: int | None, notify: Callable[[], None]) -> None:
    """In the worker: `notify()` whenever ingest sent a byte (call inside the loop)."""
    if fd is None:
        return
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)

    def drain() -> None:
        with contextlib.suppress(OSError):
            while sock.recv(64):
                pass
        notify()

    asyncio.get_running_loop().add_reader(sock.fileno(), drain)


@dataclass
class Child:
    name: str
    argv: list[str]
    fds: tuple[int, ...]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0

    def start(self, env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.argv, pass_fds=self.fds, env=env
        )


def supervise(
    settings: Settings, *, ingest_processes: int, run_worker: bool, migrate: Callable[[], object]
) -> int:
    migrate()  # once, before the children race for it
    listener = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((settings.host, settings.port))
    listener.listen(2048)
    listener.set_inheritable(True)
    wake_in, wake_out = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for end in (wake_in, wake_out):
        end.set_inheritable(True)
    base = [sys.executable, "-m", "bot"]
    children = [
        Child(
            f"ingest-{n}",
            [
                *base,
                "serve",
                "--ingest-fd",
                str(listener.fileno()),
                "--wake-fd",
                str(wake_out.fileno()),
            ],
            (listener.fileno(), wake_out.fileno()),
        )
        for n in range(ingest_processes)
    ]
    if run_worker and settings.has_github_credentials:
        children.append(
            Child(
                "worker", [*base, "worker", "--wake-fd", str(wake_in.fileno())], (wake_in.fileno(),)
            )
        )
    elif run_worker:
        log(logger, "serve.no_worker", logging.WARNING, reason="no GitHub App credentials yet")
    env = {**os.environ, SUPERVISOR_ENV: str(os.getpid())}
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.proc is not None and child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.start(env)
    log(
        logger,
        "serve.started",
        host=settings.host,
        port=settings.port,
        children={c.name: c.proc.pid for c in children if c.proc is not None},
    )
    while not stopping:
        time.sleep(0.2)
        for child in children:
            assert child.proc is not None
            code = child.proc.poll()
            if code is None or stopping:
                continue
            quick = time.monotonic() - child.started < 1.0
            log(logger, "serve.child_died", logging.ERROR, child=child.name, code=code)
            if quick:
                time.sleep(RESTART_PAUSE)
            child.restarts += 1
            child.start(env)
    deadline = time.monotonic() + STOP_GRACE
    for child in children:
        if child.proc is None:
            continue
        try:
            child.proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
    listener.close()
    return 0
