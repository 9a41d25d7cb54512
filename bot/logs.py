"""Structured logs: one JSON object per line (or a readable line with LOG_FORMAT=pretty).

Call sites pass context as keyword fields: `log(logger, "job.done", job_id=3, repo="o/r")`.
Known secret values are replaced before a line is written, whatever the call site passed.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

_SECRETS: list[str] = []
_RESERVED = frozenset({"ts", "level", "logger", "event", "exception"})


def log(
    logger: logging.Logger,
    message: str,
    level: int = logging.INFO,
    /,
    *,
    exc_info: bool = False,
    **fields: Any,
) -> None:
    logger.log(level, message, exc_info=exc_info, extra={"fields": fields})


def _scrub(text: str) -> str:
    for secret in _SECRETS:
        if secret and secret in text:
            text = text.replace(secret, "[redacted]")
    return text


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in getattr(record, "fields", {}).items():
            # A field never hides the line's own keys (a webhook's `event` is not the log's).
            data[f"field_{key}" if key in _RESERVED else key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return _scrub(json.dumps(data, default=str, ensure_ascii=False))


class PrettyFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        line = f"{record.levelname.lower():7} {record.getMessage()} {fields}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return _scrub(line)


def configure(level: str = "info", fmt: str = "json", secrets: Iterable[str] = ()) -> None:
    """Install the handler on the root logger; safe to call more than once."""
    _SECRETS[:] = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_tembo", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._tembo = True  # type: ignore[attr-defined]
    handler.setFormatter(JSONFormatter() if fmt == "json" else PrettyFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
