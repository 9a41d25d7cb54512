"""bench-burst: a burst of labelled issues under both of GitHub's content windows, shared
by several replicas: every session at once, every link comment as fast as the limit
allows and never past it, each exactly once.

1,000 `issues.labeled` deliveries across 50 repositories and 5 installations go, round-robin,
to three real `python -m bot serve` processes sharing one PostgreSQL database (a throwaway
schema on TEST_DATABASE_URL), wired to loopback fakes: GitHub
(tests/support/fakes/github.py behind bench/fakes.py's secondary limit) and Tembo
(tests/support/fakes/tembo.py), served over HTTP on 127.0.0.1 by tests/support/fakes/server.py.

The limit is GitHub's: 80 content-creating calls a minute and 500 an hour for the App as a
whole, with the windows shrunk (by default to 5 s and 37.5 s) so the run takes minutes,
not hours; the app is told the same windows (GITHUB_CONTENT_MINUTE_SECONDS and
…_HOUR_SECONDS) and keeps GitHub's counts.

Reports: time until every session exists; content calls per dispatch; wall time from the
first delivery to the last link comment against the least the two windows allow for all
those calls (calls one after another as early as each window lets them); limit
violations; sessions, link comments and duplicates; the replicas' peak RSS.

    python -m bench.burst [--issues 1000] [--repos 50] [--installations 5] [--replicas 3]
                          [--store postgres|sqlite] [--minute 5] [--hour 37.5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import report
from bench.fakes import SecondaryLimit, SessionTimes
from bench.ingest import postgres_schema
from bench.processes import HOST, Server, child_env, free_port
from tests.support import payloads
from tests.support.app import WEBHOOK_SECRET, KeyPair, signed_headers
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.server import FakeServer, tally
from tests.support.fakes.tembo import FakeTembo

SENDER = "Codertocat"
PER_MINUTE = 80  # GitHub's content-creating requests a minute …
PER_HOUR = 500  # … and an hour, for the App's bot user
SEND_CONCURRENCY = 16
# Goals of the issue.
GOAL_SESSIONS_S = 30.0
GOAL_FRACTION = 0.9
GOAL_CALLS_PER_DISPATCH = 2.0


def plan(issues: int, repos: int, installations: int) -> list[tuple[int, str, int]]:
    """(installation id, repository, issue number) for each labelled issue, interleaved
    across repositories; repository r belongs to installation r mod `installations`."""
    found = []
    for n in range(issues):
        r = n % repos
        installation = r % installations
        found.append((1000 + installation, f"org-{installation}/repo-{r}", n // repos + 1))
    return found


def least_time(calls: int, windows: Sequence[tuple[int, float]]) -> float:
    """When the last of `calls` calls can go at the earliest, each as soon as every
    window has room (what a client that knew the limit exactly could do)."""
    times: list[float] = []
    for k in range(calls):
        at = 0.0
        for limit, seconds in windows:
            if k >= limit:
                at = max(at, times[k - limit] + seconds)
        times.append(at)
    return times[-1] if times else 0.0


async def deliver(
    urls: list[str], issues: list[tuple[int, str, int]]
) -> tuple[float, Counter[str]]:
    """Send every labelled issue, round-robin over `urls`, `SEND_CONCURRENCY` at a time;
    (first send time, statuses)."""
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

        async def send(n: int, body: bytes) -> None:
            async with gate:
                try:
                    response = await client.post(
                        urls[n % len(urls)], content=body, headers=signed_headers(body, "issues")
                    )
                    statuses[str(response.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1

        first = time.monotonic()
        await asyncio.gather(*(send(n, body) for n, body in enumerate(bodies)))
    return first, statuses


def delivery_jobs(database_url: str) -> dict[str, int]:
    """Delivery jobs by state, read from the store the replicas share."""
    query = "SELECT state, COUNT(*) FROM jobs WHERE kind = 'delivery' GROUP BY state"
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            return {state: count for state, count in db.execute(query)}

    async def read() -> dict[str, int]:
        import asyncpg

        url, _, params = database_url.partition("?search_path=")
        connection = await asyncpg.connect(url, server_settings={"search_path": params})
        try:
            return {row[0]: row[1] for row in await connection.fetch(query)}
        finally:
            await connection.close()

    return asyncio.run(read())


@contextlib.contextmanager
def database(store: str, workdir: Path) -> Iterator[str]:
    if store == "sqlite":
        yield f"sqlite:///{workdir / 'burst.db'}"
        return
    with postgres_schema() as (url, why):
        if url is None:
            raise SystemExit(f"bench-burst needs PostgreSQL for --store postgres: {why}")
        yield url


def run(
    *,
    issues: int = 1000,
    repos: int = 50,
    installations: int = 5,
    replicas: int = 3,
    store: str = "postgres",
    minute: float = 5.0,
    hour: float = 37.5,
    per_minute: int = PER_MINUTE,
    per_hour: int = PER_HOUR,
    worker_concurrency: int | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    machine = report.machine()  # before the run: the load is then other work only
    windows = ((per_minute, minute), (per_hour, hour))
    work = plan(issues, repos, installations)
    calls_needed = 2 * issues  # 👀 and the link comment: sessions come first (dispatch.py)
    min_s = least_time(calls_needed, windows)
    timeout = timeout or max(60.0, 2 * min_s + 60)

    keys = KeyPair.generate()
    private, public = keys.private, keys.public
    github = FakeGitHub(public_key=public)
    for _, repo, _ in work:
        github.permissions[(repo, SENDER)] = "write"
    limited = SecondaryLimit(github, windows=windows)
    tembo = FakeTembo()
    timed = SessionTimes(tembo)

    with (
        tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp,
        database(store, Path(tmp)) as database_url,
        FakeServer(limited) as github_server,
        FakeServer(timed) as tembo_server,
    ):
        workdir = Path(tmp)
        servers: list[Server] = []
        for n in range(replicas):
            port = free_port()
            env = child_env(
                APP_ID=github.app_id,
                PRIVATE_KEY=private,
                WEBHOOK_SECRET=WEBHOOK_SECRET,
                GITHUB_API_URL=github_server.url,
                TEMBO_API_KEY=tembo.api_key,
                TEMBO_BASE_URL=tembo_server.url,
                DATABASE_URL=database_url,
                HOST=HOST,
                PORT=str(port),
                GITHUB_CONTENT_PER_MINUTE=str(per_minute),
                GITHUB_CONTENT_PER_HOUR=str(per_hour),
                GITHUB_CONTENT_MINUTE_SECONDS=f"{minute:g}",
                GITHUB_CONTENT_HOUR_SECONDS=f"{hour:g}",
                LOG_LEVEL="warning",
                LOG_FORMAT="json",
                ENV_FILE=str(workdir / ".env"),
            )
            if worker_concurrency is not None:
                env["WORKER_CONCURRENCY"] = str(worker_concurrency)
            servers.append(
                Server(
                    f"tembo-dispatch-{n}",
                    [sys.executable, "-m", "bot", "serve"],
                    port,
                    env,
                    workdir / f"app-{n}.log",
                )
            )
        try:
            for server in servers:
                server.start()
            report.say(
                f"- {issues} issues, {repos} repositories, {installations} installations; "
                f"{replicas} replicas on {store}; limit {per_minute} per {minute:g} s and "
                f"{per_hour} per {hour:g} s for the App; pids {[s.pid for s in servers]}"
            )
            urls = [f"http://{HOST}:{s.port}/webhook" for s in servers]
            first, statuses = asyncio.run(deliver(urls, work))
            ingested = time.monotonic()
            report.say(f"    {issues} deliveries answered in {ingested - first:.1f} s: {statuses}")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                linked = github_server.snapshot(lambda: len(limited.linked_at))
                alive = all(s.proc is not None and s.proc.poll() is None for s in servers)
                if linked >= issues or not alive:
                    break
                time.sleep(0.1)
            # Let the delivery jobs close (done is recorded after the link), then count.
            # Jobs following each session (kind "follow") go on for days: not waited for.
            jobs: dict[str, int] = {}
            while time.monotonic() < deadline + 10:
                jobs = delivery_jobs(database_url)
                if not jobs.get("queued") and not jobs.get("running"):
                    break
                time.sleep(0.2)
            peak_rss = [s.peak_rss_mb() for s in servers]
        finally:
            exit_codes = [s.stop() for s in servers]
        finished = len(limited.linked_at) >= issues
        stopped_well = all(code in (0, None, -15) for code in exit_codes)
        log_tail = (
            None
            if stopped_well and finished
            else "\n".join(f"== {s.name}\n{s.log_tail()}" for s in servers)
        )
        seen = tally(github, github_server, tembo, tembo_server)
        links = github_server.snapshot(lambda: sorted(limited.linked_at.values()))
        created = tembo_server.snapshot(lambda: sorted(timed.created_at))
        calls = github_server.snapshot(lambda: dict(limited.calls.most_common()))
        content = github_server.snapshot(lambda: dict(limited.content_calls))
        contract_errors = github_server.errors + tembo_server.errors

    wall = (links[-1] - first) if len(links) >= issues else None
    sessions_s = (created[-1] - first) if len(created) >= issues else None
    content_total = sum(content.values())
    data: dict[str, Any] = {
        "benchmark": "burst",
        "machine": machine,
        "settings": {
            "issues": issues,
            "repositories": repos,
            "installations": installations,
            "replicas": replicas,
            "store": store,
            "limit": f"{per_minute} per {minute:g} s and {per_hour} per {hour:g} s, per App",
            "worker_concurrency": worker_concurrency or "default",
        },
        "ingest": {"statuses": dict(statuses), "seconds": round(ingested - first, 2)},
        "sessions_s": None if sessions_s is None else round(sessions_s, 2),
        "wall_s": None if wall is None else round(wall, 2),
        "min_s": round(min_s, 2),
        "fraction": None if wall is None else round(min_s / wall, 3),
        "violations": limited.violations,
        "sessions": seen.sessions,
        "linked_issues": len(links),
        "comments": seen.comments,
        "duplicates": seen.duplicates,
        "content_calls": content_total,
        "content_calls_per_dispatch": round(content_total / max(seen.sessions, 1), 3),
        "github_calls_by_kind": calls,
        "content_calls_by_installation": {str(k): v for k, v in sorted(content.items())},
        "peak_rss_mb": [round(r, 1) for r in peak_rss],
        "jobs": jobs,
        "contract_errors": contract_errors[:20],
        "server_exit_codes": exit_codes,
        "seconds": round(time.monotonic() - started, 1),
    }
    if log_tail:
        data["server_log_tail"] = log_tail
    data["goals"] = goals(data)
    return data


def goals(data: dict[str, Any]) -> dict[str, Any]:
    issues = data["settings"]["issues"]
    fraction, sessions_s = data["fraction"], data["sessions_s"]
    return {
        f"every session exists within {GOAL_SESSIONS_S:g} s": {
            "value": sessions_s,
            "met": sessions_s is not None and sessions_s < GOAL_SESSIONS_S,
        },
        f"content calls per dispatch ≤ {GOAL_CALLS_PER_DISPATCH}": {
            "value": data["content_calls_per_dispatch"],
            "met": data["content_calls_per_dispatch"] <= GOAL_CALLS_PER_DISPATCH,
        },
        f"least time / wall time to the last link ≥ {GOAL_FRACTION}": {
            "value": fraction,
            "met": fraction is not None and fraction >= GOAL_FRACTION,
        },
        "limit violations = 0": {"value": data["violations"], "met": data["violations"] == 0},
        f"{issues} sessions, {issues} link comments, 0 duplicates": {
            "value": f"{data['sessions']}, {data['linked_issues']}, {data['duplicates']}",
            "met": data["sessions"] == issues
            and data["linked_issues"] == issues
            and data["duplicates"] == 0,
        },
    }


def render(data: dict[str, Any]) -> str:
    s = data["settings"]
    rows = [
        [
            "issues / repositories / installations",
            f"{s['issues']} / {s['repositories']} / {s['installations']}",
        ],
        ["replicas, store", f"{s['replicas']}, {s['store']}"],
        ["GitHub's limit (scaled)", s["limit"]],
        ["worker concurrency", str(s["worker_concurrency"])],
        ["deliveries answered", json.dumps(data["ingest"]["statuses"])],
        ["ingest of the burst", f"{data['ingest']['seconds']} s"],
        ["first delivery → every session exists", _s(data["sessions_s"])],
        ["first delivery → last link comment", _s(data["wall_s"])],
        ["least the limit allows (2 calls a dispatch)", f"{data['min_s']} s"],
        ["fraction (least / wall)", str(data["fraction"])],
        ["limit violations", str(data["violations"])],
        ["sessions created", f"{data['sessions']} (duplicates {data['duplicates']})"],
        ["issues with their link", str(data["linked_issues"])],
        [
            "content calls per dispatch",
            f"{data['content_calls_per_dispatch']} ({data['content_calls']} in all)",
        ],
        ["peak RSS of each replica", f"{data['peak_rss_mb']} MB"],
        ["delivery jobs", json.dumps(data["jobs"])],
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
    if data.get("server_log_tail"):
        parts.append("server logs:\n" + data["server_log_tail"])
    return "\n\n".join(parts)


def _s(value: float | None) -> str:
    return "did not finish" if value is None else f"{value} s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__)
    parser.add_argument("--issues", type=int, default=1000)
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--installations", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--minute", type=float, default=5.0, help="the minute window, seconds")
    parser.add_argument("--hour", type=float, default=37.5, help="the hour window, seconds")
    parser.add_argument("--per-minute", type=int, default=PER_MINUTE, help="GitHub's 80")
    parser.add_argument("--per-hour", type=int, default=PER_HOUR, help="GitHub's 500")
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
        replicas=args.replicas,
        store=args.store,
        minute=args.minute,
        hour=args.hour,
        per_minute=args.per_minute,
        per_hour=args.per_hour,
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
