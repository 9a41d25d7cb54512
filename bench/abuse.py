"""bench-abuse: what hostile clients cost a real `python -m bot serve`, on loopback only.

    python -m bench.abuse                         # this checkout
    python -m bench.abuse --tree /path/to/main    # another checkout, for a before/after

Three measurements, each bounded in time, against one server (`serve --no-worker`, SQLite,
`LOG_LEVEL=info`, JSON logs to a file):

1. memory: 16 connections at once each send a 24 MiB body, unsigned (no signature
   header), then 16 more with a signature header that is wrong. The server's resident
   set (summed over its process group) is sampled every 10 ms: its peak is reported.
2. slow clients: 50 connections send their headers one byte every 5 s, 50 more send
   whole signed headers and then their body one byte every 5 s. After 90 s (`--slow`),
   how many does the server still keep open?
3. log lines: a signed delivery with an 8 MB `X-GitHub-Delivery`; the longest line the
   server then wrote to its log.

Prints one JSON object; nothing is kept on disk but the server's log in a temp folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.processes import HOST, ROOT, Server, child_env, free_port
from bot import webhook

SECRET = "bench-secret"
MiB = 1024 * 1024


def group_rss_mb(pgid: int) -> float:
    """Resident set of every process in the group `pgid`, in MiB."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return total / MiB


async def _post_big(port: int, size: int, signature: str | None) -> str:
    reader, writer = await asyncio.open_connection(HOST, port)
    head = (
        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\nX-GitHub-Event: issues\r\nX-GitHub-Delivery: big\r\n"
        + (f"X-Hub-Signature-256: {signature}\r\n" if signature else "")
        + "\r\n"
    )
    writer.write(head.encode())
    chunk = b"x" * MiB
    status = "no answer"
    try:
        for _ in range(size // MiB):
            writer.write(chunk)
            await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
        status = line.decode(errors="replace").split(" ")[1] if line else "closed"
    except (ConnectionError, TimeoutError, IndexError) as exc:
        status = type(exc).__name__
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return status


async def memory(server: Server, parallel: int, size: int) -> dict[str, Any]:
    peak = 0.0
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, group_rss_mb(server.pid))
            await asyncio.sleep(0.01)

    results: dict[str, Any] = {"idle_rss_mb": round(group_rss_mb(server.pid), 1)}
    sampler = asyncio.create_task(sample())
    for name, signature in (("unsigned", None), ("wrong_signature", "sha256=" + "0" * 64)):
        started = time.monotonic()
        statuses = await asyncio.gather(
            *(_post_big(server.port, size, signature) for _ in range(parallel))
        )
        counts: dict[str, int] = {}
        for status in statuses:
            counts[status] = counts.get(status, 0) + 1
        results[name] = {
            "statuses": counts,
            "seconds": round(time.monotonic() - started, 2),
            "peak_rss_mb": round(peak, 1),
        }
    stop.set()
    await sampler
    return results


async def slow(server: Server, clients: int, seconds: float) -> dict[str, Any]:
    body = json.dumps({"action": "labeled", "pad": "x" * 200}).encode()
    signed = (
        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-GitHub-Event: issues\r\n"
        f"X-GitHub-Delivery: slow\r\nX-Hub-Signature-256: {webhook.signature(body, SECRET)}\r\n"
        "\r\n"
    ).encode()
    open_now: dict[str, int] = {"slow_headers": 0, "slow_body": 0}

    async def client(kind: str, deadline: float) -> None:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        open_now[kind] += 1
        if kind == "slow_headers":
            drip = signed
        else:
            writer.write(signed)
            drip = body
        try:
            for byte in drip:
                if time.monotonic() > deadline:
                    return
                writer.write(bytes([byte]))
                await writer.drain()
                try:  # the pace: 5 s, unless the server answers or closes first
                    await asyncio.wait_for(reader.read(1), 5.0)
                except TimeoutError:
                    continue
                return
        except ConnectionError:
            return
        finally:
            open_now[kind] -= 1
            writer.close()

    deadline = time.monotonic() + seconds
    tasks = [
        asyncio.create_task(client(kind, deadline))
        for kind in ("slow_headers", "slow_body")
        for _ in range(clients)
    ]
    await asyncio.sleep(seconds - 1)
    still = dict(open_now)
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"clients_each": clients, "after_seconds": seconds, "still_open": still}


async def long_header(server: Server, log: Path) -> dict[str, Any]:
    body = b'{"action": "labeled"}'
    reader, writer = await asyncio.open_connection(HOST, server.port)
    head = (
        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-GitHub-Event: issues\r\n"
        f"X-Hub-Signature-256: {webhook.signature(body, SECRET)}\r\n"
        f"X-GitHub-Delivery: {'d' * 8_000_000}\r\n\r\n"
    ).encode()
    status = "no answer"
    try:
        writer.write(head + body)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
        status = line.decode(errors="replace").split(" ")[1] if line else "closed"
    except (ConnectionError, TimeoutError, IndexError) as exc:
        status = type(exc).__name__
    finally:
        writer.close()
    await asyncio.sleep(0.5)
    longest = max((len(line) for line in log.read_bytes().splitlines()), default=0)
    return {"status": status, "longest_log_line_bytes": longest}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="bench-abuse-"))
    port = free_port()
    env = child_env(
        WEBHOOK_SECRET=SECRET,
        DATABASE_URL=f"sqlite:///{folder / 'store.db'}",
        HOST=HOST,
        PORT=str(port),
        LOG_LEVEL="info",
        LOG_FORMAT="json",
        ENV_FILE=str(folder / ".env"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    log = folder / "server.log"
    server = Server(
        "tembo-dispatch",
        [sys.executable, "-m", "bot", "serve", "--no-worker"],
        port,
        env,
        log,
        cwd=Path(args.tree).resolve(),
    )
    result: dict[str, Any] = {"tree": str(Path(args.tree).resolve())}
    with server:
        result["memory"] = await memory(server, 16, 24 * MiB)
        result["long_header"] = await long_header(server, log)
        if args.slow > 0:
            result["slow_clients"] = await slow(server, args.clients, args.slow)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.abuse", description=__doc__)
    parser.add_argument("--tree", default=str(ROOT), help="checkout whose `bot` to run")
    parser.add_argument("--slow", type=float, default=90.0, help="seconds of slow clients")
    parser.add_argument("--clients", type=int, default=50, help="slow clients of each kind")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(main_async(args)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
