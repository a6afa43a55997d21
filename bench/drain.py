"""Drains of no-op tasks by ``wvs worker`` processes: the drain rate, and the workers' CPU per task.

The tasks are created in one transaction, with core's own insert, while the workers start; the transaction
ANALYZEs them (a running queue has planner statistics) and announces them the way the queue plugin does. It
commits once every worker has run its first, empty, claim: that is when the clock starts, as the anchors' start
when their workers are told to go. The clock stops when no task of the drain is left unfinished; every one must
then have SUCCEEDED.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import attrs
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from bench import seed
from bench.noop_plugin import Noop, NoopExecuted
from bench.processes import Deployment, planes
from bench.stage import Stage
from wvs_core.db.engine import async_dsn
from wvs_core.plugins import PluginRegistry


@attrs.frozen
class Drained:
    tasks_per_second: float
    cpu_seconds_per_task: float  # the worker processes' user + system time while draining, per task


async def drain(
    stage: Stage,
    tasks: int,
    workspaces: int,
    processes: int,
    deadline: float,
    through_executor: bool = False,
    concurrency: int | None = None,
) -> Drained:
    """``processes`` workers drain ``tasks`` no-op tasks spread over ``workspaces`` workspaces (task n in workspace
    n mod ``workspaces``), in a fresh database: ``bench_noop`` tasks, or ``through_executor`` ``bench_noop_executed``
    ones and one ``wvs executor``; each worker with ``concurrency`` slots (default: WVS's). Raises RuntimeError
    after ``deadline`` seconds, or when a task did not succeed."""
    op = NoopExecuted.name if through_executor else Noop.name
    dsn = await stage.postgres.fresh_wvs_database("wvs_drain")
    deployment = stage.deployment(f"drain-{op}-{processes}p", dsn, concurrency=concurrency)
    setup = await asyncpg.connect(dsn)
    try:
        wsids = await seed.add_workspaces(setup, "ws", workspaces)
    finally:
        await setup.close()
    registry = PluginRegistry.load(deployment.config.plugins)
    engine = create_async_engine(async_dsn(dsn))
    plugins = deployment.config.plugins
    queue = registry.queues[plugins.queue](engine, plugins.settings_for(plugins.queue))
    try:
        async with engine.connect() as creating, contextlib.AsyncExitStack() as stack:
            transaction = await creating.begin()
            await seed.add_tasks(creating, op, wsids, tasks)
            await creating.execute(sa.text("ANALYZE"))  # counts this transaction's rows: statistics at commit
            await queue.announce(creating)
            names = ["executor"] * through_executor + ["worker"] * processes
            running = await stack.enter_async_context(planes(deployment, names, stage.memory))
            workers = [process for process in running if process.plane == "worker"]
            cpu_at_go = sum(worker.cpu_seconds() for worker in workers)
            await transaction.commit()
            started = time.monotonic()
            async with engine.connect() as watching:
                while await seed.unfinished(watching, op):
                    if time.monotonic() - started > deadline:
                        raise RuntimeError(f"WVS did not drain {tasks} {op} tasks in {deadline:g} s")
                    await asyncio.sleep(0.02)
                elapsed = time.monotonic() - started
                cpu = sum(worker.cpu_seconds() for worker in workers) - cpu_at_go
                await check_all_succeeded(watching, op, tasks, deployment)
    finally:
        await engine.dispose()
    return Drained(tasks_per_second=tasks / elapsed, cpu_seconds_per_task=cpu / tasks)


async def check_all_succeeded(conn: AsyncConnection, op: str, tasks: int, deployment: Deployment) -> None:
    query = sa.text("SELECT status, count(*) AS tasks FROM wvs.tasks WHERE op = :op GROUP BY status")
    statuses = {row.status: row.tasks for row in await conn.execute(query, {"op": op})}
    if statuses != {"SUCCEEDED": tasks}:
        raise RuntimeError(f"{op} tasks ended {statuses}, expected {tasks} SUCCEEDED; logs in {deployment.logs}")
