"""The usage report: the ledger's rows as CSV, JSON or a text table, and per repository
for the status page. Formatting only; the rows come from `Store.usage`."""

from __future__ import annotations

import csv
import html
import io
import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Literal

from bot.ledger import FIELDS, KINDS, LedgerRow

Format = Literal["csv", "json", "table"]
FORMATS: tuple[Format, ...] = ("csv", "json", "table")


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _cells(usage: LedgerRow) -> list[str]:
    row = usage.row()
    row["at"] = _iso(usage.at)
    return ["" if row[name] is None else str(row[name]) for name in FIELDS]


def render(rows: Sequence[LedgerRow], fmt: Format) -> str:
    if fmt == "json":
        return json.dumps([{**u.row(), "at": _iso(u.at)} for u in rows], indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(FIELDS)
        writer.writerows(_cells(u) for u in rows)
        return out.getvalue()
    shown = [n for n in FIELDS if n != "detail"]
    table = [shown] + [
        [c for n, c in zip(FIELDS, _cells(u), strict=True) if n != "detail"] for u in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(shown))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + f"\n{len(rows)} rows\n"


def per_repo(rows: Sequence[LedgerRow]) -> dict[str, Counter[str]]:
    """Rows per repository and kind, repositories in name order."""
    counts: dict[str, Counter[str]] = {}
    for usage in rows:
        counts.setdefault(usage.repo, Counter())[usage.kind] += 1
    return dict(sorted(counts.items()))


def status_html(rows: Sequence[LedgerRow]) -> str:
    """The status page's "last day" table: one line per repository, one column per kind."""
    counts = per_repo(rows)
    if not counts:
        return "<p id='usage'>Nothing in the last day.</p>"
    head = "".join(f"<th>{kind.replace('_', ' ')}</th>" for kind in KINDS)
    body = "".join(
        f"<tr><td>{html.escape(repo)}</td>"
        + "".join(f"<td>{per_kind.get(kind, 0)}</td>" for kind in KINDS)
        + "</tr>"
        for repo, per_kind in counts.items()
    )
    return f"<table id='usage'><tr><th>repository</th>{head}</tr>{body}</table>"
