"""PgQueuer 1.6, tuned as its performance guide says (docs/guides/performance-tuning.md, tools/benchmark.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from typing import Literal

import asyncpg
import attrs
import pgqueuer
from pgqueuer import AsyncpgDriver, AsyncpgPoolDriver, Job, Queries, QueueManager
from pgqueuer.adapters.persistence.qb import DBSettings, Durability, QueryBuilderEnvironment

from bench.anchors.base import Enqueue, workspace_key

BACKLOG_CHUNK = 10_000


@attrs.frozen
class PgQueuerAnchor:
    name: str = "pgqueuer"
    library: str = f"PgQueuer {pgqueuer.__version__}"
    loop: Literal["asyncio", "uvloop"] = "uvloop"  # `pgq run` runs on uvloop
    remaining_sql: str = "SELECT count(*) FROM pgqueuer"  # a finished job's row moves to pgqueuer_log
    # Tuned on this 2-core machine (noisy: other suites ran), draining 5,000 jobs over 1,000 entrypoints after
    # ANALYZE, tasks/s: batch 10 → 437, 50 → 866, 100 → 1,044 / 872, 250 → 1,257 / 828, 500 → 1,299,
    # 1,000 → 868; 5 managers x batch 10 → 458, 2 x 50 → 1,034.
    batch_size: int = 500
    managers: int = 1  # QueueManagers per worker process, each on its own connection

    def settings(self, workspaces: int) -> str:
        return (
            f"{workspaces:,} entrypoints (one per workspace) each concurrency_limit=1, the only per-key serialization "
            f"PgQueuer has (dedupe_key only dedupes queued jobs); {self.managers} QueueManager per process on a "
            f"dedicated asyncpg connection, batch_size={self.batch_size}, LISTEN/NOTIFY, uvloop; "
            "durability=balanced (queue table logged, log/statistics unlogged), `pgq autovac` applied; "
            "enqueue: Queries.enqueue over an asyncpg pool (AsyncpgPoolDriver)"
        )

    def tuning(self) -> str:
        return f"batch_size={self.batch_size}, entrypoint per workspace with concurrency_limit=1"

    async def install(self, dsn: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            tuned = QueryBuilderEnvironment(DBSettings(durability=Durability.balanced))
            queries = Queries(AsyncpgDriver(connection), qbe=tuned)
            await queries.install()
            await queries.optimize_autovacuum()
        finally:
            await connection.close()

    async def enqueue_backlog(self, dsn: str, keys: Sequence[str]) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            queries = Queries(AsyncpgDriver(connection))
            for start in range(0, len(keys), BACKLOG_CHUNK):
                chunk = list(keys[start : start + BACKLOG_CHUNK])
                await queries.enqueue(chunk, [key.encode() for key in chunk], [0] * len(chunk))
        finally:
            await connection.close()

    @contextlib.asynccontextmanager
    async def enqueuer(self, dsn: str, connections: int) -> AsyncIterator[Enqueue]:
        async with asyncpg.create_pool(dsn, min_size=connections, max_size=connections) as pool:
            queries = Queries(AsyncpgPoolDriver(pool))
            yield lambda key: queries.enqueue(key, key.encode())

    async def work(self, dsn: str, workspaces: int, started: Callable[[str], None], stop: asyncio.Event) -> None:
        async def noop(job: Job) -> None:
            started(job.entrypoint)

        managers = []
        for _ in range(self.managers):
            manager = QueueManager(Queries(AsyncpgDriver(await asyncpg.connect(dsn))))
            for n in range(workspaces):
                manager.entrypoint(workspace_key(n), concurrency_limit=1)(noop)
            managers.append(manager)

        async def stop_when_told() -> None:
            await stop.wait()
            for manager in managers:
                manager.shutdown.set()

        running = [
            manager.run(batch_size=self.batch_size, dequeue_timeout=timedelta(seconds=30)) for manager in managers
        ]
        await asyncio.gather(stop_when_told(), *running)
