"""The job loop: claim -> run -> done | retry (backoff) | failed | dead.

Jobs are leased, not taken: a worker that dies leaves a lease that runs out, and any
worker then claims the job again and resumes it from its recorded progress. Several
workers (tasks, processes or replicas) can share one store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from typing import Any

from bot import budget
from bot.handler import Handler
from bot.logs import log
from bot.ports import Job, LostLease, RemoteError, Store

logger = logging.getLogger("bot.worker")
POLL_SECONDS = 1.0  # other replicas enqueue without waking us; look this often
# `idle` means nothing is running and nothing is due this soon: retries in progress keep
# the worker busy, sessions followed every 30 s or more do not.
IDLE_HORIZON = 10.0
# Old rows are pruned (Store.prune) this often by every worker, a batch at a time: each
# delete is safe on any replica at once, so no replica has to be the one that does it.
PRUNE_EVERY = 3600.0
PRUNE_BATCH = 500
DAY = 24 * 3600.0


def backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter (AWS's advice): uniform in [base/2, base*2^n]."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return rng.uniform(min(base / 2, ceiling), ceiling)


class Worker:
    def __init__(
        self,
        store: Store,
        handler: Handler,
        *,
        concurrency: int = 4,
        max_attempts: int = 8,
        lease_seconds: float = 120.0,
        retry_base: float = 2.0,
        retry_cap: float = 300.0,
        clock: Callable[[], float] = time.time,
        name: str | None = None,
        seed: int | None = None,
        on_rate_limit: Callable[[float], None] | None = None,
        retention: float = 7 * DAY,
        dedupe_window: float = 7 * DAY,
    ) -> None:
        self.store = store
        self.handler = handler
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.clock = clock
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._on_rate_limit = on_rate_limit
        # Finished jobs are kept `retention` seconds; deliveries and replay keys at least
        # ingest's dedupe window, which answers a replay by them.
        self.retention = retention
        self.dedupe_window = dedupe_window
        self._next_prune = float("-inf")
        self._rng = random.Random(seed)  # noqa: S311 - jitter, not security
        self._wake = asyncio.Event()
        self._stopping = False
        self._running: set[asyncio.Task[None]] = set()
        self.idle = asyncio.Event()

    def notify(self) -> None:
        """New work was queued: look now instead of at the next poll."""
        self.idle.clear()
        self._wake.set()

    async def run(self) -> None:
        # Jobs waiting on GitHub's content budget are parked and free their slot (bot.budget).
        slots = budget.Slots(self.concurrency)
        budget.SLOTS.set(slots)
        while not self._stopping:
            await slots.acquire()
            if self._stopping:
                slots.release()
                break
            # Cleared before looking, never after: a job that ends while we look sets it
            # again, and the sleep below returns at once instead of a poll interval later.
            self._wake.clear()
            if self.clock() >= self._next_prune:
                await self._prune()
            try:
                job = await self.store.claim(self.name, self.clock(), self.lease_seconds)
            except Exception:
                slots.release()
                log(logger, "worker.claim_failed", logging.ERROR, exc_info=True)
                await self._sleep(POLL_SECONDS)
                continue
            if job is None:
                slots.release()
                await self._wait_for_work()
                continue
            # Work found by the loop itself (a job come due, one a replica queued, a job's
            # next run) makes us busy just as a wake-up does: idle is set again only once
            # nothing runs and nothing is due soon.
            self.idle.clear()
            task = asyncio.create_task(self._run_one(job))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            task.add_done_callback(lambda _: slots.release())

    async def _wait_for_work(self) -> None:
        due = await self.store.next_run_at()
        # A wake-up while we looked (a delivery queued, a job ended) may be work the answer
        # above does not show yet: look again before calling ourselves idle.
        woken = self._wake.is_set()
        pruning = self.clock() >= self._next_prune  # more batches to delete: not idle yet
        quiet = due is None or due - self.clock() > IDLE_HORIZON
        if not woken and not pruning and not self._running and quiet:
            self.idle.set()
        delay = POLL_SECONDS if due is None else min(max(due - self.clock(), 0.0), POLL_SECONDS)
        if pruning:
            delay = 0.0
        if due is not None and delay <= 0:
            # A due job we could not claim is held back by a running job on the same issue
            # (ours or another replica's): look again shortly, without spinning.
            delay = 0.05
        await self._sleep(delay)

    async def _prune(self) -> None:
        """Delete one batch of finished jobs past their retention and of deliveries and
        replay keys past the dedupe window. A batch that found rows makes the next one due
        at once, so a large backlog (the first prune after an upgrade) is worked off
        between claims instead of holding them up."""
        now = self.clock()
        jobs_before, deliveries_before = now - self.retention, now - self.dedupe_window
        try:
            deleted = await self.store.prune(jobs_before, deliveries_before, PRUNE_BATCH)
        except Exception:
            # The next round tries again; pruning never stops the worker.
            self._next_prune = now + PRUNE_EVERY
            log(logger, "worker.prune_failed", logging.ERROR, exc_info=True)
            return
        self._next_prune = now if deleted else now + PRUNE_EVERY
        if deleted:
            log(logger, "worker.pruned", rows=deleted)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.001))

    async def _heartbeat(self, job: Job, work: asyncio.Task[Any]) -> None:
        """Renew the lease; when it cannot be renewed (another worker took the job over),
        stop the job's work at once: its writes would be refused anyway."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                held = await self.store.extend(job, self.clock() + self.lease_seconds)
            except Exception:
                log(logger, "job.extend_failed", logging.WARNING, job_id=job.id, exc_info=True)
                continue  # the store may be back before the lease runs out
            if not held:
                work.cancel(msg="lost lease")
                return

    async def _run_one(self, job: Job) -> None:
        fields: dict[str, Any] = {
            "job_id": job.id,
            "delivery_id": job.delivery_id,
            "attempt": job.attempts,
        }
        work = asyncio.create_task(self.handler.handle(job))
        heartbeat = asyncio.create_task(self._heartbeat(job, work))
        try:
            outcome = await asyncio.shield(work)
            if outcome.state == "done":
                await self.store.finish(job, self.clock())
            elif outcome.state == "again" and outcome.run_at is not None:
                await self.store.reschedule(job, outcome.run_at, self.clock())
            else:
                await self.store.fail(job, outcome.detail, self.clock(), dead=False)
            log(logger, f"job.{outcome.state}", detail=outcome.detail, **fields)
        except LostLease:
            log(logger, "job.lost_lease", logging.WARNING, **fields)
        except asyncio.CancelledError:
            if work.cancelled() and heartbeat.done() and not self._stopping:
                log(logger, "job.lost_lease", logging.WARNING, **fields)  # the heartbeat's
            else:
                work.cancel()
                with contextlib.suppress(BaseException):
                    await work
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.store.release(job))
                raise
        except Exception as exc:
            with contextlib.suppress(LostLease):
                await self._retry_or_bury(job, exc, fields)
        finally:
            heartbeat.cancel()
            # Leave the running set before waking the loop, so it sees this job gone and
            # can call itself idle now rather than after a full poll interval.
            task = asyncio.current_task()
            if task is not None:
                self._running.discard(task)
            self._wake.set()

    async def _retry_or_bury(self, job: Job, exc: Exception, fields: dict[str, Any]) -> None:
        remote = exc if isinstance(exc, RemoteError) else None
        error = remote.message if remote else f"{type(exc).__name__}: {exc}"
        # Unexpected exceptions are retried too: most are passing faults, and the attempt
        # limit stops a job that fails for good.
        retryable = remote is None or remote.transient
        if retryable and job.attempts < self.max_attempts:
            delay = backoff(job.attempts, self.retry_base, self.retry_cap, self._rng)
            if remote and remote.retry_after is not None:
                delay = max(delay, remote.retry_after)
                if self._on_rate_limit is not None:
                    self._on_rate_limit(remote.retry_after)
            await self.store.retry(job, error, self.clock() + delay)
            log(
                logger,
                "job.retry",
                logging.WARNING,
                error=error,
                delay=round(delay, 2),
                exc_info=not remote,
                **fields,
            )
            return
        state = "dead" if retryable else "failed"
        log(logger, f"job.{state}", logging.ERROR, error=error, exc_info=remote is None, **fields)
        try:
            await self.handler.give_up(job, exc)
        except Exception:
            log(logger, "job.give_up_failed", logging.ERROR, exc_info=True, **fields)
        await self.store.fail(job, error, self.clock(), dead=retryable)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; give running jobs `grace` seconds, then hand their leases back."""
        self._stopping = True
        self._wake.set()
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
