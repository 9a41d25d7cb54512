"""Webhook deliveries: signature check and header parsing, no I/O.

Like gidgethub's sansio module this turns headers and bytes into a `Delivery` or
raises a typed error that the HTTP edge maps to a status code once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.settings import Secret

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB and drops larger ones.


class WebhookError(Exception):
    status_code = 400


class BadSignature(WebhookError):
    status_code = 401


class BadRequest(WebhookError):
    status_code = 400


class PayloadTooLarge(WebhookError):
    status_code = 413


@dataclass(frozen=True)
class Delivery:
    event: str
    delivery_id: str
    payload: dict[str, Any]

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None


def signature(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(body: bytes, signature_header: str | None, secrets: Iterable[Secret]) -> None:
    """Raise `BadSignature` unless `signature_header` matches `body` under one of `secrets`.

    Several secrets are accepted so an operator can rotate without dropping deliveries.
    """
    if not signature_header:
        raise BadSignature("X-Hub-Signature-256 header is missing")
    if not signature_header.startswith("sha256="):
        raise BadSignature("X-Hub-Signature-256 must start with sha256=")
    given = signature_header.encode()
    # Compare against every secret, no early exit, so timing says nothing about which.
    matched = False
    for secret in secrets:
        expected = signature(body, secret.reveal()).encode()
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise BadSignature("signature does not match any configured webhook secret")


def parse(headers: Mapping[str, str], body: bytes, secrets: Iterable[Secret]) -> Delivery:
    """Verify and parse one delivery. Signature first: nothing unsigned is even decoded."""
    verify(body, headers.get("x-hub-signature-256"), secrets)
    event = headers.get("x-github-event", "").strip()
    delivery_id = headers.get("x-github-delivery", "").strip()
    if not event:
        raise BadRequest("X-GitHub-Event header is missing")
    if not delivery_id:
        raise BadRequest("X-GitHub-Delivery header is missing")
    if len(delivery_id) > 200:
        raise BadRequest("X-GitHub-Delivery header is too long")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object")
    return Delivery(event=event, delivery_id=delivery_id, payload=payload)
