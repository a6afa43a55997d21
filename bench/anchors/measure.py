"""The anchor measurements: drain, pickup latency, enqueue rate, worker CPU per task.

Each runs in a fresh database of its own on the shared embedded PostgreSQL, with the library's workers and
enqueuers in processes of their own (``bench.anchors.child``), so this process only keeps time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from collections.abc import AsyncIterator

import asyncpg
import attrs

from bench import figures
from bench.anchors.base import Anchor, workspace_key
from bench.parts import PARTS, Parts
from bench.postgres import BenchPostgres
from bench.report import Rounds, percentile


@attrs.frozen
class Sizes:
    workspaces: int = 1_000
    drain_jobs: int = 10_000  # ten per workspace: PgQueuer drains 3,000 in about a second, too short to time well
    pickup_samples: int = 200
    enqueue_connections: int = 64
    enqueue_seconds: float = 5.0
    deadline: float = 600.0  # seconds any one measurement may take before the run fails


QUICK = Sizes(workspaces=50, drain_jobs=200, pickup_samples=20, enqueue_seconds=1.0, deadline=60.0)
PICKUP_WARMUP = 5


async def measure_anchor(
    anchor: Anchor, postgres: BenchPostgres, sizes: Sizes, rounds: Rounds, parts: Parts = PARTS
) -> None:
    """One round of the anchor's figures of ``parts`` (drain, pickup, accept: its enqueue rate)."""
    if "drain" in parts:
        one = await drain(anchor, postgres, sizes, processes=1)
        rounds.add(anchor.library, figures.DRAIN_1, one.tasks_per_second)
        rounds.add(anchor.library, figures.WORKER_CPU, one.cpu_seconds_per_task * 1000)
        two = await drain(anchor, postgres, sizes, processes=2)
        rounds.add(anchor.library, figures.DRAIN_2, two.tasks_per_second)
    if "pickup" in parts:
        latencies = await pickup_latencies(anchor, postgres, sizes)
        rounds.add(anchor.library, figures.PICKUP_P50, percentile(latencies, 0.5) * 1000)
        rounds.add(anchor.library, figures.PICKUP_P99, percentile(latencies, 0.99) * 1000)
    if "accept" in parts:
        rounds.add(anchor.library, figures.ENQUEUE, await enqueue_rate(anchor, postgres, sizes))


@attrs.frozen
class Drained:
    tasks_per_second: float
    cpu_seconds_per_task: float


class Child:
    """One ``bench.anchors.child`` process and its line protocol."""

    def __init__(self, process: asyncio.subprocess.Process, deadline: float) -> None:
        self.process = process
        self.deadline = deadline

    async def line(self) -> list[str]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), self.deadline)
        if not raw:
            code = await self.process.wait()
            raise RuntimeError(f"an anchor process ended (exit {code}) before its next line; see its stderr above")
        return raw.decode().split()

    async def expect(self, word: str) -> list[str]:
        words = await self.line()
        if words[:1] != [word]:
            raise RuntimeError(f"an anchor process said {words!r}, expected {word!r}")
        return words[1:]

    async def send(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{word}\n".encode())
        await self.process.stdin.drain()


@contextlib.asynccontextmanager
async def children(
    anchor: Anchor, dsn: str, role: str, args: list[str], count: int, deadline: float
) -> AsyncIterator[list[Child]]:
    """``count`` child processes with the anchor's settings, each ready for ``go``; killed if still running at exit."""
    command = [sys.executable, "-m", "bench.anchors.child", anchor.name, dsn, role, *args]
    started = [
        Child(
            await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            ),
            deadline,
        )
        for _ in range(count)
    ]
    try:
        for child in started:
            await child.expect("ready")
        yield started
    finally:
        for child in started:
            if child.process.returncode is None:
                child.process.kill()
            await child.process.wait()


