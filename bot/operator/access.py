"""Who may see the operator's pages (the status page) and `/metrics`.

Two ways in: `STATUS_TOKEN`, sent as `Authorization: Bearer …` or `?token=…`, compared in
constant time; or a request from this machine itself. "From this machine" means the TCP
peer is a loopback address *and* no proxy header names another client: a reverse proxy on
the same host connects from 127.0.0.1 for every visitor, so its requests count as local
only if it sends none of the usual forwarding headers (README, security section).
"""

from __future__ import annotations

import hmac
import ipaddress

from starlette.requests import Request

from bot.settings import Secret

# Set by proxies (nginx, Caddy, Traefik, HAProxy, cloudflared, ngrok, …) to say who the
# client really is. Any of them present: the request came through a proxy.
FORWARDING_HEADERS = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
)


def is_loopback_address(host: str | None) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def from_loopback(request: Request) -> bool:
    """The peer is this machine and no proxy header says the client is someone else."""
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    client = request.client
    return client is not None and is_loopback_address(client.host)


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison, so response times do not reveal a prefix."""
    return hmac.compare_digest(given.encode(), expected.encode())


def presented_token(request: Request) -> str | None:
    """The bearer token of `Authorization`, else the `token` query parameter."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token") or None


def operator_allowed(request: Request, status_token: Secret | None) -> bool:
    """May this request see the status page or `/metrics`?"""
    if status_token is not None:
        given = presented_token(request)
        if given is not None and same_secret(given, status_token.reveal()):
            return True
    return from_loopback(request)


CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tembo-dispatch"'}
REFUSAL = (
    "served only to this machine (loopback, not through a proxy) or with STATUS_TOKEN: "
    "send it as 'Authorization: Bearer <STATUS_TOKEN>' or add ?token=<STATUS_TOKEN>"
)
