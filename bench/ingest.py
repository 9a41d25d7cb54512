"""bench-ingest: webhook acknowledgements per second and their latency, in one run, for
tembo-dispatch against its ceiling and its peer:

- `serve (sqlite), triggering`: the default `python -m bot serve` as a user runs it
  (SQLite; ingest and the worker in one process, the worker dispatching every delivery
  to loopback fakes of GitHub and Tembo); `… not triggering`: deliveries the cached
  configuration proves cannot trigger;
- `serve (postgres, N ingest + worker)`: the same command on PostgreSQL, where it runs a
  supervisor, N ingest processes (`--workers N`, N = 1 and 2) and a worker process;
- `tembo-dispatch (sqlite)`: `serve --no-worker`, ingest alone (and
  `tembo-dispatch (postgres)`, only when asked for with `--targets`);
- `bare starlette`: the same stack and uvicorn settings, HMAC check and 202, nothing else
  (bench/bare.py) — the ceiling;
- `probot`: a minimal Probot app for the same events on the machine's Node.js
  (bench/probot/) — the peer a GitHub App author would otherwise choose;
- `generator ceiling`: the generator against a canned responder, to show it is not
  the bottleneck.

The load generator (bench/loadgen.py) is a separate process, the same for every target:
closed loop at each concurrency level, then an open loop at half of each target's peak.
The defaults take about 2.5 minutes on 2 cores.

    python -m bench.ingest [--levels 16,64] [--duration 4] [--targets …] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import report
from bench.loadgen import MEASURING
from bench.processes import HOST, ROOT, Server, child_env, free_port
from bot.serve import STOP_GRACE

SECRET = "bench-webhook-secret"
PROBOT_DIR = Path(__file__).resolve().parent / "probot"
SERVE = "serve (sqlite), triggering"
SERVE_IDLE = "serve (sqlite), not triggering"
SERVE_PG = "serve (postgres, 1 ingest + worker)"
SERVE_PG2 = "serve (postgres, 2 ingest + worker)"
TEMBO = "tembo-dispatch (sqlite)"
TEMBO_PG = "tembo-dispatch (postgres)"
BARE = "bare starlette"
PROBOT = "probot"
NULL = "generator ceiling"
ALL_TARGETS = (SERVE, SERVE_IDLE, SERVE_PG, SERVE_PG2, TEMBO, TEMBO_PG, BARE, PROBOT, NULL)
SHORT = {
    SERVE: "serve",
    SERVE_IDLE: "serve-idle",
    SERVE_PG: "serve-pg",
    SERVE_PG2: "serve-pg2",
    TEMBO: "sqlite",
    TEMBO_PG: "postgres",
    BARE: "bare",
    PROBOT: "probot",
    NULL: "null",
}
# Measured first and alone, each stopped before the next starts: a worker still working
# through its queue would otherwise take CPU from whatever is measured after it.
ALONE = (SERVE, SERVE_IDLE, SERVE_PG, SERVE_PG2)
# `--no-worker` on PostgreSQL only when asked for: the default run stays under 3 minutes.
DEFAULT_TARGETS = tuple(t for t in ALL_TARGETS if t != TEMBO_PG)
# The default command, on PostgreSQL: the supervisor with separate ingest processes
# (`--workers N`) and one worker process.
SERVE_ON_POSTGRES = {SERVE_PG: 1, SERVE_PG2: 2}
# Each of these is the default `serve` on triggering deliveries; the goals are checked
# for each that ran.
SERVES = (SERVE, SERVE_PG, SERVE_PG2)
# Goals of issue 9.
GOAL_VS_BARE = 0.8
GOAL_VS_PROBOT = 1.5
GOAL_P99_HALF_PEAK_MS = 25.0
DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"  # as the store tests


# -- targets ------------------------------------------------------------------------


def tembo_server(
    port: int,
    workdir: Path,
    database_url: str,
    name: str,
    tree: Path = ROOT,
    extra_env: dict[str, str] | None = None,
) -> Server:
    """`python -m bot serve --no-worker`, from `tree` (another checkout, to measure a change)."""
    env = child_env(
        WEBHOOK_SECRET=SECRET,
        DATABASE_URL=database_url,
        HOST=HOST,
        PORT=str(port),
        LOG_LEVEL="info",
        LOG_FORMAT="json",
        ENV_FILE=str(workdir / ".env"),
    )
    env.update(extra_env or {})
    argv = [sys.executable, "-m", "bot", "serve", "--no-worker"]
    return Server(name, argv, port, env, workdir / f"{SHORT[name]}.log", cwd=tree)


def serve_server(
    port: int,
    workdir: Path,
    stack: contextlib.ExitStack,
    name: str,
    tree: Path = ROOT,
    database_url: str | None = None,
    ingest_processes: int = 1,
) -> Server:
    """`python -m bot serve` as a user runs it, the worker dispatching to loopback fakes of
    GitHub and Tembo: on SQLite (the default) one process, ingest and the worker sharing
    it; on PostgreSQL a supervisor, `--workers N` ingest processes and a worker process."""
    from tests.support.app import KeyPair
    from tests.support.fakes.github import FakeGitHub
    from tests.support.fakes.server import FakeServer
    from tests.support.fakes.tembo import FakeTembo

    keys = KeyPair.generate()
    private, public = keys.private, keys.public
    github = FakeGitHub(public_key=public)
    for i in range(50):
        github.permissions[(f"bench-org-{i % 5}/repo-{i}", "Codertocat")] = "write"
    tembo = FakeTembo()
    github_server = stack.enter_context(FakeServer(github))
    tembo_server = stack.enter_context(FakeServer(tembo))
    env = child_env(
        APP_ID=github.app_id,
        PRIVATE_KEY=private,
        WEBHOOK_SECRET=SECRET,
        GITHUB_API_URL=github_server.url,
        TEMBO_API_KEY=tembo.api_key,
        TEMBO_BASE_URL=tembo_server.url,
        DATABASE_URL=database_url or f"sqlite:///{workdir / (SHORT[name] + '.db')}",
        HOST=HOST,
        PORT=str(port),
        # GitHub's content budget out of the way (bench-burst measures it): at its 500 an
        # hour the worker would park every job after the first 250 and leave ingest alone.
        GITHUB_CONTENT_PER_MINUTE="1000000",
        GITHUB_CONTENT_PER_HOUR="1000000",
        LOG_LEVEL="info",
        LOG_FORMAT="json",
        ENV_FILE=str(workdir / ".env"),
    )
    argv = [sys.executable, "-m", "bot", "serve", "--workers", str(ingest_processes)]
    return Server(name, argv, port, env, workdir / f"{SHORT[name]}.log", cwd=tree)


def bare_server(port: int, workdir: Path) -> Server:
    argv = [sys.executable, "-m", "bench.bare", "--port", str(port), "--secret", SECRET]
    return Server(BARE, argv, port, child_env(), workdir / "bare.log")


def probot_server(port: int, workdir: Path, private_key: str) -> Server:
    env = child_env(
        APP_ID="12345",
        PRIVATE_KEY=private_key,
        WEBHOOK_SECRET=SECRET,
        HOST=HOST,
        PORT=str(port),
        LOG_LEVEL="info",
        LOG_FORMAT="json",  # Probot's production setting; the default pretty printer is slower
        NODE_ENV="production",
    )
    argv = [str(PROBOT_DIR / "node_modules" / ".bin" / "probot"), "run", "./index.js"]
    return Server(PROBOT, argv, port, env, workdir / "probot.log", cwd=PROBOT_DIR)


def null_server(port: int, workdir: Path) -> Server:
    argv = [sys.executable, "-m", "bench.loadgen", "--null-server", str(port)]
    return Server(NULL, argv, port, child_env(), workdir / "null.log")


def probot_unavailable(install: bool) -> str | None:
    """Why Probot cannot run here, or None when it can (running `npm ci` if asked)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "node or npm is not installed"
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()
    major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
    if (major, minor) < (20, 18):
        return f"Probot 14 needs Node.js ≥ 20.18, this machine has {version}"
    if not (PROBOT_DIR / "node_modules" / ".bin" / "probot").exists():
        if not install:
            return "bench/probot/node_modules is missing: run `npm ci` in bench/probot"
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=PROBOT_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            return f"`npm ci` failed: {done.stderr.strip()[-300:]}"
    return None


