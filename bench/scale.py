"""The scale figures' two databases, and the claim's cost against the backlog they hold.

Each database holds ``ScaleRows`` (N workspaces, N tasks queued behind N/100 busy workspaces, N snapshots, N
audit rows) and ``drain-*`` workspaces for new work. Both are seeded once per run, before the rounds: every
round times the list endpoints on them (``bench.lists``) and drains new tasks past their backlog
(``backlog_drain``).

The backlog drain: ``tasks`` new ``bench_noop`` tasks in the ``drain-*`` workspaces, created after the whole
backlog, drained by one ``wvs worker``. None of the backlog can start (each busy workspace's oldest task is
RUNNING), so a claim that does not depend on the backlog drains them as fast with N = 1M as with N = 1k. The rate
is read from the database's clock (first ``started_at`` to last ``ended_at``), since the worker's start-up claim
already faces the backlog. At the deadline the worker is killed, its statements ended, and the rate is what was
drained in the deadline; a database whose drain was stopped is not drained again (its leftovers would skew it).
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import attrs
from sqlalchemy.ext.asyncio import create_async_engine

from bench import seed
from bench.noop_plugin import Noop
from bench.postgres import BenchPostgres
from bench.processes import plane
from bench.seed import ScaleRows
from bench.stage import Stage
from wvs_core.db.engine import async_dsn


@attrs.define
class ScaleDatabase:
    """One seeded database: its name, DSN, what it holds, its ``drain-*`` workspaces; ``stopped`` once a backlog
    drain ran out of time on it."""

    name: str
    dsn: str
    rows: ScaleRows
    drain_wsids: list[str]
    stopped: bool = False


@attrs.frozen
class BacklogDrain:
    tasks_per_second: float
    drained: int
    stopped_after: float | None  # seconds, when the deadline stopped it


async def scale_database(postgres: BenchPostgres, rows: int, drain_workspaces: int) -> ScaleDatabase:
    """A fresh database ``wvs_scale_<rows>`` holding ``ScaleRows(rows)`` and ``drain_workspaces`` ``drain-*``
    workspaces (within the N)."""
    name = f"wvs_scale_{rows}"
    dsn = await postgres.fresh_wvs_database(name)
    conn = await asyncpg.connect(dsn)
    try:
        wsids = await seed.add_workspaces(conn, "drain", drain_workspaces)
        scale = await seed.scale_rows(conn, rows, reserved_workspaces=drain_workspaces)
    finally:
        await conn.close()
    return ScaleDatabase(name, dsn, scale, wsids)


UNFINISHED = "SELECT count(*) FROM wvs.tasks WHERE wsid = ANY($1) AND status IN ('PENDING', 'RUNNING', 'FAILED')"
# Tasks of the backlog that started: none may, each waits behind its workspace's RUNNING task (FIFO).
BACKLOG_MOVED = """
    SELECT count(*) FROM wvs.tasks
    WHERE wsid <> ALL($1) AND op = 'bench_noop' AND status <> 'PENDING' AND worker_id IS DISTINCT FROM $2
"""
DRAINED = """
    SELECT count(*) AS drained, extract(epoch FROM max(ended_at) - min(started_at)) AS seconds
    FROM wvs.tasks WHERE wsid = ANY($1) AND created_at >= $2 AND status = 'SUCCEEDED'
"""


async def backlog_drain(stage: Stage, database: ScaleDatabase, tasks: int, deadline: float) -> BacklogDrain:
    """Drain ``tasks`` new tasks past the database's backlog with one ``wvs worker``, within ``deadline`` seconds."""
    engine = create_async_engine(async_dsn(database.dsn))
    conn = await asyncpg.connect(database.dsn)
    try:
        since = await conn.fetchval("SELECT now()")
        async with engine.begin() as creating:
            await seed.add_tasks(creating, Noop.name, database.drain_wsids, tasks)
        deployment = stage.deployment(f"backlog-{database.name}", database.dsn)
        async with plane(deployment, "worker", stage.memory, wait=False) as worker:
            started = time.monotonic()
            while left := await conn.fetchval(UNFINISHED, database.drain_wsids):
                if time.monotonic() - started > deadline:
                    worker.process.kill()  # a graceful stop would wait for the claim statement in flight
                    break
                await asyncio.sleep(0.05)
        if left:
            database.stopped = True
            # The killed worker's statements run on until they next write to its socket: end them.
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        drained = await conn.fetchrow(DRAINED, database.drain_wsids, since)
        if moved := await conn.fetchval(BACKLOG_MOVED, database.drain_wsids, seed.RUNNING_ELSEWHERE):
            raise RuntimeError(f"{moved} tasks of the backlog started behind a RUNNING task of their workspace")
    finally:
        await conn.close()
        await engine.dispose()
    if left:
        return BacklogDrain(drained["drained"] / deadline, drained["drained"], deadline)
    if drained["drained"] != tasks:
        raise RuntimeError(f"{tasks - drained['drained']} drained tasks did not succeed; logs in {deployment.logs}")
    return BacklogDrain(tasks / float(drained["seconds"]), tasks, None)
