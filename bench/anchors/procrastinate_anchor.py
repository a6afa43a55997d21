"""Procrastinate 3.10, tuned as its docs say (howto/production: concurrency, connections, delete_finished_jobs)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from importlib.metadata import version
from typing import Literal

import attrs
from procrastinate import App, PsycopgConnector

from bench.anchors.base import Enqueue

TASK = "noop"
QUEUE = "bench"
BACKLOG_CHUNK = 5_000


def app_on(dsn: str, pool_size: int) -> App:
    return App(connector=PsycopgConnector(conninfo=dsn, min_size=pool_size, max_size=pool_size))


@attrs.frozen
class ProcrastinateAnchor:
    name: str = "procrastinate"
    library: str = f"Procrastinate {version('procrastinate')}"
    loop: Literal["asyncio", "uvloop"] = "asyncio"  # `procrastinate worker` runs asyncio's own loop
    remaining_sql: str = "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
    # Tuned on this 2-core machine (noisy: other suites ran), draining 5,000 jobs over 1,000 locks after
    # ANALYZE, tasks/s: concurrency 2 → 395, 5 → 482 / 377 / 358, 10 → 358 / 389, 30 → 300, 60 → 276
    # (no-op jobs: more sub-workers only contend on the lock-checking fetch).
    concurrency: int = 5
    polling_interval: float = 0.1

    def settings(self, workspaces: int) -> str:
        return (
            f"lock=<workspace> on every job over {workspaces:,} workspaces (jobs sharing a lock run one at a time, "
            f"in order); worker concurrency={self.concurrency}, psycopg pool min=max={self.concurrency + 1} "
            f"(concurrency + 1), listen_notify=True, delete_jobs=always, "
            f"fetch_job_polling_interval={self.polling_interval}s (a worker that found every remaining job locked "
            "waits for it: a finished job sends no NOTIFY); enqueue: defer_async over a psycopg pool"
        )

    def tuning(self) -> str:
        return f"concurrency={self.concurrency}, lock per workspace"

    async def install(self, dsn: str) -> None:
        app = app_on(dsn, 1)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()

    async def enqueue_backlog(self, dsn: str, keys: Sequence[str]) -> None:
        app = app_on(dsn, 1)
        async with app.open_async():
            jobs = [app.configure_task(TASK, queue=QUEUE, lock=key).make_new_job(key=key) for key in keys]
            for start in range(0, len(jobs), BACKLOG_CHUNK):
                await app.job_manager.batch_defer_jobs_async(jobs[start : start + BACKLOG_CHUNK])

    @contextlib.asynccontextmanager
    async def enqueuer(self, dsn: str, connections: int) -> AsyncIterator[Enqueue]:
        app = app_on(dsn, connections)
        async with app.open_async():
            yield lambda key: app.configure_task(TASK, queue=QUEUE, lock=key).defer_async(key=key)

    async def work(self, dsn: str, workspaces: int, started: Callable[[str], None], stop: asyncio.Event) -> None:
        app = app_on(dsn, self.concurrency + 1)

        @app.task(name=TASK, queue=QUEUE)
        async def noop(key: str) -> None:
            started(key)

        async with app.open_async():
            worker = asyncio.create_task(
                app.run_worker_async(
                    queues=[QUEUE],
                    concurrency=self.concurrency,
                    listen_notify=True,
                    delete_jobs="always",
                    fetch_job_polling_interval=self.polling_interval,
                    install_signal_handlers=False,
                )
            )
            await stop.wait()
            worker.cancel()  # the documented graceful stop of an embedded worker
            with contextlib.suppress(asyncio.CancelledError):
                await worker
