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
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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
