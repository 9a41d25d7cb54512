"""Ingest: the path from the socket to the 202. `Ingest.receive(request)` refuses, verifies,
dedupes and enqueues; it never waits on GitHub or a platform.

In order, cheapest first, so that a hostile client costs as little as possible:

1. refuse from the headers alone, before a byte of the body is read: too many requests
   being read already (503 + Retry-After), no signature (401), no event or delivery
   header (400), not JSON (415), declared larger than GitHub ever sends (413);
2. read the body under a deadline (408) and a cap (413), within a byte budget shared by
   every request in the process (503);
3. check the signature (401), decode (400 for anything malformed, however deeply nested);
4. drop what cannot trigger: what no configuration could act on, and what the cached
   configuration of the repository proves cannot (200 "ignored", nothing written);
5. one durable write of the delivery and its job, deduplicated on the delivery id, on
   the body's digest and on the trigger's identity (200 "duplicate", nothing written);
   202 only once that write is committed.

A refused request is answered with `Connection: close`, so a client that keeps sending
a body nobody reads loses its connection instead of keeping it.

What this module must not do: decide anything about a trigger beyond what the
repository's own configuration proves (that is `policy`), or log a header as received
(`webhook.clip` first): a header value can be megabytes long.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from bot import webhook
from bot.config_words import ConfigWords, cannot_trigger, worth_queueing
from bot.events import dig as _get
from bot.events import lock_key
from bot.logs import log
from bot.metrics import Metrics
from bot.ports import Store
from bot.settings import Settings

logger = logging.getLogger("bot.ingest")

# A replayed body or trigger is answered "duplicate" for this long. GitHub lets a delivery
# be redelivered for 3 days (and a redelivery keeps its delivery id, so the id alone
# dedupes it); a week covers that and an operator's `replay` after a weekend. A genuine
# new event never repeats a body (it carries fresh `updated_at`/`created_at` times) nor a
# trigger identity (a comment id is never reused; a label event names the new
# `updated_at`), so a longer window refuses nothing legitimate: it only keeps more rows.
DEDUPE_WINDOW = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Limits:
    body_timeout: float = 10.0  # seconds to receive a whole body, once the headers are in
    max_pending: int = 64  # requests being read or written at once; the rest get 503
    max_buffered: int = 64 * 1024 * 1024  # bytes of bodies held at once, all requests
    dedupe_window: float = DEDUPE_WINDOW
    retry_after: int = 1  # seconds, in the 503's Retry-After


class Busy(webhook.WebhookError):
    status_code = 503


_CLOSE = {"connection": "close"}
_QUEUED = b'{"status":"queued"}'
_IGNORED = b'{"status":"ignored"}'
_DUPLICATE = b'{"status":"duplicate"}'


def _answer(content: bytes, status: int) -> Response:
    return Response(content, status_code=status, media_type="application/json")


# -- what a delivery is, for dedupe and for the config filter (pure) ---------------------


def dedupe_keys(event: str, payload: Mapping[str, Any], body: bytes) -> tuple[str, ...]:
    """The identities a replay would repeat: the body's digest, and for triggers the
    trigger itself (the comment; the issue, label and the issue's `updated_at`)."""
    keys = [f"body:{hashlib.sha256(body).hexdigest()}"]
    action = payload.get("action")
    repo = _get(payload, "repository", "full_name")
    number = _get(payload, "issue", "number")
    if event == "issue_comment" and action == "created":
        comment = _get(payload, "comment", "id")
        if isinstance(comment, int):
            keys.append(f"comment:{comment}")
    elif event == "issues" and action == "labeled" and isinstance(number, int):
        label = _get(payload, "label", "name")
        updated = _get(payload, "issue", "updated_at")
        if isinstance(repo, str) and isinstance(label, str) and isinstance(updated, str):
            keys.append(f"label:{repo}#{number}:{label}:{updated}")
    elif event == "issues" and action == "opened" and isinstance(number, int) and repo:
        keys.append(f"opened:{repo}#{number}")  # an issue is opened once
    return tuple(keys)


# -- the endpoint -----------------------------------------------------------------------


class Ingest:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        metrics: Metrics,
        *,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.limits = limits or Limits()
        self.clock = clock
        self.on_queued = on_queued
        self.verifier = webhook.Verifier(settings.webhook_secrets)
        self.words = ConfigWords(store, clock)
        self._pending = 0
        self._buffered = 0

    async def receive(self, request: Request) -> Response:
        headers = request.headers
        if not self.verifier:
            self.metrics.delivery(headers.get("x-github-event"), "unconfigured")
            return JSONResponse(
                {"error": "WEBHOOK_SECRET is not set; register the App from the setup page"},
                status_code=503,
                headers=_CLOSE,
            )
        if self._pending >= self.limits.max_pending:
            return self._refuse(headers, Busy("too many deliveries in progress; retry shortly"))
        self._pending += 1
        try:
            return await self._receive(request)
        except webhook.WebhookError as exc:
            return self._refuse(headers, exc)
        except ClientDisconnect:
            return Response(status_code=400, headers=_CLOSE)
        finally:
            self._pending -= 1

    async def _receive(self, request: Request) -> Response:
        checked = webhook.check_headers(request.headers)
        body = await self._read(request)
        self.verifier.verify(body, checked.signature)
        payload = webhook.decode(body)
        event = checked.event
        action = payload.get("action")
        if not worth_queueing(event, payload) or await self._proved_idle(event, payload):
            self.metrics.delivery(event, "ignored")
            return _answer(_IGNORED, 200)
        now = self.clock()
        queued = await self.store.enqueue(
            checked.delivery_id,
            event,
            action if isinstance(action, str) else None,
            body,
            lock_key(payload),
            now,
            dedupe=dedupe_keys(event, payload, body),
            since=now - self.limits.dedupe_window,
        )
        outcome = "queued" if queued else "duplicate"
        self.metrics.delivery(event, outcome)
        log(
            logger,
            f"delivery.{outcome}",
            delivery_id=checked.delivery_id,
            github_event=event,
            action=action,
        )
        if not queued:
            return _answer(_DUPLICATE, 200)
        if self.on_queued is not None:
            self.on_queued()
        return _answer(_QUEUED, 202)

    async def _proved_idle(self, event: str, payload: Mapping[str, Any]) -> bool:
        repo = _get(payload, "repository", "full_name")
        if not isinstance(repo, str):
            return False
        words = await self.words.get(repo)
        return words is not None and cannot_trigger(event, payload, words)

    async def _read(self, request: Request) -> bytes:
        """The body, within the deadline, the cap and the process's byte budget."""
        limit, budget = webhook.MAX_BODY_BYTES, self.limits.max_buffered
        declared = request.headers.get("content-length")
        reserved = int(declared) if declared and declared.isdigit() else 0
        if self._buffered + reserved > budget:
            raise Busy("too many bytes of deliveries in progress; retry shortly")
        self._buffered += reserved
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.limits.body_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise webhook.PayloadTooLarge(f"body is larger than {limit} bytes")
                    if size > reserved:  # undeclared (chunked) bytes count as they come
                        if self._buffered + size - reserved > budget:
                            raise Busy("too many bytes of deliveries in progress; retry shortly")
                        self._buffered += size - reserved
                        reserved = size
                    chunks.append(chunk)
        except TimeoutError:
            raise webhook.TooSlow(
                f"body not received within {self.limits.body_timeout:g} s"
            ) from None
        finally:
            self._buffered -= reserved
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _refuse(self, headers: Mapping[str, str], exc: webhook.WebhookError) -> Response:
        event = headers.get("x-github-event")
        if isinstance(exc, Busy):
            self.metrics.delivery(event, "busy")
        else:
            self.metrics.rejected(event, exc)
        log(
            logger,
            "delivery.rejected",
            status=exc.status_code,
            error=str(exc),
            delivery_id=webhook.clip(headers.get("x-github-delivery")),
            github_event=webhook.clip(event),
        )
        extra = dict(_CLOSE)
        if isinstance(exc, Busy):
            extra["retry-after"] = str(self.limits.retry_after)
        return JSONResponse({"error": str(exc)}, status_code=exc.status_code, headers=extra)
