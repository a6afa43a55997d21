"""Every statement on ``wvs.tasks``: core owns the task table (docs/architecture.md, "Who owns the task table").

A queue plugin only picks which runnable rows a claim takes (``TaskQueue.choice``). Everything written to a
task row — its creation, its start under a lease, renewals, its end, a cancel, a release — and every list of
tasks is here. Each function runs in the caller's transaction (``conn``) and returns the rows as written; in
that transaction a trigger moves the workspace's head (its oldest unfinished task, on the workspace row) along
with them (docs/architecture.md, "Workspace heads").
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from wvs_core.db.driver import DriverTransaction
from wvs_core.db.pagination import keyset_page
from wvs_core.db.rows import task_from_row
from wvs_core.db.tables import tasks
from wvs_core.ids import uuid7
from wvs_core.models import UNFINISHED, Task, TaskOutcome, TaskStatus

# A claim's first statement: the queue's choice (``TaskQueue.choice``) picks and locks the rows, which come back
# as they start — RUNNING for a worker under a lease (seconds), the attempt counted — for ``start`` to write
# once the ops' claim rules decided (a task whose rule ends it is written once, straight to its outcome). The
# second lock, on rows the choice already locked, reads each row's newest version, as an UPDATE would. A row
# the choice picked that is not runnable comes back with ``task_id`` NULL (a faulty queue).
_CLAIM = """
    WITH picked AS MATERIALIZED ({choice}),
    started AS (
        SELECT {started}
        FROM wvs.tasks t
        WHERE t.task_id IN (SELECT task_id FROM picked) AND t.status IN ('PENDING', 'FAILED')
        FOR UPDATE
    )
    SELECT picked.task_id AS picked_id, started.*
    FROM picked LEFT JOIN started ON started.task_id = picked.task_id
    ORDER BY started.created_at, started.task_id
    """
_STARTED = {
    "status": "'RUNNING'",
    "attempt": "t.attempt + 1",
    "started_at": "clock_timestamp()",
    "ended_at": "NULL::timestamptz",
    "worker_id": "CAST(:worker_id AS text)",
    "lease_expires_at": "clock_timestamp() + make_interval(secs => :lease)",
}

# The claimed rows written, each as it started (``ended`` false: RUNNING under its lease) or as it ended in its
# claim (with its outcome, as ``_END`` writes one); :task_ids as in ``_END``.
_START = sa.text(
    """
    UPDATE wvs.tasks t
    SET status = s.status,
        attempt = s.attempt,
        started_at = s.started_at,
        ended_at = CASE WHEN s.ended THEN clock_timestamp() END,
        result = CASE WHEN s.ended THEN s.result ELSE t.result END,
        error = CASE WHEN s.ended THEN s.error ELSE t.error END,
        next_run_at = CASE WHEN s.ended THEN clock_timestamp() + make_interval(secs => s.next_run_in)
                           ELSE t.next_run_at END,
        worker_id = CASE WHEN s.ended THEN NULL ELSE s.worker_id END,
        lease_expires_at = CASE WHEN s.ended THEN NULL ELSE s.lease_expires_at END
    FROM jsonb_to_recordset(:rows) AS s(
        task_id text, status text, attempt int, started_at timestamptz, worker_id text, lease_expires_at timestamptz,
        ended boolean, result jsonb, error jsonb, next_run_in float8
    )
    WHERE t.task_id = ANY(:task_ids) AND t.task_id = s.task_id AND t.status IN ('PENDING', 'FAILED')
    RETURNING t.*
    """
).bindparams(sa.bindparam("rows", type_=JSONB))

# Several runs' ends in one statement, one outcome per row of :endings; a row whose task is no longer RUNNING
# for the worker that ran it (its lease was lost) matches nothing. :task_ids, the same ids as an array, lets the
# planner count them and find the rows by the primary key (it guesses 100 rows for jsonb_to_recordset, and on a
# small table scans it whole).
_END = sa.text(
    """
    UPDATE wvs.tasks t
    SET status = e.status,
        ended_at = clock_timestamp(),
        result = e.result,
        error = e.error,
        next_run_at = clock_timestamp() + make_interval(secs => e.next_run_in),
        worker_id = NULL,
        lease_expires_at = NULL
    FROM jsonb_to_recordset(:endings) AS e(
        task_id text, worker_id text, status text, result jsonb, error jsonb, next_run_in float8
    )
    WHERE t.task_id = ANY(:task_ids) AND t.task_id = e.task_id
      AND t.status = 'RUNNING' AND t.worker_id IS NOT DISTINCT FROM e.worker_id
    RETURNING t.*
    """
).bindparams(sa.bindparam("endings", type_=JSONB))

_RENEW = sa.text(
    """
    UPDATE wvs.tasks
    SET lease_expires_at = clock_timestamp() + make_interval(secs => :lease)
    WHERE task_id = ANY(:task_ids) AND status = 'RUNNING' AND worker_id = :worker_id
    RETURNING task_id
    """
)

# Expired leases: the scheduler that held them died (or lost the database for longer than the lease).
_EXPIRED = sa.text(
    """
    SELECT * FROM wvs.tasks
    WHERE status = 'RUNNING' AND lease_expires_at < clock_timestamp()
    ORDER BY lease_expires_at
    LIMIT 100
    FOR UPDATE SKIP LOCKED
    """
)

# Graceful shutdown: back to the queue as if never claimed.
_RELEASE = sa.text(
    """
    UPDATE wvs.tasks
    SET status = 'PENDING', attempt = greatest(attempt - 1, 0), started_at = NULL,
        worker_id = NULL, lease_expires_at = NULL, next_run_at = clock_timestamp()
    WHERE task_id = :task_id AND status = 'RUNNING' AND worker_id = :worker_id
    RETURNING *
    """
)

_DEPTH = sa.text("SELECT count(*) FROM wvs.tasks WHERE status IN ('PENDING', 'FAILED')")

_CANCEL_REQUESTED = sa.text("SELECT cancel_requested FROM wvs.tasks WHERE task_id = :task_id")

# A new task; ``created_at`` taken under the workspace's row lock (see ``insert``).
_INSERT = (
    tasks.insert()
    .values(status=TaskStatus.PENDING, created_at=sa.func.clock_timestamp(), next_run_at=sa.func.clock_timestamp())
    .returning(*tasks.c)
)


def _task(row: sa.Row[Any] | None) -> Task | None:
    return task_from_row(row) if row is not None else None


# --- the API's: create, find, list, cancel ---------------------------------------------------------------


async def insert(
    conn: AsyncConnection,
    wsid: str,
    op: str,
    params: dict[str, Any],
    *,
    max_attempts: int,
    timeout_seconds: int,
    idempotency_key: str,
    request_hash: str,
    request_id: str,
    actor: dict[str, Any],
) -> Task:
    """A new PENDING task. Call it holding the workspace's row lock: ``created_at`` is ``clock_timestamp()``
    taken under it, so a workspace's creation order equals its commit order."""
    row = {
        "task_id": uuid7(),
        "wsid": wsid,
        "op": op,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "max_attempts": max_attempts,
        "timeout_seconds": timeout_seconds,
        "params": params,
        "request_id": request_id,
        "actor": actor,
    }
    return task_from_row((await conn.execute(_INSERT, row)).one())


