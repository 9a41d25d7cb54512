"""The benchmarks of bench/ run once at a tiny size so they never rot.

Correctness only — no errors, every 202 on disk, sessions == issues, no secondary-limit
violation — never timing: the figures belong in bench/README.md, not in a test.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from bench import burst, ingest

pytestmark = pytest.mark.slow


def results(folder: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / f"{name}.json").read_text())
    return data


def assert_clean(name: str, entry: dict[str, Any]) -> None:
    runs = [*entry["runs"], entry["half_peak"]]
    for run in runs:
        assert run["answered"] > 0, (name, run)
        assert run["errors"] == 0, (name, run["error_kinds"])
        assert run["backlog_at_end"] == 0 or run["mode"] == "open", (name, run)
    assert entry["exit_code"] in (0, -15), (name, entry.get("log_tail"))


def test_bench_ingest_runs_clean_against_tembo_and_the_bare_ceiling(tmp_path: Path) -> None:
    argv = ["--levels=1,4", "--duration=0.5", "--warmup=0.2", "--variants=4"]
    argv += ["--targets=serve,serve-idle,serve-pg2,sqlite,postgres,bare,null"]
    argv += [f"--results={tmp_path}"]
    assert ingest.main(argv) == 0
    data = results(tmp_path, "ingest")
    targets = data["targets"]
    for name in (ingest.SERVE, ingest.SERVE_IDLE, ingest.TEMBO, ingest.BARE):
        assert_clean(name, targets[name])
    for name in (ingest.SERVE, ingest.TEMBO):
        # Each 202 was a durable write: the store holds exactly the deliveries it acknowledged.
        assert targets[name]["stored"] == targets[name]["accepted"] > 0, name
    assert targets[ingest.NULL]["runs"][0]["errors"] == 0
    if "runs" in targets[ingest.TEMBO_PG]:
        assert_clean(ingest.TEMBO_PG, targets[ingest.TEMBO_PG])
    serve_pg = targets[ingest.SERVE_PG2]
    if "runs" in serve_pg:  # two ingest processes and a worker process on PostgreSQL
        assert_clean(ingest.SERVE_PG2, serve_pg)
        assert serve_pg["stored"] == serve_pg["accepted"] > 0
        assert set(data["ratios"]["serve-pg2/bare"]) == {"c=1", "c=4", "peak"}
    assert set(data["ratios"]["sqlite/bare"]) == {"c=1", "c=4", "peak"}


def test_bench_ingest_runs_clean_against_probot(tmp_path: Path) -> None:
    argv = ["--levels=1,4", "--duration=0.5", "--warmup=0.2", "--variants=4"]
    argv += ["--targets=probot", f"--results={tmp_path}"]
    assert ingest.main(argv) == 0
    entry = results(tmp_path, "ingest")["targets"][ingest.PROBOT]
    if "skipped" in entry:
        pytest.skip(f"!!! Probot target of bench-ingest NOT RUN: {entry['skipped']} !!!")
    assert_clean(ingest.PROBOT, entry)


def test_bench_burst_dispatches_each_issue_once_within_both_windows() -> None:
    # Two replicas on PostgreSQL (skipped, saying why, when none answers), windows shrunk
    # so 40 content calls need several of each.
    argv = ["--issues=20", "--repos=4", "--installations=2", "--replicas=2", "--timeout=60"]
    argv += ["--minute=0.5", "--hour=2", "--per-minute=8", "--per-hour=25"]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            code = burst.main([*argv, f"--results={tmp}"])
        except SystemExit as exc:
            pytest.skip(f"!!! bench-burst NOT RUN: {exc} !!!")
        assert code == 0
        data = results(Path(tmp), "burst")
    assert data["ingest"]["statuses"] == {"202": 20}
    assert data["sessions"] == 20
    assert data["duplicates"] == 0
    assert data["linked_issues"] == 20
    assert data["violations"] == 0
    assert data["content_calls_per_dispatch"] == 2.0
    assert data["jobs"] == {"done": 20}
    assert data["contract_errors"] == []
    assert data["wall_s"] is not None and data["sessions_s"] is not None
