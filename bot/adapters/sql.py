"""SQL kept in `.sql` files: numbered migrations and named queries, per backend."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def _folder(backend: str) -> resources.abc.Traversable:
    return resources.files("bot.adapters").joinpath("schema", backend)


def queries(backend: str) -> dict[str, str]:
    """The `-- name: x` blocks of `schema/<backend>/queries.sql`."""
    text = _folder(backend).joinpath("queries.sql").read_text()
    parts = _NAME.split(text)
    return {name: sql.strip() for name, sql in zip(parts[1::2], parts[2::2], strict=True)}


def migrations(backend: str) -> list[tuple[int, str]]:
    """`(version, sql)` for each `NNNN_name.sql`, in order."""
    found = []
    for entry in _folder(backend).iterdir():
        match = re.match(r"^(\d{4})_\w+\.sql$", entry.name)
        if match:
            found.append((int(match[1]), entry.read_text()))
    return sorted(found)