async def fresh(anchor: Anchor, postgres: BenchPostgres) -> str:
    """A new, empty database with the anchor's schema installed; its libpq DSN."""
    dsn = postgres.fresh_database(f"anchor_{anchor.name}")
    await anchor.install(dsn)
    return dsn


async def drain(anchor: Anchor, postgres: BenchPostgres, sizes: Sizes, processes: int) -> Drained:
    """Tasks/s for ``processes`` worker processes emptying a backlog spread over the workspaces, and their CPU."""
    dsn = await fresh(anchor, postgres)
    await anchor.enqueue_backlog(dsn, [workspace_key(n % sizes.workspaces) for n in range(sizes.drain_jobs)])
    control = await asyncpg.connect(dsn)
    try:
        # A running queue has planner statistics (autovacuum); a freshly loaded one does not, and Procrastinate's
        # lock-checking fetch then takes ~500 ms instead of ~0.3 ms.
        await control.execute("ANALYZE")
        async with children(anchor, dsn, "worker", [str(sizes.workspaces)], processes, sizes.deadline) as workers:
            started = time.monotonic()
            for worker in workers:
                await worker.send("go")
            while await control.fetchval(anchor.remaining_sql):
                if time.monotonic() - started > sizes.deadline:
                    raise RuntimeError(f"{anchor.library} did not drain {sizes.drain_jobs} jobs in {sizes.deadline} s")
                await asyncio.sleep(0.02)
            elapsed = time.monotonic() - started
            for worker in workers:
                await worker.send("stop")
            done = [await worker.expect("done") for worker in workers]
    finally:
        await control.close()
    tasks = sum(int(words[0]) for words in done)
    cpu = sum(float(words[1]) for words in done)
    return Drained(tasks_per_second=sizes.drain_jobs / elapsed, cpu_seconds_per_task=cpu / max(tasks, 1))


async def pickup_latencies(anchor: Anchor, postgres: BenchPostgres, sizes: Sizes) -> list[float]:
    """Seconds from an enqueue call to its handler starting, one job at a time to an idle worker.

    The clock starts as the enqueue is called, so the figure includes the enqueue's own round trip: the commit
    lies somewhere inside it, and a clock read after the call returns can come after the handler started when
    this process is descheduled (as WVS's ``created_at``, stamped at its transaction's start).
    """
    dsn = await fresh(anchor, postgres)
    args = [str(sizes.workspaces), "--report-starts"]
    latencies = []
    async with (
        children(anchor, dsn, "worker", args, 1, sizes.deadline) as (worker,),
        anchor.enqueuer(dsn, 1) as enqueue,
    ):
        await worker.send("go")
        await asyncio.sleep(0.5)  # let the worker reach its idle wait
        for n in range(PICKUP_WARMUP + sizes.pickup_samples):
            key = workspace_key(n % sizes.workspaces)
            called = time.monotonic()
            await enqueue(key)
            started_key, started_at = await worker.expect("start")
            if started_key != key:
                raise RuntimeError(f"{anchor.library} started {started_key}, expected {key}")
            if n >= PICKUP_WARMUP:
                latencies.append(float(started_at) - called)
            await asyncio.sleep(random.uniform(0.01, 0.03))  # idle again, and not in step with any poll
        await worker.send("stop")
        await worker.expect("done")
    return latencies


async def enqueue_rate(anchor: Anchor, postgres: BenchPostgres, sizes: Sizes) -> float:
    """Single-job enqueues per second from ``enqueue_connections`` concurrent clients; no worker running."""
    dsn = await fresh(anchor, postgres)
    args = [str(sizes.workspaces), f"--connections={sizes.enqueue_connections}", f"--seconds={sizes.enqueue_seconds}"]
    async with children(anchor, dsn, "enqueue", args, 1, sizes.deadline) as (enqueuer,):
        await enqueuer.send("go")
        enqueued, _cpu, elapsed = await enqueuer.expect("done")
    return int(enqueued) / float(elapsed)