async def find_by_key(conn: AsyncConnection, wsid: str, op: str, idempotency_key: str) -> Task | None:
    """The task an earlier request with this Idempotency-Key created, or None."""
    query = tasks.select().where(tasks.c.wsid == wsid, tasks.c.op == op, tasks.c.idempotency_key == idempotency_key)
    return _task((await conn.execute(query)).first())


async def first_unfinished(conn: AsyncConnection, wsid: str) -> str | None:
    """The id of one PENDING, RUNNING or FAILED task of the workspace, or None."""
    query = sa.select(tasks.c.task_id).where(tasks.c.wsid == wsid, tasks.c.status.in_(UNFINISHED)).limit(1)
    found: str | None = (await conn.execute(query)).scalar()
    return found


async def get(
    conn: AsyncConnection, task_id: str, visible: sa.ColumnElement[bool], *, lock: bool = False
) -> Task | None:
    """The task if ``visible`` (SQL over ``tasks``) admits it, else None; with ``lock``, its row is locked —
    NOWAIT: a row another transaction holds raises PostgreSQL's lock_not_available at once."""
    query = tasks.select().where(tasks.c.task_id == task_id, visible)
    return _task((await conn.execute(query.with_for_update(nowait=True) if lock else query)).first())


async def newest_of(conn: AsyncConnection, wsid: str, ops: Collection[str]) -> Task | None:
    """The newest task of ``wsid`` whose op is one of ``ops``; None when there is none."""
    query = (
        tasks.select()
        .where(tasks.c.wsid == wsid, tasks.c.op.in_(list(ops)))
        .order_by(tasks.c.created_at.desc(), tasks.c.task_id.desc())
        .limit(1)
    )
    return _task((await conn.execute(query)).first())