@contextlib.contextmanager
def postgres_schema(tree: Path = ROOT) -> Iterator[tuple[str | None, str | None]]:
    """(DATABASE_URL, None) for a throwaway schema, dropped afterwards, when the Postgres
    store can be measured; (None, why) when it cannot."""
    if not (tree / "bot" / "adapters" / "store_postgres.py").exists():
        yield None, "bot/adapters/store_postgres.py does not exist yet"
        return
    url = os.environ.get("TEST_DATABASE_URL", "").strip() or DEFAULT_TEST_DATABASE_URL
    schema = f"bench_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        import asyncpg

        connection = await asyncio.wait_for(asyncpg.connect(url, timeout=3), 5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    try:
        asyncio.run(admin(f"CREATE SCHEMA {schema}"))
    except Exception as exc:
        yield None, f"no PostgreSQL answers at TEST_DATABASE_URL ({type(exc).__name__})"
        return
    try:
        # asyncpg passes unknown URL parameters to the server as settings.
        yield f"{url}{'&' if '?' in url else '?'}search_path={schema}", None
    finally:
        asyncio.run(admin(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


def rsa_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


# -- one run of the generator -------------------------------------------------------


def generate(
    url: str,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    expect: str,
    variants: int,
    watch_pid: int,
    rate: float | None = None,
    measuring: Callable[[], object] | None = None,
    triggering: bool = True,
) -> dict[str, Any]:
    """One run of bench/loadgen.py; `measuring()` is called when its measured part starts."""
    argv = [
        sys.executable,
        "-m",
        "bench.loadgen",
        f"--url={url}",
        f"--secret={SECRET}",
        f"--concurrency={concurrency}",
        f"--duration={duration}",
        f"--warmup={warmup}",
        f"--expect={expect}",
        f"--variants={variants}",
        f"--watch-pid={watch_pid}",
    ]
    if rate is not None:
        argv.append(f"--rate={rate:.1f}")
    if not triggering:
        argv.append("--not-triggering")
    with subprocess.Popen(
        argv,
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        if measuring is not None and proc.stderr.readline().strip() == MEASURING:
            measuring()
        try:
            out, err = proc.communicate(timeout=warmup + duration + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{err[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    return result


def read_store(database_url: str, query: str) -> list[tuple[Any, ...]]:
    """Rows of `query` on the target's store (SQLite file or PostgreSQL schema)."""
    if database_url.startswith("postgresql"):

        async def fetch() -> list[tuple[Any, ...]]:
            import asyncpg

            connection = await asyncio.wait_for(asyncpg.connect(database_url, timeout=3), 5)
            try:
                return [tuple(row) for row in await connection.fetch(query)]
            finally:
                await connection.close()

        return asyncio.run(fetch())
    path = database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [tuple(row) for row in db.execute(query)]


def stored_deliveries(database_url: str) -> int:
    return int(read_store(database_url, "SELECT COUNT(*) FROM deliveries")[0][0])


def job_states(database_url: str) -> dict[str, int]:
    """How far the worker got: jobs by state once the target has stopped."""
    rows = read_store(database_url, "SELECT state, COUNT(*) FROM jobs GROUP BY state")
    return {str(state): int(n) for state, n in rows}


PROFILE_RATE = 250


def profile(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy, sampling the server while the generator runs (collapsed stacks)."""
    spy = shutil.which("py-spy")
    if spy is None:
        report.say("! --profile: py-spy is not on PATH (pip install py-spy); no profile taken")
        return None
    return subprocess.Popen(
        [
            *(spy, "record", "--pid", str(pid), "--duration", str(seconds)),
            *("--rate", str(PROFILE_RATE), "--format", "raw", "--threads", "--nonblocking"),
            *("--output", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?):(?P<line>\d+)\)$")


def summarize_profile(path: Path, seconds: float, rate: int, top: int = 12) -> dict[str, Any]:
    """Per thread: how busy it was (non-idle samples over possible samples) and the lines
    it spent its samples on (self time), from py-spy's raw output with --threads."""
    threads: dict[str, Counter[str]] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        root, *frames = stack.split(";")
        thread = root.split(": ", 1)[-1]
        leaf = frames[-1] if frames else root
        match = FRAME.match(leaf)
        if match is not None:
            leaf = f"{match['function']} ({match['file'].rsplit('/', 1)[-1]}:{match['line']})"
        threads.setdefault(thread, Counter())[leaf] += int(count)
    possible = seconds * rate
    out: dict[str, Any] = {}
    for thread, lines in sorted(threads.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(lines.values())
        out[thread] = {
            "busy": round(total / possible, 3),
            "self": [(where, round(n / total, 3)) for where, n in lines.most_common(top)],
        }
    return out


# -- the run ------------------------------------------------------------------------


def wait_started(server: Server, apps: int, timeout: float = 60.0) -> None:
    """Until `apps` processes of the server have logged `app.started` (one per create_app:
    each ingest process and the worker's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if server.log_path.read_text(errors="replace").count('"app.started"') >= apps:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{server.name}: {apps} processes not started in {timeout:.0f}s")


@dataclass
class Live:
    """A target that is up: its server, where to post, what it answers."""

    name: str
    server: Server
    url: str
    expect: str
    database_url: str | None = None
    entry: dict[str, Any] = field(default_factory=dict)


def start_target(
    name: str,
    workdir: Path,
    stack: contextlib.ExitStack,
    *,
    install_probot: bool,
    tembo_tree: Path,
    tembo_env: dict[str, str] | None,
) -> Live | str:
    """The target, started (and stopped by `stack`), or why it cannot run here."""
    database_url = None
    expect = "202"
    if name in (SERVE, SERVE_IDLE):
        database_url = f"sqlite:///{workdir / (SHORT[name] + '.db')}"
        server = serve_server(free_port(), workdir, stack, name, tembo_tree)
        expect = "202" if name == SERVE else "200,202"
    elif name in SERVE_ON_POSTGRES:
        database_url, why = stack.enter_context(postgres_schema(tembo_tree))
        if database_url is None:
            return str(why)
        processes = SERVE_ON_POSTGRES[name]
        port = free_port()
        server = serve_server(port, workdir, stack, name, tembo_tree, database_url, processes)
    elif name == TEMBO:
        database_url = f"sqlite:///{workdir / 'ingest.db'}"
        server = tembo_server(free_port(), workdir, database_url, name, tembo_tree, tembo_env)
    elif name == TEMBO_PG:
        database_url, why = stack.enter_context(postgres_schema(tembo_tree))
        if database_url is None:
            return str(why)
        server = tembo_server(free_port(), workdir, database_url, name, tembo_tree, tembo_env)
    elif name == BARE:
        server = bare_server(free_port(), workdir)
    elif name == PROBOT:
        why = probot_unavailable(install_probot)
        if why is not None:
            return why
        server = probot_server(free_port(), workdir, rsa_key())
        expect = "200"
    elif name == NULL:
        server = null_server(free_port(), workdir)
    else:
        raise ValueError(f"unknown target {name!r}; known: {', '.join(ALL_TARGETS)}")
    stack.callback(server.stop)
    server.start()
    if name in ALONE:
        # The supervisor listens before its children have started: wait for every one
        # (N ingest processes, and a worker process on PostgreSQL), or the first run
        # would time their start-up instead of their answers.
        processes = SERVE_ON_POSTGRES.get(name, 0)
        wait_started(server, processes + 1 if processes else 1)
    path = "/api/github/webhooks" if name == PROBOT else "/webhook"
    live = Live(name, server, f"http://{HOST}:{server.port}{path}", expect, database_url)
    live.entry = {"url_path": path, "expect": expect, "runs": []}
    report.say(f"- {name}: pid {server.pid}, port {server.port}")
    return live


def run(
    *,
    levels: Sequence[int] = (16, 64),
    duration: float = 4.0,
    warmup: float = 1.0,
    targets: Sequence[str] = ALL_TARGETS,
    variants: int = 32,
    half_peak: bool = True,
    install_probot: bool = True,
    profile_to: Path | None = None,
    tembo_tree: Path = ROOT,
    tembo_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Every target is up at once (idle ones cost nothing) and each level runs against
    each target in turn, so a change in the machine's background load lands on all of
    them alike instead of on whichever target was measured at that moment."""
    started = time.monotonic()
    machine = report.machine()  # before the run: the load is then other work only
    profile_seconds = max(int(duration) - 1, 1)  # within the measured part of the run
    # The default command when it is measured, else `--no-worker`.
    profiled = SERVE if SERVE in targets else TEMBO
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)

        def measure(target: Live, level: int, rate: float | None = None) -> dict[str, Any]:
            spies: list[subprocess.Popen[bytes]] = []
            measuring = None
            if (
                profile_to is not None
                and target.name == profiled
                and level == max(levels)
                and not rate
            ):

                def measuring() -> None:
                    spy = profile(target.server.pid, profile_seconds, profile_to)
                    if spy is not None:
                        spies.append(spy)

            result = generate(
                target.url,
                concurrency=level,
                duration=duration,
                warmup=warmup,
                expect=target.expect,
                variants=variants,
                watch_pid=target.server.pid,
                rate=rate,
                measuring=measuring,
                triggering=target.name != SERVE_IDLE,
            )
            for spy in spies:
                spy.wait(timeout=60)
            load = f"c={level}" if rate is None else f"{rate:,.0f}/s open"
            report.say(
                f"    {target.name:<26} {load:<12} {result['rps']:>9,.0f} req/s"
                f"  p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms"
                f"  errors {result['errors']}"
            )
            return result

        def start(names: Sequence[str], stack: contextlib.ExitStack) -> list[Live]:
            live: list[Live] = []
            for name in names:
                found = start_target(
                    name,
                    workdir,
                    stack,
                    install_probot=install_probot,
                    tembo_tree=tembo_tree,
                    tembo_env=tembo_env,
                )
                if isinstance(found, str):
                    results[name] = {"skipped": found}
                    report.say(f"\n!!! {name}: SKIPPED — {found}\n")
                    continue
                results[name] = found.entry
                live.append(found)
            return live

        def measure_all(live: list[Live]) -> None:
            for level in levels:
                for target in live:
                    target.entry["runs"].append(measure(target, level))
            for target in live:
                target.entry["peak_rps"] = max(r["rps"] for r in target.entry["runs"])
            if half_peak:
                for target in live:
                    if target.name != NULL and target.entry["peak_rps"] > 0:
                        rate = target.entry["peak_rps"] / 2
                        target.entry["half_peak"] = measure(target, 64, rate)
            for target in live:
                entry, server = target.entry, target.server
                entry["peak_rss_mb"] = round(server.peak_rss_mb(), 1)
                # The app drains for up to STOP_GRACE after SIGTERM; a busy worker may need it.
                entry["exit_code"] = server.stop(grace=STOP_GRACE + 10)
                if entry["exit_code"] not in (0, None, -15):  # uvicorn re-raises SIGTERM
                    entry["log_tail"] = server.log_tail()
                entry["accepted"] = sum(r["accepted_total"] for r in entry["runs"]) + entry.get(
                    "half_peak", {}
                ).get("accepted_total", 0)
                if target.name in (TEMBO, *SERVES) and target.database_url is not None:
                    entry["stored"] = stored_deliveries(target.database_url)
                if target.name in SERVES and target.database_url is not None:
                    entry["jobs"] = job_states(target.database_url)

        groups = [[name] for name in targets if name in ALONE]
        groups.append([name for name in targets if name not in ALONE])
        for group in groups:
            with contextlib.ExitStack() as own:
                measure_all(start(group, own))
    data: dict[str, Any] = {
        "benchmark": "ingest",
        "machine": machine,
        "settings": {
            "levels": list(levels),
            "duration_s": duration,
            "warmup_s": warmup,
            "payload_variants": variants * 2,
            "events": ["issues.labeled", "issue_comment.created"],
            "order": "each level against each target in turn, then half of each peak",
            "tembo_tree": None if tembo_tree == ROOT else str(tembo_tree),
            "tembo_env": tembo_env or {},
        },
        "targets": results,
        "ratios": ratios(results, levels),
        "goals": goals(results),
        "seconds": round(time.monotonic() - started, 1),
    }
    if profile_to is not None and profile_to.exists():
        data["profile"] = summarize_profile(profile_to, profile_seconds, PROFILE_RATE)
        data["profiled"] = profiled
    return data


def ratios(results: dict[str, Any], levels: Sequence[int]) -> dict[str, Any]:
    def rps(name: str, index: int | None = None) -> float | None:
        entry = results.get(name, {})
        if "runs" not in entry:
            return None
        return entry["peak_rps"] if index is None else entry["runs"][index]["rps"]

    out: dict[str, Any] = {}
    for tembo in (SERVE, SERVE_IDLE, SERVE_PG, SERVE_PG2, TEMBO, TEMBO_PG):
        if "runs" not in results.get(tembo, {}):
            continue
        key = SHORT[tembo]
        for peer in (BARE, PROBOT):
            row = {
                f"c={lv}": report.ratio(rps(tembo, i), rps(peer, i)) for i, lv in enumerate(levels)
            }
            row["peak"] = report.ratio(rps(tembo), rps(peer))
            out[f"{key}/{SHORT[peer]}"] = {k: v and round(v, 3) for k, v in row.items()}
    return out


def goals(results: dict[str, Any]) -> dict[str, Any]:
    """The goals are the default `serve`'s on triggering deliveries, for each store it ran
    on (`--no-worker` when no `serve` target was run)."""
    measured = [name for name in SERVES if "runs" in results.get(name, {})]
    if not measured and "runs" in results.get(TEMBO, {}):
        measured = [TEMBO]
    bare, probot = results.get(BARE, {}), results.get(PROBOT, {})
    out: dict[str, Any] = {}
    for name in measured:
        tembo, key = results[name], SHORT[name]
        if "peak_rps" in bare:
            value = tembo["peak_rps"] / bare["peak_rps"]
            out[f"{key}: peak vs bare ≥ 0.8"] = {
                "value": round(value, 3),
                "met": value >= GOAL_VS_BARE,
            }
        if "peak_rps" in probot:
            value = tembo["peak_rps"] / probot["peak_rps"]
            out[f"{key}: peak vs probot ≥ 1.5"] = {
                "value": round(value, 3),
                "met": value >= GOAL_VS_PROBOT,
            }
        half = tembo.get("half_peak")
        if half and half.get("p99_ms") is not None:
            out[f"{key}: p99 at half of peak ≤ 25 ms"] = {
                "value": half["p99_ms"],
                "met": half["p99_ms"] <= GOAL_P99_HALF_PEAK_MS and not half["errors"],
            }
    return out


def render(data: dict[str, Any]) -> str:
    levels = data["settings"]["levels"]
    rows = []
    for name, entry in data["targets"].items():
        if "runs" not in entry:
            rows.append([name, "skipped", None, None, None, None, None, None, None])
            continue
        for run_ in entry["runs"]:
            rows.append(
                [
                    name,
                    f"c={run_['connections']}",
                    run_["rps"],
                    run_["p50_ms"],
                    run_["p99_ms"],
                    run_["errors"],
                    _pct(run_.get("server_cpu")),
                    _per_ack(run_),
                    _pct(run_.get("client_cpu")),
                ]
            )
        half = entry.get("half_peak")
        if half:
            rows.append(
                [
                    name,
                    f"{half['rate']:,.0f}/s open",
                    half["rps"],
                    half["p50_ms"],
                    half["p99_ms"],
                    half["errors"],
                    _pct(half.get("server_cpu")),
                    _per_ack(half),
                    _pct(half.get("client_cpu")),
                ]
            )
    headers = ["target", "load", "req/s", "p50 ms", "p99 ms", "errors", "server cpu"]
    headers += ["cpu µs/ack", "gen cpu"]
    parts = [report.table(headers, rows)]
    if data["ratios"]:
        ratio_rows = [
            [k, *(v[f"c={lv}"] for lv in levels), v["peak"]] for k, v in data["ratios"].items()
        ]
        parts.append(
            report.table(["ratio (req/s)", *(f"c={lv}" for lv in levels), "peak"], ratio_rows)
        )
    if data["goals"]:
        parts.append(
            "\n".join(
                f"- {goal}: {g['value']} {'met' if g['met'] else 'NOT met'}"
                for goal, g in data["goals"].items()
            )
        )
    skipped = [
        f"- {n}: skipped, {e['skipped']}" for n, e in data["targets"].items() if "skipped" in e
    ]
    if skipped:
        parts.append("\n".join(skipped))
    notes = []
    null, bare = data["targets"].get(NULL, {}), data["targets"].get(BARE, {})
    if "peak_rps" in null and "peak_rps" in bare:
        busiest = max(r["client_cpu"] for r in bare["runs"])
        notes.append(
            f"- generator: {null['peak_rps']:,.0f} req/s against a canned responder, "
            f"{bare['peak_rps']:,.0f} against the bare target using at most "
            f"{busiest:.0%} of one core: "
            + (
                "not the bottleneck"
                if null["peak_rps"] > 2 * bare["peak_rps"] and busiest < 0.8
                else "MAY BE the bottleneck"
            )
        )
    for name in (TEMBO, *SERVES):
        entry = data["targets"].get(name, {})
        if "stored" in entry:
            notes.append(
                f"- durability, {SHORT[name]}: {entry['stored']:,} deliveries in the store "
                f"for {entry['accepted']:,} answered 202"
            )
        if "jobs" in entry:
            jobs = entry["jobs"]
            notes.append(
                f"- worker, {SHORT[name]}: {jobs.get('done', 0):,} jobs done, "
                f"{jobs.get('queued', 0):,} still queued when it stopped "
                f"({', '.join(f'{k} {v:,}' for k, v in sorted(jobs.items()))})"
            )
    if notes:
        parts.append("\n".join(notes))
    return "\n\n".join(parts)


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value:.0%}"


def _per_ack(run_: dict[str, Any]) -> int | None:
    """The server's CPU time per answer: on a machine shared with other work, the figure
    its load moves least (a busy neighbour lowers req/s and cpu alike)."""
    cpu, rps = run_.get("server_cpu"), run_.get("rps")
    return None if cpu is None or not rps else round(cpu / rps * 1e6)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--levels", default="16,64", help="concurrency levels")
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument(
        "--targets",
        default=",".join(SHORT[t] for t in DEFAULT_TARGETS),
        help=f"any of {','.join(SHORT[t] for t in ALL_TARGETS)}",
    )
    parser.add_argument("--variants", type=int, default=32)
    parser.add_argument("--no-half-peak", action="store_true")
    parser.add_argument("--no-install", action="store_true", help="never run `npm ci`")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the default serve (SQLite) at the top level"
    )
    parser.add_argument("--results", type=Path, default=report.RESULTS)
    parser.add_argument(
        "--tembo-tree", type=Path, default=ROOT, help="run tembo-dispatch from this checkout"
    )
    parser.add_argument(
        "--tembo-env", action="append", default=[], metavar="NAME=VALUE", help="extra env"
    )
    args = parser.parse_args(argv)

    by_short = {v: k for k, v in SHORT.items()}
    targets = [by_short[t.strip()] for t in args.targets.split(",") if t.strip()]
    args.results.mkdir(parents=True, exist_ok=True)
    data = run(
        levels=[int(x) for x in args.levels.split(",")],
        duration=args.duration,
        warmup=args.warmup,
        targets=targets,
        variants=args.variants,
        half_peak=not args.no_half_peak,
        install_probot=not args.no_install,
        profile_to=args.results / "ingest-profile.txt" if args.profile else None,
        tembo_tree=args.tembo_tree.resolve(),
        tembo_env=dict(item.split("=", 1) for item in args.tembo_env),
    )
    data["command"] = "python -m bench.ingest " + " ".join(sys.argv[1:] if argv is None else argv)
    path = report.write("ingest", data, args.results)
    print(f"bench-ingest on {report.describe_machine(data['machine'])}\n")
    print(render(data))
    if "profile" in data:
        print(f"\npy-spy of {data['profiled']} at c={max(data['settings']['levels'])}:")
        for thread, found in data["profile"].items():
            print(f"  thread {thread}: busy {found['busy']:.0%} of the run; its samples on")
            for where, share in found["self"]:
                print(f"    {share:6.1%}  {where}")
    print(f"\n{data['seconds']:.0f} s; results in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
