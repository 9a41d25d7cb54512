"""The load generator of bench-ingest: signed webhook deliveries over raw asyncio sockets.

It runs as its own process (`python -m bench.loadgen …`, one JSON object on stdout) so it
never shares an event loop with a target, and it is the same generator for every target.
Every request is a new event, as GitHub's are: a fresh `X-GitHub-Delivery` id, and a body
with a fresh issue `updated_at` or comment id (a replayed body or trigger is answered
"duplicate" by the app), signed for that request (a keyed HMAC copied, ~10 µs).
Keep-alive HTTP/1.1, one request in flight per connection.

- closed loop (`--concurrency N`): N connections, each sends its next request when the
  previous answer has arrived; measures the most a target serves at that concurrency.
- open loop (`--rate R`): requests are due every 1/R s and go out on an idle connection of
  a pool; a request that finds no idle connection is timed from when it was *due*, so a
  target that falls behind shows its queue instead of hiding it (no coordinated omission).

`--null-server PORT` runs a canned HTTP responder instead, to measure the generator's
own ceiling. Every loop stops by itself: runs by duration and a request cap, the null
server after `--max-seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import sys
import time
import uuid
from array import array
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)")
CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked")
CLOSE = re.compile(rb"\r\nconnection:\s*close")
DRAIN_SECONDS = 5.0
MEASURING = "measuring"  # the line on stderr when the measured part of a run starts
MAX_RECONNECTS = 1000


STAMP = 7_777_777_777  # in each body once; each request writes its own number over it
STAMP_BYTES = str(STAMP).encode()


def deliveries(variants: int = 32, trigger: bool = True) -> list[tuple[str, bytes]]:
    """(event, body) pairs from the fixtures: `issues.labeled` and `issue_comment.created`,
    alternating, on varied issues, each with `STAMP` as its issue's `updated_at` or its
    comment id. `trigger`: the `tembo` label and a `/tembo` command; otherwise a label and
    a comment that a repository configured as usual never acts on."""
    from tests.support import payloads

    found: list[tuple[str, bytes]] = []
    for i in range(variants):
        repo = f"bench-org-{i % 5}/repo-{i % 50}"
        installation = 1000 + i % 5
        label = "tembo" if trigger else "bug"
        labeled = payloads.labeled(label, repo=repo, number=i + 1, installation=installation)
        labeled["issue"]["updated_at"] = str(STAMP)
        command = payloads.comment(
            "/tembo fix the flaky test" if trigger else "/label needs-triage, thanks",
            repo=repo,
            number=i + 1,
            installation=installation,
            comment_id=STAMP,
        )
        for event, payload in (("issues", labeled), ("issue_comment", command)):
            body = json.dumps(payload).encode()
            assert body.count(STAMP_BYTES) == 1, event
            found.append((event, body))
    return found


@dataclass(frozen=True)
class Template:
    head: bytes  # up to the signature value
    before: bytes  # the body up to the stamp
    after: bytes  # the body after the stamp


def templates(url: str, variants: int, trigger: bool = True) -> list[Template]:
    parts = urlsplit(url)
    out = []
    for event, body in deliveries(variants, trigger):
        head = (
            f"POST {parts.path or '/'} HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\n"
            "User-Agent: GitHub-Hookshot/bench\r\n"
            "Accept: */*\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-GitHub-Event: {event}\r\n"
            "X-GitHub-Hook-ID: 1\r\n"
            "X-Hub-Signature-256: sha256="
        ).encode()
        before, after = body.split(STAMP_BYTES)
        out.append(Template(head, before, after))
    return out


@dataclass
class Plan:
    host: str
    port: int
    requests: list[Template]
    secret: str
    expect: frozenset[int]
    connections: int
    warmup: float
    duration: float
    rate: float | None
    max_requests: int
    watch_pid: int | None = None


class Load:
    """Counts and times one run; hands requests to connections."""

    def __init__(self, plan: Plan, loop: asyncio.AbstractEventLoop) -> None:
        self.plan = plan
        self.loop = loop
        start = loop.time()
        self.measure_from = start + plan.warmup
        self.end = self.measure_from + plan.duration
        self.latencies = array("d")
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.accepted_total = 0  # expected answers over the whole run, warm-up included
        self.sent = 0
        self.inflight = 0
        self.reconnects = 0
        self.index = 0
        self.keyed = hmac.new(plan.secret.encode(), digestmod=hashlib.sha256)
        # Runs start seconds apart and send under 100,000 a second: their stamps never meet.
        self.stamp = STAMP - 1_000_000_000 + int(time.time() * 100_000) % 900_000_000
        self.idle: list[Connection] = []
        self.backlog: deque[float] = deque()
        self.connections: set[Connection] = set()
        self.stopping = False
        self.drained = asyncio.Event()
        self.cpu: dict[str, float] = {}
        loop.call_at(self.measure_from, self._mark, "start")
        loop.call_at(self.end, self._mark, "end")
        loop.call_at(self.end, self.stop)

    # -- requests --------------------------------------------------------------

    def next_request(self) -> bytes:
        template = self.plan.requests[self.index % len(self.plan.requests)]
        self.index += 1
        self.sent += 1
        self.stamp += 1  # ten digits whatever the count: the body keeps its length
        body = template.before + str(self.stamp).encode() + template.after
        mac = self.keyed.copy()
        mac.update(body)
        return b"".join(
            (
                template.head,
                mac.hexdigest().encode(),
                b"\r\nX-GitHub-Delivery: ",
                str(uuid.uuid4()).encode(),
                b"\r\n\r\n",
                body,
            )
        )

    def may_send(self) -> bool:
        return not self.stopping and self.sent < self.plan.max_requests

    def ready(self, conn: Connection) -> None:
        """`conn` is connected and has no request in flight."""
        if not self.may_send():
            conn.close()
            return
        if self.plan.rate is None:
            conn.send(self.loop.time())
        elif self.backlog:
            conn.send(self.backlog.popleft())
        else:
            self.idle.append(conn)

    def tick(self, due: float) -> None:
        """Open loop: every request due by now goes out (or waits for a connection).

        A request sent as soon as its timer fires is timed from then: asyncio's timers
        fire up to a millisecond late (epoll's resolution), and that lateness is the
        generator's, not the target's. One that waits for a free connection is timed
        from when it was due: that wait is the target's."""
        assert self.plan.rate is not None
        interval = 1.0 / self.plan.rate
        now = self.loop.time()
        while due <= now and self.may_send():
            if self.idle:
                self.idle.pop().send(now)
            else:
                self.backlog.append(due)
            due += interval
        if self.may_send():
            self.loop.call_at(due, self.tick, due)

    # -- answers -----------------------------------------------------------------

    def answered(self, due: float, status: int) -> None:
        now = self.loop.time()
        self.inflight -= 1
        expected = status in self.plan.expect
        self.accepted_total += expected
        if self.measure_from <= now < self.end:
            self.latencies.append(now - due)
            self.statuses[status] += 1
            if not expected:
                self.errors[f"status {status}"] += 1
        self._check_drained()

    def failed(self, kind: str) -> None:
        self.inflight -= 1
        self.errors[kind] += 1
        self._check_drained()

    def lost(self, conn: Connection) -> None:
        self.connections.discard(conn)
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)
        if self.may_send():
            self.reconnects += 1
            if self.reconnects > MAX_RECONNECTS:
                self.errors["too many reconnects"] += 1
                self.stop()
                return
            self.loop.create_task(self.connect())
        self._check_drained()

    async def connect(self) -> None:
        try:
            await self.loop.create_connection(
                lambda: Connection(self), self.plan.host, self.plan.port
            )
        except OSError as exc:
            self.errors[f"connect: {type(exc).__name__}"] += 1
            if self.may_send():
                await asyncio.sleep(0.05)
                self.reconnects += 1
                if self.reconnects <= MAX_RECONNECTS:
                    self.loop.create_task(self.connect())

    # -- the end -------------------------------------------------------------------

    def _mark(self, name: str) -> None:
        self.cpu[name] = time.process_time()
        if name == "start":
            print(MEASURING, file=sys.stderr, flush=True)
        if self.plan.watch_pid:
            with contextlib.suppress(OSError):
                self.cpu[f"server_{name}"] = process_cpu(self.plan.watch_pid)

    def stop(self) -> None:
        self.stopping = True
        for conn in list(self.idle):
            conn.close()
        self.idle.clear()
        self._check_drained()

    def _check_drained(self) -> None:
        if self.stopping and self.inflight <= 0:
            self.drained.set()

    def close_all(self) -> None:
        for conn in list(self.connections):
            conn.close()

    def result(self) -> dict[str, Any]:
        latencies = sorted(self.latencies)
        count = len(latencies)

        def pct(p: float) -> float | None:
            if not count:
                return None
            return round(latencies[min(count - 1, int(p * count))] * 1000, 3)

        cpu = self.cpu.get("end", time.process_time()) - self.cpu.get("start", 0.0)
        server_cpu = None
        if "server_end" in self.cpu and "server_start" in self.cpu:
            server_cpu = (self.cpu["server_end"] - self.cpu["server_start"]) / self.plan.duration
        errors = sum(self.errors.values())
        return {
            "mode": "open" if self.plan.rate else "closed",
            "connections": self.plan.connections,
            "rate": self.plan.rate,
            "seconds": self.plan.duration,
            "answered": count,
            "ok": count - sum(v for k, v in self.errors.items() if k.startswith("status")),
            "errors": errors,
            "error_kinds": dict(self.errors),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "rps": round(count / self.plan.duration, 1),
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "max_ms": round(latencies[-1] * 1000, 3) if count else None,
            "sent": self.sent,
            "accepted_total": self.accepted_total,
            "reconnects": self.reconnects,
            "backlog_at_end": len(self.backlog),
            "client_cpu": round(cpu / self.plan.duration, 3),
            "server_cpu": None if server_cpu is None else round(server_cpu, 3),
        }


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of another process and of every live process in its
    process group (`serve` runs ingest and the worker as children), from Linux /proc."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[2]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


