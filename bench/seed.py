"""Rows a measurement starts from, written straight into the WVS database (the API would dominate the run).

Tasks that a measurement drains are created with core's own ``wvs_core.db.tasks.insert``, as the API does
minus its request handling (no ``task.created`` event): whatever core maintains when a task is created, it
maintains here too. The millions of rows of the scale figures (``scale_rows``) are written by
``INSERT … SELECT generate_series`` in seconds, column by column: if core starts keeping per-workspace state
beside a task row, ``scale_rows`` must keep it too (the backlog figure's drain would stall or break — the smoke
test fails when it does not finish).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import asyncpg
import attrs
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from wvs_core.db import tasks
from wvs_core.ids import uuid7

BENCH_ACTOR = {"type": "bench"}
STATUS = "SELECT status, ended_at FROM wvs.tasks WHERE task_id = $1"
RUNNING_ELSEWHERE = "bench-busy"  # the worker_id of the RUNNING tasks that keep the backlog's workspaces busy


async def add_workspaces(conn: asyncpg.Connection, prefix: str, count: int, state: str = "ACTIVE") -> list[str]:
    """``count`` workspaces ``PREFIX-0`` … in ``state``, created a millisecond apart; their wsids."""
    await conn.execute(
        """
        INSERT INTO wvs.workspaces (wsid, root_path, owner, state, created_at, updated_at)
        SELECT format('%s-%s', $1::text, n), format('/bench/%s-%s', $1::text, n), 'bench', $3,
               now() - make_interval(secs => ($2 - n) * 0.001), now()
        FROM generate_series(0, $2 - 1) n
        """,
        prefix,
        count,
        state,
    )
    return [f"{prefix}-{n}" for n in range(count)]


async def add_tasks(conn: AsyncConnection, op: str, wsids: Sequence[str], count: int) -> None:
    """``count`` PENDING tasks of ``op``, task n in workspace ``wsids[n % len(wsids)]``, each by core's
    ``tasks.insert`` in the caller's transaction (so created in that order, and visible at its commit)."""
    for n in range(count):
        await tasks.insert(
            conn,
            wsids[n % len(wsids)],
            op,
            {},
            max_attempts=5,
            timeout_seconds=300,
            idempotency_key=uuid7(),
            request_hash="",
            request_id=f"bench-{n}",
            actor=BENCH_ACTOR,
        )


async def until_succeeded(conn: asyncpg.Connection, task_id: str, logs: Path, poll: float = 0.005) -> float:
    """Poll the task every ``poll`` seconds until it left PENDING and RUNNING; its ``ended_at`` (Unix time).
    RuntimeError unless it SUCCEEDED (a failure, even one to be retried, spoils the figure), naming ``logs``."""
    while (row := await conn.fetchrow(STATUS, task_id))["status"] in ("PENDING", "RUNNING"):  # noqa: ASYNC110
        await asyncio.sleep(poll)
    if row["status"] != "SUCCEEDED":
        raise RuntimeError(f"task {task_id} ended {row['status']}; the WVS processes' logs are in {logs}")
    return float(row["ended_at"].timestamp())


async def unfinished(conn: AsyncConnection, op: str) -> int:
    """How many tasks of ``op`` have not ended (PENDING, RUNNING, FAILED)."""
    query = sa.text("SELECT count(*) FROM wvs.tasks WHERE op = :op AND status IN ('PENDING', 'RUNNING', 'FAILED')")
    return int((await conn.execute(query, {"op": op})).scalar_one())


