"""Upgrading a store made by an earlier version keeps its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.adapters.sql import migrations, queries
from bot.adapters.store_sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


async def test_sqlite_upgrade_from_the_first_schema_keeps_jobs_and_sessions(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL)")
    version, sql = migrations("sqlite")[0]
    db.executescript(sql)
    db.execute("INSERT INTO schema_version VALUES (?, 0)", (version,))
    db.execute("INSERT INTO deliveries VALUES ('d1', 'issues', 'labeled', 1.0)")
    db.execute(
        "INSERT INTO jobs (delivery_id, event, payload, lock_key, run_at, created_at, updated_at)"
        " VALUES ('d1', 'issues', '{\"action\": \"labeled\"}', 'o/r#1', 1.0, 1.0, 1.0)"
    )
    db.execute(
        "INSERT INTO sessions VALUES ('gh-d1', 'o/r', 1, 'tembo', 's1', 'https://x/s1', '', 1.0)"
    )
    db.commit()
    db.close()

    store = SQLiteStore(str(path))
    await store.migrate()
    assert await store.schema_version() == migrations("sqlite")[-1][0]
    job = await store.claim("w", 2.0, 30.0)
    assert job is not None
    assert (job.delivery_id, job.kind, job.payload) == ("d1", "delivery", {"action": "labeled"})
    [record] = await store.sessions_for_issue("o/r", 1)
    assert (record.session_id, record.comment_id) == ("s1", None)
    await store.close()


def test_sqlite_claims_and_the_next_due_time_walk_indexes_instead_of_sorting_the_queue(
    tmp_path: Path,
) -> None:
    # A claim runs inside the store's one write transaction: sorting every queued job
    # (17 ms at 15,000) held ingest's group commit back for that long, each claim.
    db = sqlite3.connect(tmp_path / "plan.db")
    for _, sql in migrations("sqlite"):
        for statement in sql.split(";"):
            if statement.strip():
                db.execute(statement)
    params = {"now": 0.0, "priority": 10, "below": 0}
    q = queries("sqlite")
    for name in ("find_claimable", "find_expired", "top_queued_priority", "next_run_at"):
        plan = " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {q[name]}", params))
        assert "SCAN j" not in plan and "SCAN jobs" not in plan, (name, plan)
        if name != "find_expired":  # the few running jobs are sorted; queued ones never
            assert "TEMP B-TREE" not in plan, (name, plan)
    plan = str(db.execute(f"EXPLAIN QUERY PLAN {q['find_claimable']}", params).fetchall())
    assert "jobs_claim (state=? AND priority=? AND run_at<?)" in plan, plan
