"""Structured logs: one JSON object per line (or a readable line with LOG_FORMAT=pretty).

Call sites pass context as keyword fields: `log(logger, "job.done", job_id=3, repo="o/r")`.
Known secret values are replaced before a line is written, whatever the call site passed.
The same `Scrubber` guards every comment the GitHub adapter posts.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import orjson

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


REDACTED = "[redacted]"
MIN_SECRET = 4  # shorter values would redact ordinary words
MIN_FRAGMENT = 16  # one line of a multi-line secret (a PEM body line is 64)
MINTED_KEPT = 512  # tokens and JWTs live an hour at most; the newest are enough


def forms(secret: str) -> set[str]:
    """Every way `secret` may appear in text the app writes: as is, JSON-escaped (a key
    inside a JSON log line or an echoed request body), with its newlines printed as
    `\\n` or `\\r\\n`, URL-encoded, and each long line of a multi-line secret alone
    (a PEM body line is a leak too)."""
    found = {secret, json.dumps(secret)[1:-1], quote(secret, safe="")}
    if "\n" in secret:
        unix = secret.replace("\r\n", "\n")
        found |= {unix, unix.replace("\n", "\\n"), unix.replace("\n", "\\r\\n")}
        found |= {unix.replace("\n", "\r\n"), unix.strip()}
        found |= {
            line.strip()
            for line in unix.splitlines()
            if len(line.strip()) >= MIN_FRAGMENT and not line.startswith("-----")
        }
    return {f for f in found if len(f) >= MIN_SECRET}


class Scrubber:
    """Replaces known secrets in text: the configured ones, and tokens as they are minted
    (installation tokens, App JWTs), which no environment variable holds."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._configured: set[str] = set()
        self._minted: OrderedDict[str, None] = OrderedDict()
        self._ordered: list[str] = []
        self.configure(secrets)

    def configure(self, secrets: Iterable[str]) -> None:
        self._configured = set().union(*(forms(s) for s in secrets if len(s) >= MIN_SECRET))
        self._order()

    def add(self, secret: str) -> None:
        """A secret made at run time (a token as it is minted)."""
        if len(secret) < MIN_SECRET or secret in self._minted:
            return
        for form in forms(secret):
            self._minted[form] = None
        while len(self._minted) > MINTED_KEPT:
            self._minted.popitem(last=False)
        self._order()

    def _order(self) -> None:
        # Longest first, so a secret's whole form goes before a fragment of it.
        self._ordered = sorted(self._configured | set(self._minted), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._ordered:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


# The process's log scrubber; `configure` fills it, `remember_secret` adds minted tokens.
_SCRUBBER = Scrubber()


def remember_secret(secret: str) -> None:
    """Keep a secret made at run time out of every later log line."""
    _SCRUBBER.add(secret)


def _scrub(text: str) -> str:
    return _SCRUBBER(text)


class JSONFormatter(logging.Formatter):
    """One JSON object a line. Every delivery costs a few of these (ingest's, the worker's),
    so the line is built the cheap way: the timestamp's seconds are formatted once per
    second, and orjson encodes (json only for what orjson refuses, such as huge ints)."""

    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        data: dict[str, Any] = {
            "ts": f"{self._stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in getattr(record, "fields", {}).items():
            # A field never hides the line's own keys (a webhook's `event` is not the log's).
            data[f"field_{key}" if key in _RESERVED else key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        try:
            line = orjson.dumps(data, default=str).decode()
        except TypeError:  # not encodable by orjson (an int beyond 64 bits, a non-str key)
            line = json.dumps(data, default=str, ensure_ascii=False)
        return _scrub(line)


class PrettyFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        line = f"{record.levelname.lower():7} {record.getMessage()} {fields}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return _scrub(line)


def configure(level: str = "info", fmt: str = "json", secrets: Iterable[str] = ()) -> None:
    """Install the handler on the root logger; safe to call more than once."""
    _SCRUBBER.configure(secrets)
    # Neither formatter prints the caller's file and line, the thread or the process: not
    # gathering them saves a walk of the stack on every line (the logging cookbook's
    # "Optimization"), a few lines per delivery.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
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
