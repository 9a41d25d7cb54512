"""Webhook deliveries: header checks, signature check and body parsing, no I/O.

Like gidgethub's sansio module this turns headers and bytes into a `Delivery` or
raises a typed error that the HTTP edge maps to a status code once. The header checks
come apart from the body so that the edge can refuse a request before reading it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from bot.settings import Secret

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB and drops larger ones.
MAX_DELIVERY_ID = 200  # GitHub's are 36-character GUIDs
LOGGED_HEADER_CHARS = 80  # a header value written to a log line is cut here


class WebhookError(Exception):
    status_code = 400


class BadSignature(WebhookError):
    status_code = 401


class BadRequest(WebhookError):
    status_code = 400


class PayloadTooLarge(WebhookError):
    status_code = 413


class NotJSON(WebhookError):
    status_code = 415


class TooSlow(WebhookError):
    status_code = 408


@dataclass(frozen=True)
class Headers:
    """What ingest needs from the headers, checked before a byte of the body is read."""

    event: str
    delivery_id: str
    signature: str


@dataclass(frozen=True)
class Delivery:
    event: str
    delivery_id: str
    payload: dict[str, Any]

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None


def clip(value: str | None, limit: int = LOGGED_HEADER_CHARS) -> str | None:
    """A header value as it may appear in a log line: at most `limit` characters."""
    if value is None or len(value) <= limit:
        return value
    return f"{value[:limit]}…(+{len(value) - limit})"


def signature(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class Verifier:
    """The configured secrets, keyed once: each check copies a keyed HMAC instead of
    deriving the key pads again for every delivery."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        self._keyed = [hmac.new(s.reveal().encode(), digestmod=hashlib.sha256) for s in secrets]

    def __bool__(self) -> bool:
        return bool(self._keyed)

    def verify(self, body: bytes, signature_header: str | None) -> None:
        """Raise `BadSignature` unless the header matches `body` under one of the secrets.

        Several secrets are accepted so an operator can rotate without dropping deliveries;
        every one is compared, no early exit, so timing says nothing about which matched.
        """
        if not signature_header:
            raise BadSignature("X-Hub-Signature-256 header is missing")
        if not signature_header.startswith("sha256="):
            raise BadSignature("X-Hub-Signature-256 must start with sha256=")
        given = signature_header[7:].encode()
        matched = False
        for keyed in self._keyed:
            mac = keyed.copy()
            mac.update(body)
            matched |= hmac.compare_digest(mac.hexdigest().encode(), given)
        if not matched:
            raise BadSignature("signature does not match any configured webhook secret")


def verify(body: bytes, signature_header: str | None, secrets: Iterable[Secret]) -> None:
    """`Verifier(secrets).verify(body, signature_header)`, for one-off checks."""
    Verifier(secrets).verify(body, signature_header)


def check_headers(headers: Mapping[str, str]) -> Headers:
    """Everything that can be refused from the headers alone, cheapest first.

    A request without a signature is refused before its body is read (401); one that
    says its body is not JSON gets 415; one declaring more than GitHub ever sends, 413.
    """
    signature_header = headers.get("x-hub-signature-256")
    if not signature_header:
        raise BadSignature("X-Hub-Signature-256 header is missing")
    event = headers.get("x-github-event", "").strip()
    if not event:
        raise BadRequest("X-GitHub-Event header is missing")
    delivery_id = headers.get("x-github-delivery", "").strip()
    if not delivery_id:
        raise BadRequest("X-GitHub-Delivery header is missing")
    if len(delivery_id) > MAX_DELIVERY_ID or len(event) > MAX_DELIVERY_ID:
        raise BadRequest("X-GitHub-Delivery or X-GitHub-Event header is too long")
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media and media != "application/json":
        # GitHub Apps always send JSON; a form-encoded body is a misconfigured hook.
        raise NotJSON("Content-Type must be application/json")
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body is larger than {MAX_BODY_BYTES} bytes")
    return Headers(event=event, delivery_id=delivery_id, signature=signature_header)


def decode(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; `BadRequest` for anything else, however malformed
    (nesting too deep to decode included)."""
    try:
        payload = orjson.loads(body)
    except (orjson.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object")
    return payload


def parse(headers: Mapping[str, str], body: bytes, secrets: Iterable[Secret]) -> Delivery:
    """Verify and parse one delivery. Signature first: nothing unsigned is even decoded."""
    verify(body, headers.get("x-hub-signature-256"), secrets)
    checked = check_headers(headers)
    return Delivery(event=checked.event, delivery_id=checked.delivery_id, payload=decode(body))