@attrs.frozen
class ScaleRows:
    """What ``scale_rows`` wrote for ``rows`` (N): N workspaces, N tasks, N snapshots, N audit rows.

    - ``busy``: N/100 workspaces, each with its oldest task RUNNING (held by a scheduler that is not there,
      its lease a day long) and 99 PENDING behind it — N queued tasks none of which can start;
    - ``HISTORY``: one workspace with N snapshots and N audit rows (``task.succeeded`` events);
    - ``RARE`` DEAD ``snapshot_create`` tasks and ``RARE`` DISABLED workspaces: what a filter looks for;
    - ACTIVE workspaces without tasks make up the N workspaces.
    """

    RARE: ClassVar[int] = 10
    BACKLOG_PER_WORKSPACE: ClassVar[int] = 100
    HISTORY: ClassVar[str] = "history-0"

    rows: int

    @property
    def busy(self) -> int:
        """How many busy workspaces: ``busy-0`` … ``busy-(N/100 - 1)``."""
        return self.rows // self.BACKLOG_PER_WORKSPACE


async def scale_rows(conn: asyncpg.Connection, rows: int, reserved_workspaces: int) -> ScaleRows:
    """Write ``ScaleRows(rows)``, leaving ``reserved_workspaces`` of the N workspaces for the caller to add;
    then VACUUM ANALYZE, as a database that has run a while would be."""
    scale = ScaleRows(rows)
    busy = scale.busy
    await add_workspaces(conn, "busy", busy)
    await add_workspaces(conn, "history", 1)
    await add_workspaces(conn, "disabled", ScaleRows.RARE, state="DISABLED")
    await add_workspaces(conn, "idle", max(0, rows - busy - 1 - ScaleRows.RARE - reserved_workspaces))
    # Task n is in workspace busy-(n mod busy): the first `busy` tasks, the oldest of each, are RUNNING.
    await conn.execute(
        """
        INSERT INTO wvs.tasks (task_id, wsid, op, status, created_at, next_run_at, started_at, attempt,
                               worker_id, lease_expires_at)
        SELECT gen_random_uuid()::text, format('busy-%s', n % $1), 'bench_noop',
               CASE WHEN n < $1 THEN 'RUNNING' ELSE 'PENDING' END,
               now() - interval '2 days' + make_interval(secs => n * 0.000001),
               now() - interval '2 days' + make_interval(secs => n * 0.000001),
               CASE WHEN n < $1 THEN now() END, CASE WHEN n < $1 THEN 1 ELSE 0 END,
               CASE WHEN n < $1 THEN $3 END, CASE WHEN n < $1 THEN now() + interval '1 day' END
        FROM generate_series(0, $2 - 1) n
        """,
        busy,
        busy * ScaleRows.BACKLOG_PER_WORKSPACE,
        RUNNING_ELSEWHERE,
    )
    await conn.execute(
        """
        INSERT INTO wvs.tasks (task_id, wsid, op, status, created_at, next_run_at, started_at, ended_at,
                               attempt, error)
        SELECT gen_random_uuid()::text, $1, 'snapshot_create', 'DEAD', now() - interval '3 days' + n * interval '1 s',
               now() - interval '3 days', now() - interval '3 days', now() - interval '3 days', 5,
               '{"code": "WVS_EXECUTOR_ERROR", "reason": "CLONE_FAILED"}'::jsonb
        FROM generate_series(0, $2 - 1) n
        """,
        ScaleRows.HISTORY,
        ScaleRows.RARE,
    )
    await conn.execute(
        """
        INSERT INTO wvs.snapshots (snapshot_id, wsid, fs_path, created_at)
        SELECT gen_random_uuid()::text, $1, format('/bench/snapshots/%s', n),
               now() - interval '1 day' + make_interval(secs => n * 0.00001)
        FROM generate_series(0, $2 - 1) n
        """,
        ScaleRows.HISTORY,
        rows,
    )
    await conn.execute(
        """
        INSERT INTO wvs.audit (ts, wsid, action, actor, payload)
        SELECT now() - interval '1 day' + make_interval(secs => n * 0.00001), $1, 'task.succeeded',
               '{"type": "bench"}'::jsonb, '{"op": "bench_noop"}'::jsonb
        FROM generate_series(0, $2 - 1) n
        """,
        ScaleRows.HISTORY,
        rows,
    )
    await conn.execute("VACUUM ANALYZE")
    return scale
