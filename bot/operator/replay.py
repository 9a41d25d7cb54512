"""Missed deliveries: ask GitHub to send again what never reached the store.

GitHub does not retry a failed delivery by itself. `replay` lists the App's recent
deliveries (`GET /app/hook/deliveries`, newest first, cursor-paginated, App JWT),
keeps those none of whose attempts was answered 2xx and that the store has not seen,
and asks for each to be redelivered (`POST /app/hook/deliveries/{id}/attempts`). The
delivery-id dedupe at ingest makes running it any time, or twice, safe.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.adapters.github import GitHubClient
from bot.logs import log
from bot.ports import GitHubError, Store

logger = logging.getLogger("bot.operator.replay")
MAX_PAGES = 50
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_duration(text: str) -> float:
    """`90s`, `15m`, `6h`, `2d` in seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30m, 6h or 2d")
    return float(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


@dataclass
class Report:
    listed: int = 0
    failed: list[str] = field(default_factory=list)  # guids with no 2xx attempt
    redelivered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _time(value: Any) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


async def replay(
    github: GitHubClient, store: Store, since: float, *, dry_run: bool = False
) -> Report:
    report = Report()
    attempts: dict[str, list[dict[str, Any]]] = {}
    path: str | None = "/app/hook/deliveries"
    params: dict[str, Any] | None = {"per_page": 100}
    for _ in range(MAX_PAGES):
        if path is None:
            break
        response = await github.app_response("GET", path, params=params)
        page = response.json()
        for item in page:
            if _time(item.get("delivered_at")) < since:
                path = None
                break
            attempts.setdefault(str(item.get("guid")), []).append(item)
            report.listed += 1
        else:
            path = response.links.get("next", {}).get("url")
        params = None

    for guid, tries in attempts.items():
        if any(200 <= int(t.get("status_code") or 0) < 300 for t in tries):
            continue
        report.failed.append(guid)
        if await store.has_delivery(guid):
            continue  # an earlier redelivery got through
        latest = max(tries, key=lambda t: _time(t.get("delivered_at")))
        if dry_run:
            report.redelivered.append(guid)
            continue
        try:
            await github.app_request("POST", f"/app/hook/deliveries/{latest['id']}/attempts")
        except GitHubError as exc:
            report.errors.append(f"{guid}: {exc.message}")
            continue
        report.redelivered.append(guid)
        log(logger, "replay.redelivered", delivery_id=guid, event=latest.get("event"))
    return report