class Connection(asyncio.Protocol):
    """One keep-alive connection; parses just enough HTTP/1.1 to find each answer's end."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.due: float | None = None
        self.buffer = bytearray()
        self.need: int | None = None
        self.chunked = False
        self.status = 0
        self.close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.load.connections.add(self)
        self.load.ready(self)

    def send(self, due: float) -> None:
        assert self.transport is not None and self.due is None
        self.due = due
        self.load.inflight += 1
        self.transport.write(self.load.next_request())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.need is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            self.status = int(head[9:12])
            self.close_after = CLOSE.search(head) is not None
            match = CONTENT_LENGTH.search(head)
            self.chunked = match is None and CHUNKED.search(head) is not None
            self.need = end + 4 + (int(match[1]) if match else 0)
        if self.chunked:
            if not self.buffer.endswith(b"0\r\n\r\n"):
                return
        elif len(self.buffer) < self.need:
            return
        due, status = self.due, self.status
        assert due is not None
        self.buffer.clear()
        self.need, self.due = None, None
        self.load.answered(due, status)
        if self.close_after:
            self.close()
        else:
            self.load.ready(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.due is not None:
            self.due = None
            self.load.failed("connection lost" if exc is None else f"{type(exc).__name__}")
        self.transport = None
        self.load.lost(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def run(plan: Plan) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    load = Load(plan, loop)
    await asyncio.gather(*(load.connect() for _ in range(plan.connections)))
    if plan.rate is not None:
        start = loop.time()
        loop.call_at(start, load.tick, start)
    await asyncio.sleep(max(load.end - loop.time(), 0))
    load.stop()
    try:
        await asyncio.wait_for(load.drained.wait(), DRAIN_SECONDS)
    except TimeoutError:
        load.errors["unanswered at the end"] += load.inflight
    load.close_all()
    await asyncio.sleep(0)  # let transports finish closing
    return load.result()


# -- the generator's own ceiling ----------------------------------------------------

CANNED = (
    b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 19\r\n\r\n"
    b'{"status":"queued"}'
)


class NullProtocol(asyncio.Protocol):
    """Answers every request with a canned 202 without looking at it beyond its length."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            match = CONTENT_LENGTH.search(bytes(self.buffer[:end]).lower())
            need = end + 4 + (int(match[1]) if match else 0)
            if len(self.buffer) < need:
                return
            del self.buffer[:need]
            assert self.transport is not None
            self.transport.write(CANNED)


