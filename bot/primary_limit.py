"""GitHub's primary limit, watched per installation: how long the GitHub adapter waits
before its next call (`PrimaryLimit`). Pure: headers and times in, a delay out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass
class _Primary:
    remaining: int
    limit: int
    reset: float
    next_at: float = 0.0


class PrimaryLimit:
    """GitHub's primary limit (requests an hour per installation), read from the
    `x-ratelimit-*` headers of every answer. Far from zero it costs nothing; once fewer
    than `LOW` of the limit remain, calls are spread evenly until the reset, so the
    installation reaches the reset, not zero; at zero, calls wait for the reset."""

    LOW = 0.1

    def __init__(self) -> None:
        self._seen: dict[int, _Primary] = {}

    def observe(self, installation_id: int, headers: Mapping[str, str], now: float) -> None:
        try:
            remaining = int(headers["x-ratelimit-remaining"])
            reset = float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return
        try:
            limit = int(headers.get("x-ratelimit-limit", "5000"))
        except ValueError:
            limit = 5000
        if headers.get("x-ratelimit-resource", "core") != "core":
            return
        seen = self._seen.get(installation_id)
        next_at = seen.next_at if seen is not None else 0.0
        self._seen[installation_id] = _Primary(remaining, limit, reset, next_at)

    def delay(self, installation_id: int, now: float) -> float:
        """How long the next call for this installation should wait; counts it as made."""
        seen = self._seen.get(installation_id)
        if seen is None or seen.reset <= now:
            return 0.0
        if seen.remaining <= 0:
            return seen.reset - now
        if seen.remaining >= seen.limit * self.LOW:
            return 0.0
        spacing = (seen.reset - now) / seen.remaining
        at = max(now, seen.next_at)
        seen.next_at = at + spacing
        seen.remaining -= 1  # this call; the next answer corrects the figure
        return at - now