async def newest(
    conn: AsyncConnection, visible: sa.ColumnElement[bool], cursor: str | None, limit: int, **equal: str | None
) -> list[Task]:
    """One page of the tasks ``visible`` admits, newest first (``limit + 1`` rows: see ``keyset_page``),
    restricted to the columns in ``equal`` (``wsid``, ``status``, ``op``) that are set."""
    query = tasks.select().where(visible)
    for column, value in equal.items():
        if value:
            query = query.where(tasks.c[column] == value)
    query = keyset_page(query, tasks.c.created_at, tasks.c.task_id, cursor, limit)
    return [task_from_row(row) for row in await conn.execute(query)]


async def cancel(conn: AsyncConnection, task: Task) -> Task:
    """Set ``cancel_requested``; a task not RUNNING is CANCELED at once (a RUNNING one stops at its next
    safe point, and its scheduler records how it ended)."""
    values: dict[str, Any] = {"cancel_requested": True}
    if task.status != TaskStatus.RUNNING:
        values |= {"status": TaskStatus.CANCELED, "ended_at": sa.func.clock_timestamp()}
    query = tasks.update().where(tasks.c.task_id == task.task_id).values(**values).returning(*tasks.c)
    return task_from_row((await conn.execute(query)).one())


# --- the schedulers': start, renew, end, release, reap ----------------------------------------------------


@functools.cache
def _claiming(choice: str, limit: int) -> tuple[str, tuple[str, ...]]:
    """The claim over ``choice`` for the driver: its SQL, and the names of its ``$n`` parameters in order."""
    started = ", ".join(f"{_STARTED.get(column.name, f't.{column.name}')} AS {column.name}" for column in tasks.c)
    # The limit is written into the statement, not sent: one prepared statement per limit, whose plan PostgreSQL
    # then keeps (a generic plan), instead of planning the claim anew for each batch as a parameter makes it.
    statement = sa.text(_CLAIM.format(choice=choice, started=started)).bindparams(
        sa.bindparam("limit", type_=sa.Integer, literal_execute=True)
    )
    expanded = statement.compile(dialect=PGDialect_asyncpg()).construct_expanded_state(
        {"limit": limit, "worker_id": "", "lease": 0.0}
    )
    return expanded.statement, tuple(expanded.positiontup or ())


