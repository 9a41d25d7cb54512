"""Rows of the sessions and usage tables as values, and values as rows: the pure part
both stores share. Each backend's `queries.sql` names the columns in the order used here
(the SELECTs of `sessions_for_issue` and `usage_since`; the INSERTs' parameters), so a
store only runs its query and hands the row over. No I/O."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol

from bot.ledger import LedgerRow
from bot.ports import SessionRecord, SessionView


class Row(Protocol):
    """A result row, read by column position (sqlite3 tuples, asyncpg records)."""

    def __getitem__(self, index: int, /) -> Any: ...


def _columns(row: Row, count: int) -> list[Any]:
    return [row[i] for i in range(count)]


def session_params(record: SessionRecord) -> dict[str, Any]:
    """`insert_session`'s parameters, in its order."""
    return {
        "dispatch_id": record.dispatch_id,
        "repo": record.repo,
        "issue": record.issue,
        "platform": record.platform,
        "session_id": record.session_id,
        "url": record.url,
        "status": record.status,
        "created_at": record.created_at,
        "comment_id": record.comment_id,
        "installation_id": record.installation_id,
        "view": view_text(record.view),
    }


def view_text(view: SessionView) -> str:
    return json.dumps(view.to_json())


def session_record(row: Row) -> SessionRecord:
    """A `sessions_for_issue` row."""
    dispatch_id, repo, issue, platform, session_id, url, created_at, status, *rest = _columns(
        row, 11
    )
    comment_id, installation_id, view = rest
    return SessionRecord(
        dispatch_id=dispatch_id,
        repo=repo,
        issue=issue,
        platform=platform,
        session_id=session_id,
        url=url,
        created_at=created_at,
        status=status,
        comment_id=comment_id,
        installation_id=installation_id,
        view=SessionView.from_json(json.loads(view)),
    )


def usage_params(usage: LedgerRow) -> dict[str, Any]:
    """`insert_usage`'s parameters, in its order."""
    return {"key": usage.key, **usage.row()}


def ledger_row(row: Row) -> LedgerRow:
    """A `usage_since` row."""
    key, at, installation_id, repo, issue, sender, platform, kind, *rest = _columns(row, 13)
    dispatch_id, session_id, outcome, pr_url, detail = rest
    return LedgerRow(
        key=key,
        at=at,
        installation_id=installation_id,
        repo=repo,
        issue=issue,
        sender=sender,
        platform=platform,
        kind=kind,
        dispatch_id=dispatch_id,
        session_id=session_id,
        outcome=outcome,
        pr_url=pr_url,
        detail=detail,
    )


def recent_deliveries(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """`recent_deliveries` rows, as the status page shows them."""
    return [
        {"delivery_id": r[0], "event": r[1], "action": r[2], "received_at": r[3], "state": r[4]}
        for r in rows
    ]
