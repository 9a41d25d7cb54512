"""Fakes of the remote services that speak their real HTTP contracts.

Each fake is a callable `(httpx.Request) -> httpx.Response` that checks method, path,
headers and JSON against the documented contract and answers like the service does.
`route(...)` joins several into one `httpx.MockTransport` keyed by host.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

Handler = Callable[[httpx.Request], httpx.Response]


def route(hosts: dict[str, Handler]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        fake = hosts.get(request.url.host)
        if fake is None:
            raise AssertionError(f"unexpected request to {request.url}")
        return fake(request)

    return httpx.MockTransport(handle)


def error(status: int, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"message": message}, headers=headers)