async def claim(
    transaction: DriverTransaction, choice: sa.TextClause, limit: int, worker_id: str, lease: float
) -> list[Task]:
    """Up to ``limit`` tasks that ``choice`` (the queue's, ``TaskQueue.choice``) picks, locked, as they start:
    RUNNING for ``worker_id`` until ``lease`` seconds from now, an attempt counted; oldest first. Not written yet:
    ``start`` writes them in the same transaction. The statement goes straight to the driver: it is the one a
    wake-up waits for. Raises RuntimeError when the choice picked a task that is not runnable (a queue must only
    pick runnable tasks)."""
    sql, names = _claiming(choice.text, limit)
    values = {"worker_id": worker_id, "lease": lease}
    rows = await transaction.fetch(sql, *(values[name] for name in names))
    if unrunnable := [row["picked_id"] for row in rows if row["task_id"] is None]:
        raise RuntimeError(f"the queue picked task {unrunnable[0]}, which is not runnable")
    return [task_from_row(row) for row in rows]


async def start(conn: AsyncConnection, claimed: Sequence[Task], ended: Mapping[str, TaskOutcome]) -> dict[str, Task]:
    """Write the tasks ``claim`` returned, in one statement: as they started, or — those in ``ended``, by task
    id — straight to that outcome (one write of the row, not two). Returns them as written, by id."""
    rows = []
    for task in claimed:
        outcome = ended.get(task.task_id)
        row: dict[str, Any] = {
            "task_id": task.task_id,
            "status": outcome.status.value if outcome else task.status.value,
            "attempt": task.attempt,
            "started_at": task.started_at.isoformat() if task.started_at else None,
            "worker_id": task.worker_id,
            "lease_expires_at": task.lease_expires_at.isoformat() if task.lease_expires_at else None,
            "ended": outcome is not None,
        }
        if outcome is not None:
            row |= {"result": outcome.result, "error": outcome.error, "next_run_in": outcome.next_run_in}
        rows.append(row)
    task_ids = [task.task_id for task in claimed]
    return {row.task_id: task_from_row(row) for row in await conn.execute(_START, {"rows": rows, "task_ids": task_ids})}


async def renew(conn: AsyncConnection, worker_id: str, task_ids: list[str], lease: float) -> set[str]:
    """Extend to ``lease`` seconds from now the leases ``worker_id`` still holds; returns their ids."""
    rows = await conn.execute(_RENEW, {"task_ids": task_ids, "worker_id": worker_id, "lease": lease})
    return {row.task_id for row in rows}


async def end(conn: AsyncConnection, endings: Sequence[tuple[Task, TaskOutcome]]) -> dict[str, Task]:
    """Write each outcome to its task, RUNNING for ``task.worker_id``, in one statement; returns the tasks
    ended, by id — without those no longer RUNNING for their worker."""
    rows = [
        {
            "task_id": task.task_id,
            "worker_id": task.worker_id,
            "status": outcome.status.value,
            "result": outcome.result,
            "error": outcome.error,
            "next_run_in": outcome.next_run_in,
        }
        for task, outcome in endings
    ]
    task_ids = [task.task_id for task, _ in endings]
    return {
        row.task_id: task_from_row(row) for row in await conn.execute(_END, {"endings": rows, "task_ids": task_ids})
    }


async def release(conn: AsyncConnection, task: Task) -> Task | None:
    """Back to PENDING, the attempt uncounted; None when the task is no longer RUNNING for its worker."""
    return _task((await conn.execute(_RELEASE, {"task_id": task.task_id, "worker_id": task.worker_id})).first())


async def expired(conn: AsyncConnection) -> list[Task]:
    """Up to 100 RUNNING tasks whose lease expired, oldest expiry first, locked (others' locks skipped)."""
    return [task_from_row(row) for row in await conn.execute(_EXPIRED)]


async def cancel_requested(conn: AsyncConnection, task_id: str) -> bool:
    """The task's ``cancel_requested`` flag (False for an unknown task)."""
    return bool((await conn.execute(_CANCEL_REQUESTED, {"task_id": task_id})).scalar())


async def depth(conn: AsyncConnection) -> int:
    """Tasks waiting to run: PENDING, or FAILED awaiting a retry."""
    return int((await conn.execute(_DEPTH)).scalar_one())
