"""bench-burst: a burst of labelled issues dispatched exactly once, as fast as GitHub's
secondary limit allows and never past it.

1,000 `issues.labeled` deliveries across 50 repositories and 5 installations go to a real
`python -m bot serve` (worker in-process, SQLite store) wired to loopback fakes: GitHub
(tests/support/fakes/github.py behind bench/fakes.py's secondary limit) and Tembo
(tests/support/fakes/tembo.py), served over HTTP on 127.0.0.1 by tests/support/fakes/server.py.

The limit is GitHub's 80 content-creating calls per installation, in a minute shrunk by
`--scale` (12: 80 per 5 s) so the run takes about a minute; the app's pacing is scaled
alike (GITHUB_CONTENT_PER_MINUTE = 75 × scale, its default margin under 80).

Reports: wall time from the first delivery to the last link comment, as a fraction of the
least the limit allows (each dispatch needs three content calls: 👀, the status comment,
its edit to the link; at most `limit / window` a second per installation); secondary-limit
violations; sessions; GitHub calls per dispatch; the server's peak RSS.

    python -m bench.burst [--issues 1000] [--repos 50] [--installations 5] [--scale 12]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench import report
from bench.fakes import SecondaryLimit
from bench.processes import HOST, Server, child_env, free_port
from tests.support import payloads
from tests.support.app import WEBHOOK_SECRET, signed_headers
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.server import FakeServer, tally
from tests.support.fakes.tembo import FakeTembo

SENDER = "Codertocat"
CONTENT_CALLS_PER_DISPATCH = 2  # 👀 reaction and the status comment with the link
GITHUB_LIMIT = 80  # content-creating requests per minute per installation
APP_MARGIN = 75 / 80  # the app's default pacing (75 a minute) under that limit
SEND_CONCURRENCY = 16
# Goals of issue 9.
GOAL_FRACTION = 0.9
GOAL_CALLS_PER_DISPATCH = 4.0
GOAL_RSS_MB = 100.0


def keys() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def plan(issues: int, repos: int, installations: int) -> list[tuple[int, str, int]]:
    """(installation id, repository, issue number) for each labelled issue, interleaved
    across repositories; repository r belongs to installation r mod `installations`."""
    found = []
    for n in range(issues):
        r = n % repos
        installation = r % installations
        found.append((1000 + installation, f"org-{installation}/repo-{r}", n // repos + 1))
    return found


async def deliver(url: str, issues: list[tuple[int, str, int]]) -> tuple[float, Counter[str]]:
    """Send every labelled issue, `SEND_CONCURRENCY` at a time; (first send time, statuses)."""
    bodies = [
        json.dumps(
            payloads.labeled(
                repo=repo, number=number, installation=installation, title=f"Bug {number}"
            )
        ).encode()
        for installation, repo, number in issues
    ]
    statuses: Counter[str] = Counter()
    gate = asyncio.Semaphore(SEND_CONCURRENCY)
    async with httpx.AsyncClient(trust_env=False, timeout=30.0) as client:

        async def send(body: bytes) -> None:
            async with gate:
                try:
                    response = await client.post(
                        url, content=body, headers=signed_headers(body, "issues")
                    )
                    statuses[str(response.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1

        first = time.monotonic()
        await asyncio.gather(*(send(body) for body in bodies))
    return first, statuses


def job_states(database: Path) -> dict[str, dict[str, int]]:
    """Jobs by kind (delivery, follow, …) and state."""
    found: dict[str, dict[str, int]] = {}
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as db:
        for kind, state, count in db.execute(
            "SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state"
        ):
            found.setdefault(kind, {})[state] = count
    return found


def run(
    *,
    issues: int = 1000,
    repos: int = 50,
    installations: int = 5,
    scale: float = 12.0,
    worker_concurrency: int | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    machine = report.machine()  # before the run: the load is then other work only
    window = 60.0 / scale
    pacing = GITHUB_LIMIT * APP_MARGIN * scale
    work = plan(issues, repos, installations)
    per_installation = Counter(installation for installation, _, _ in work)
    needed = CONTENT_CALLS_PER_DISPATCH * max(per_installation.values())
    min_rate_s = needed / (GITHUB_LIMIT / window)
    min_burst_s = (math.ceil(needed / GITHUB_LIMIT) - 1) * window
    timeout = timeout or max(60.0, 4 * min_rate_s + 30)

    private, public = keys()
    github = FakeGitHub(public_key=public)
    for _, repo, _ in work:
        github.permissions[(repo, SENDER)] = "write"
    limited = SecondaryLimit(github, limit=GITHUB_LIMIT, window=window)
    tembo = FakeTembo()

    with (
        tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp,
        FakeServer(limited) as github_server,
        FakeServer(tembo) as tembo_server,
    ):
        workdir = Path(tmp)
        database = workdir / "burst.db"
        port = free_port()
        env = child_env(
            APP_ID=github.app_id,
            PRIVATE_KEY=private,
            WEBHOOK_SECRET=WEBHOOK_SECRET,
            GITHUB_API_URL=github_server.url,
            TEMBO_API_KEY=tembo.api_key,
            TEMBO_BASE_URL=tembo_server.url,
            DATABASE_URL=f"sqlite:///{database}",
            HOST=HOST,
            PORT=str(port),
            GITHUB_CONTENT_PER_MINUTE=f"{pacing:g}",
            LOG_LEVEL="info",
            LOG_FORMAT="json",
            ENV_FILE=str(workdir / ".env"),
        )
        if worker_concurrency is not None:
            env["WORKER_CONCURRENCY"] = str(worker_concurrency)
        server = Server(
            "tembo-dispatch", [sys.executable, "-m", "bot", "serve"], port, env, workdir / "app.log"
        )
        server.start()
        try:
            report.say(
                f"- {issues} issues, {repos} repositories, {installations} installations; "
                f"limit {GITHUB_LIMIT} per {window:g} s per installation; app pacing "
                f"{pacing:g}/min; server pid {server.pid}"
            )
            first, statuses = asyncio.run(deliver(f"http://{HOST}:{port}/webhook", work))
            ingested = time.monotonic()
            report.say(f"    {issues} deliveries answered in {ingested - first:.1f} s: {statuses}")
            deadline = time.monotonic() + timeout
            linked = 0
            while time.monotonic() < deadline:
                linked = github_server.snapshot(lambda: len(limited.linked_at))
                if linked >= issues or server.proc is None or server.proc.poll() is not None:
                    break
                time.sleep(0.1)
            # Let the delivery jobs close (done is recorded after the link), then count.
            # Jobs following each session (kind "follow") go on for days: not waited for.
            states: dict[str, dict[str, int]] = {}
            while time.monotonic() < deadline + 10:
                states = job_states(database)
                deliveries = states.get("delivery", {})
                if not deliveries.get("queued") and not deliveries.get("running"):
                    break
                time.sleep(0.1)
            peak_rss = server.peak_rss_mb()
        finally:
            exit_code = server.stop()
        finished = len(limited.linked_at) >= issues
        stopped_well = exit_code in (0, None, -15)  # uvicorn re-raises SIGTERM once it is done
        log_tail = server.log_tail() if not (stopped_well and finished) else None
        seen = tally(github, github_server, tembo, tembo_server)
        times = github_server.snapshot(lambda: sorted(limited.linked_at.values()))
        calls = github_server.snapshot(lambda: dict(limited.calls.most_common()))
        content = github_server.snapshot(lambda: dict(limited.content_calls))
        contract_errors = github_server.errors + tembo_server.errors

    wall = (times[-1] - first) if len(times) >= issues else None
    total_calls = sum(calls.values())
    follow_edits = sum(n for kind, n in calls.items() if kind.endswith("(after the link)"))
    data: dict[str, Any] = {
        "benchmark": "burst",
        "machine": machine,
        "settings": {
            "issues": issues,
            "repositories": repos,
            "installations": installations,
            "limit": f"{GITHUB_LIMIT} content-creating calls per {window:g} s per installation",
            "scale": scale,
            "app_pacing_per_minute": pacing,
            "worker_concurrency": worker_concurrency or "default",
        },
        "ingest": {"statuses": dict(statuses), "seconds": round(ingested - first, 2)},
        "wall_s": None if wall is None else round(wall, 2),
        "min_s": round(min_rate_s, 2),
        "min_burst_s": round(min_burst_s, 2),
        "fraction": None if wall is None else round(min_rate_s / wall, 3),
        "violations": limited.violations,
        "sessions": seen.sessions,
        "linked_issues": len(times),
        "duplicates": seen.duplicates,
        "github_calls": total_calls,
        # The calls a dispatch makes, up to its link; edits of the status comment that
        # follow the session afterwards are counted apart.
        "github_calls_per_dispatch": round((total_calls - follow_edits) / max(seen.sessions, 1), 2),
        "follow_edits": follow_edits,
        "github_calls_by_kind": calls,
        "content_calls_by_installation": {str(k): v for k, v in sorted(content.items())},
        "peak_rss_mb": round(peak_rss, 1),
        "jobs": states,
        "contract_errors": contract_errors[:20],
        "server_exit_code": exit_code,
        "seconds": round(time.monotonic() - started, 1),
    }
    if log_tail:
        data["server_log_tail"] = log_tail
    data["goals"] = goals(data)
    return data


def goals(data: dict[str, Any]) -> dict[str, Any]:
    issues = data["settings"]["issues"]
    fraction = data["fraction"]
    return {
        "fraction of the least time ≥ 0.9": {
            "value": fraction,
            "met": fraction is not None and fraction >= GOAL_FRACTION,
        },
        "secondary-limit violations = 0": {
            "value": data["violations"],
            "met": data["violations"] == 0,
        },
        f"sessions = {issues}": {
            "value": data["sessions"],
            "met": data["sessions"] == issues and data["duplicates"] == 0,
        },
        "GitHub calls per dispatch ≤ 4": {
            "value": data["github_calls_per_dispatch"],
            "met": data["github_calls_per_dispatch"] <= GOAL_CALLS_PER_DISPATCH,
        },
        "peak RSS ≤ 100 MB": {
            "value": data["peak_rss_mb"],
            "met": data["peak_rss_mb"] <= GOAL_RSS_MB,
        },
    }


def render(data: dict[str, Any]) -> str:
    s = data["settings"]
    rows = [
        [
            "issues / repositories / installations",
            f"{s['issues']} / {s['repositories']} / {s['installations']}",
        ],
        ["secondary limit (scaled)", s["limit"]],
        ["app pacing (GITHUB_CONTENT_PER_MINUTE)", f"{s['app_pacing_per_minute']:g}"],
        ["worker concurrency", str(s["worker_concurrency"])],
        ["deliveries answered", json.dumps(data["ingest"]["statuses"])],
        ["ingest of the burst", f"{data['ingest']['seconds']} s"],
        ["wall time, first delivery → last link", _s(data["wall_s"])],
        ["least the limit allows", f"{data['min_s']} s"],
        ["fraction (least / wall)", str(data["fraction"])],
        ["secondary-limit violations", str(data["violations"])],
        ["sessions created", f"{data['sessions']} (duplicates {data['duplicates']})"],
        ["issues with their link", str(data["linked_issues"])],
        [
            "GitHub calls per dispatch",
            f"{data['github_calls_per_dispatch']} (+ {data['follow_edits']} later edits;"
            f" {data['github_calls']} calls in all)",
        ],
        ["peak RSS of the server", f"{data['peak_rss_mb']} MB"],
        ["jobs", json.dumps(data["jobs"])],
    ]
    parts = [report.table(["measure", "value"], rows)]
    parts.append(
        report.table(
            ["GitHub call", "count"], [[k, v] for k, v in data["github_calls_by_kind"].items()]
        )
    )
    parts.append(
        "\n".join(
            f"- {goal}: {g['value']} {'met' if g['met'] else 'NOT met'}"
            for goal, g in data["goals"].items()
        )
    )
    if data["contract_errors"]:
        parts.append("contract errors:\n" + "\n".join(data["contract_errors"]))
    return "\n\n".join(parts)


def _s(value: float | None) -> str:
    return "did not finish" if value is None else f"{value} s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__)
    parser.add_argument("--issues", type=int, default=1000)
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--installations", type=int, default=5)
    parser.add_argument("--scale", type=float, default=12.0, help="minutes shrunk this much")
    parser.add_argument(
        "--worker-concurrency", type=int, help="WORKER_CONCURRENCY (default: the app's)"
    )
    parser.add_argument("--timeout", type=float, help="seconds to wait for the last link")
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    args = parser.parse_args(argv)
    data = run(
        issues=args.issues,
        repos=args.repos,
        installations=args.installations,
        scale=args.scale,
        worker_concurrency=args.worker_concurrency,
        timeout=args.timeout,
    )
    data["command"] = "python -m bench.burst " + " ".join(sys.argv[1:] if argv is None else argv)
    path = report.write("burst", data, args.results)
    print(f"bench-burst on {report.describe_machine(data['machine'])}\n")
    print(render(data))
    print(f"\n{data['seconds']:.0f} s; results in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