async def null_server(port: int, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(NullProtocol, "127.0.0.1", port)
    async with server:
        await asyncio.sleep(max_seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--url", help="http://127.0.0.1:PORT/path of the target")
    parser.add_argument("--secret", default="bench-secret")
    parser.add_argument("--concurrency", type=int, default=16, help="connections")
    parser.add_argument("--rate", type=float, default=None, help="open loop: requests/s")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--expect", default="202", help="statuses that count as success")
    parser.add_argument("--variants", type=int, default=32, help="distinct bodies per event")
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument(
        "--not-triggering", action="store_true", help="labels and comments nothing acts on"
    )
    parser.add_argument("--null-server", type=int, metavar="PORT", help="serve canned 202s")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--watch-pid", type=int, help="also report this process's CPU use")
    args = parser.parse_args(argv)

    if args.null_server:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(null_server(args.null_server, args.max_seconds))
        return 0
    if not args.url:
        parser.error("--url is required")
    parts = urlsplit(args.url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the generator only targets loopback addresses")
    plan = Plan(
        host=parts.hostname,
        port=parts.port or 80,
        requests=templates(args.url, args.variants, trigger=not args.not_triggering),
        secret=args.secret,
        expect=frozenset(int(s) for s in args.expect.split(",")),
        connections=args.concurrency,
        warmup=args.warmup,
        duration=args.duration,
        rate=args.rate,
        max_requests=args.max_requests,
        watch_pid=args.watch_pid,
    )
    result = asyncio.run(run(plan))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
