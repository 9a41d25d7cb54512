"""The usage report's formats, from plain rows."""

from __future__ import annotations

import csv
import io
import json

from bot.ledger import FIELDS, LedgerRow
from bot.operator.report import per_repo, render, status_html

ROWS = [
    LedgerRow(
        key="gh-1:dispatch",
        at=0.0,
        repo="acme/web",
        issue=1,
        kind="dispatch",
        outcome="created",
        sender="octo",
        platform="tembo",
        dispatch_id="gh-1",
        session_id="s-1",
        detail='said "no", twice',
    ),
    LedgerRow(
        key="gh-2:refusal", at=60.0, repo="acme/api", issue=2, kind="refusal", outcome="refused"
    ),
]


def test_csv_has_a_header_and_one_line_per_row_with_iso_times() -> None:
    rows = list(csv.reader(io.StringIO(render(ROWS, "csv"))))
    assert rows[0] == list(FIELDS)
    assert rows[1][0] == "1970-01-01T00:00:00Z"
    assert rows[1][-1] == 'said "no", twice'
    assert rows[2][FIELDS.index("installation_id")] == ""


def test_json_is_a_list_of_rows_without_the_idempotency_key() -> None:
    data = json.loads(render(ROWS, "json"))
    assert [d["kind"] for d in data] == ["dispatch", "refusal"]
    assert "key" not in data[0] and data[1]["at"] == "1970-01-01T00:01:00Z"


def test_the_table_lines_up_and_counts_its_rows() -> None:
    lines = render(ROWS, "table").splitlines()
    assert lines[0].startswith("at ")
    assert set(lines[1]) <= {"-", " "}
    assert lines[0].index("repo") == lines[2].index("acme/web")
    assert lines[-1] == "2 rows"


def test_per_repo_counts_kinds_and_the_page_escapes_names() -> None:
    assert per_repo(ROWS) == {"acme/api": {"refusal": 1}, "acme/web": {"dispatch": 1}}
    evil = [LedgerRow(key="k", at=0, repo="<b>x</b>", issue=1, kind="stop", outcome="stopped")]
    assert "&lt;b&gt;" in status_html(evil)
    assert status_html([]) == "<p id='usage'>Nothing in the last day.</p>"
