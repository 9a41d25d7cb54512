"""Command line: `python -m bot serve | worker | migrate | check | replay | report`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from bot import __version__
from bot.logs import configure, log
from bot.settings import Settings, SettingsError

if TYPE_CHECKING:
    from bot.ports import Store


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"tembo-dispatch: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def serve(
    settings: Settings,
    *,
    run_worker: bool,
    processes: int = 1,
    in_process: bool = False,
    ingest_fd: int | None = None,
    wake_fd: int | None = None,
    separate: bool = False,
) -> int:
    """Default: a supervisor with ingest and the worker in processes of their own
    (bot/serve.py). `--no-worker` with one process, or `--in-process`, serve from this
    process; `--ingest-fd` is how the supervisor starts an ingest child."""
    # SQLite has one writer: two processes writing it wait on its file lock, whose busy
    # handler sleeps (up to 100 ms a try), and ingest measured 100 acks/s beside a busy
    # worker. So on SQLite the worker shares ingest's process (one store thread) unless
    # asked otherwise; on PostgreSQL each gets a process (and a core).
    token = _setup_token(settings, announce=ingest_fd is None)
    one_writer = settings.database_url.startswith("sqlite")
    if run_worker and one_writer and processes == 1 and not separate:
        in_process = True
    if ingest_fd is None and not in_process and (run_worker or processes > 1):
        from bot.serve import supervise

        return supervise(
            settings,
            ingest_processes=processes,
            run_worker=run_worker,
            migrate=lambda: migrate(settings, quiet=True),
        )
    import uvicorn

    from bot.app import create_app
    from bot.serve import GuardedProtocol, die_with_supervisor, wake_sender

    die_with_supervisor()
    app = create_app(
        settings,
        run_worker=in_process and run_worker,
        on_queued=wake_sender(wake_fd),
        setup_token=token,
    )
    GuardedProtocol.request_timeout = settings.webhook_body_timeout
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=GuardedProtocol,
        log_config=None,  # our JSON logging, not uvicorn's
        access_log=False,
        ws="none",  # no websocket routes; the websocket packages are not installed
        timeout_graceful_shutdown=15,
    )
    # The supervisor's socket, as the socket it is: uvicorn's own `fd=` takes every fd for
    # a Unix socket, and the TCP connections then go without TCP_NODELAY (40 ms stalls).
    shared = None if ingest_fd is None else [socket.socket(fileno=ingest_fd)]
    uvicorn.Server(config).run(sockets=shared)
    return 0


SETUP_TOKEN_ENV = "TEMBO_DISPATCH_SETUP_TOKEN"  # noqa: S105 - a variable name


def _setup_token(settings: Settings, *, announce: bool) -> str:
    """The setup page's one-time token: new at each start, printed once by the process an
    operator started, and handed to its ingest children through their environment (only
    the same user can read it there)."""
    from bot.operator.setup import new_setup_token, registration_closed_because, setup_urls

    inherited = os.environ.get(SETUP_TOKEN_ENV)
    if inherited and not announce:
        return inherited
    token = new_setup_token()
    os.environ[SETUP_TOKEN_ENV] = token
    if registration_closed_because(settings) is None:
        # As Jupyter does: whoever can read this console may register the App, nobody else.
        urls = setup_urls(settings, token)
        print(
            "tembo-dispatch has no GitHub App yet. To register one, open this link "
            "(its token is new at each start):\n" + "".join(f"    Open {url}\n" for url in urls),
            flush=True,
        )
        log(logging.getLogger("bot.cli"), "setup.token", logging.WARNING, urls=urls)
    return token


def worker(settings: Settings, wake_fd: int | None = None) -> int:
    """Workers without the HTTP server, so ingest and work scale separately."""
    from bot.app import create_app, runtime_of
    from bot.serve import die_with_supervisor, wake_receiver

    die_with_supervisor()
    app = create_app(settings, run_worker=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with app.router.lifespan_context(app):
            found = runtime_of(app).worker
            if found is not None:
                wake_receiver(wake_fd, found.notify)
            await stop.wait()

    asyncio.run(main())
    return 0


@contextlib.asynccontextmanager
async def _migrated(settings: Settings) -> AsyncIterator[Store]:
    """The configured store, migrated, closed when the block ends."""
    from bot.adapters.store import open_store

    store = open_store(settings.database_url)
    try:
        await store.migrate()
        yield store
    finally:
        await store.close()


def migrate(settings: Settings, *, quiet: bool = False) -> int:
    async def main() -> None:
        async with _migrated(settings):
            pass

    asyncio.run(main())
    if not quiet:
        print("✓ database migrated")
    return 0


def _duration(since: str) -> float | None:
    """`since` (e.g. 6h, 2d) in seconds; None, said on stderr, when it is not one."""
    from bot.operator.replay import parse_duration

    try:
        return parse_duration(since)
    except ValueError as exc:
        print(f"tembo-dispatch: {exc}", file=sys.stderr)
        return None


def replay(settings: Settings, since: str, dry_run: bool) -> int:
    import httpx

    from bot.adapters.github import GitHubClient
    from bot.operator.replay import replay as run
    from bot.ports import GitHubError

    window = _duration(since)
    if window is None:
        return 2

    async def main() -> int:
        async with httpx.AsyncClient(timeout=30.0) as http:
            try:
                async with _migrated(settings) as store:
                    report = await run(
                        GitHubClient(settings, http), store, time.time() - window, dry_run=dry_run
                    )
            except GitHubError as exc:
                print(f"✗ {exc.message}", file=sys.stderr)
                return 1
        verb = "would redeliver" if dry_run else "redelivered"
        print(
            f"{report.listed} delivery attempts since {since} ago, {len(report.failed)} failed, "
            f"{verb} {len(report.redelivered)}"
        )
        for guid in report.redelivered:
            print(f"  {guid}")
        for problem in report.errors:
            print(f"✗ {problem}", file=sys.stderr)
        return 1 if report.errors else 0

    return asyncio.run(main())


def report(settings: Settings, since: str, fmt: str) -> int:
    """Print the usage ledger (bot.operator.report) from `since` ago until now."""
    from bot.operator.report import render

    window = _duration(since)
    if window is None:
        return 2

    async def main() -> str:
        async with _migrated(settings) as store:
            rows = await store.usage(time.time() - window)
        return render(rows, "csv" if fmt == "csv" else "json" if fmt == "json" else "table")

    sys.stdout.write(asyncio.run(main()))
    return 0


def check(settings: Settings) -> int:
    from bot.operator.check import run_checks

    return asyncio.run(run_checks(settings))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tembo-dispatch", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the webhook server (and a worker)")
    serve_parser.add_argument("--no-worker", action="store_true", help="only receive webhooks")
    serve_parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="ingest processes sharing the port (the worker runs in one more)",
    )
    serve_parser.add_argument(
        "--in-process",
        action="store_true",
        help="one process: ingest and the worker share an event loop (small machines, debugging)",
    )
    serve_parser.add_argument(
        "--separate",
        action="store_true",
        help="ingest and the worker in processes of their own on SQLite too (the default "
        "on PostgreSQL)",
    )
    serve_parser.add_argument("--ingest-fd", type=int, help=argparse.SUPPRESS)
    serve_parser.add_argument("--wake-fd", type=int, help=argparse.SUPPRESS)
    worker_parser = sub.add_parser("worker", help="run workers only")
    worker_parser.add_argument("--wake-fd", type=int, help=argparse.SUPPRESS)
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("check", help="validate the configuration against GitHub and platforms")
    replay_parser = sub.add_parser("replay", help="ask GitHub to redeliver failed deliveries")
    replay_parser.add_argument("--since", default="6h", help="how far back: 30m, 6h, 2d")
    replay_parser.add_argument("--dry-run", action="store_true", help="only list them")
    report_parser = sub.add_parser("report", help="print the usage ledger")
    report_parser.add_argument("--since", default="7d", help="how far back: 6h, 7d, 30d")
    report_parser.add_argument("--format", default="table", choices=("csv", "json", "table"))
    args = parser.parse_args(argv)

    settings = _settings()
    configure(settings.log_level, settings.log_format, settings.secrets())
    with contextlib.suppress(KeyboardInterrupt):
        if args.command == "serve":
            return serve(
                settings,
                run_worker=not args.no_worker,
                processes=max(args.workers, 1),
                in_process=args.in_process,
                ingest_fd=args.ingest_fd,
                wake_fd=args.wake_fd,
                separate=args.separate,
            )
        if args.command == "worker":
            return worker(settings, args.wake_fd)
        if args.command == "migrate":
            return migrate(settings)
        if args.command == "check":
            return check(settings)
        if args.command == "replay":
            return replay(settings, args.since, args.dry_run)
        if args.command == "report":
            return report(settings, args.since, args.format)
    return 0
