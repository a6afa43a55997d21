"""Accepting a task in one statement: what ``POST /v1/workspaces/{wsid}/tasks`` and its aliases do when the op
declares no snapshot to check first (``Store.submit_task``; ops that do take the general path).

In one round trip, under the same rules as the general path: lock the workspace row (in the caller's scope),
find the task an earlier request with the same Idempotency-Key created, and — when there is none and the
workspace is ACTIVE — insert the task (``created_at`` is ``clock_timestamp()`` taken under the lock) and append
its ``task.created`` event through ``wvs.record_event`` (see ``db/events.py``). Nothing in it notifies: the
wake-ups of the schedulers and of the event dispatcher follow its commit (``db/wakeups.py``), so it never waits
for PostgreSQL's notification lock, which every notifying transaction holds through its commit.
"""

from __future__ import annotations

import json
from typing import Any, cast

import asyncpg
import attrs
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from wvs_core.db.rows import task_from_row
from wvs_core.events import EventType
from wvs_core.ids import uuid7
from wvs_core.models import Task, TaskStatus, WorkspaceState
from wvs_core.scope import Scope

# The earlier task is read in the statement's snapshot, taken before the lock was granted: an identical
# request that committed meanwhile is not in it, and ON CONFLICT then inserts nothing (the caller looks again).
_ACCEPT = sa.text(
    f"""
    WITH workspace AS MATERIALIZED (
        SELECT wsid, state FROM wvs.workspaces
        WHERE wsid = :wsid AND (CAST(:owners AS text[]) IS NULL OR owner = ANY(CAST(:owners AS text[])))
        FOR UPDATE
    ),
    earlier AS MATERIALIZED (
        SELECT * FROM wvs.tasks WHERE wsid = :wsid AND op = :op AND idempotency_key = :idempotency_key
    ),
    created AS (
        INSERT INTO wvs.tasks (task_id, wsid, op, status, idempotency_key, request_hash, created_at, next_run_at,
                               max_attempts, timeout_seconds, params, request_id, actor)
        SELECT :task_id, wsid, :op, '{TaskStatus.PENDING}', :idempotency_key, :request_hash, clock_timestamp(),
               clock_timestamp(), :max_attempts, :timeout_seconds, :params, :request_id, :actor
        FROM workspace
        WHERE state = '{WorkspaceState.ACTIVE}' AND NOT EXISTS (SELECT FROM earlier)
        ON CONFLICT (wsid, op, idempotency_key) DO NOTHING
        RETURNING *
    ),
    event AS MATERIALIZED (
        SELECT wvs.record_event('{EventType.TASK_CREATED}', wsid, task_id, request_id, actor, :payload, NULL)
        FROM created
    )
    SELECT workspace.state AS workspace_state, found.*
    FROM workspace
    LEFT JOIN (
        SELECT false AS is_new, * FROM earlier
        UNION ALL
        SELECT true, * FROM created WHERE EXISTS (SELECT FROM event)
    ) AS found ON true
    """
).bindparams(
    sa.bindparam("owners", type_=ARRAY(sa.Text)),
    sa.bindparam("params", type_=JSONB),
    sa.bindparam("actor", type_=JSONB),
    sa.bindparam("payload", type_=JSONB),
)

# The statement as asyncpg takes it ($n placeholders) and its parameters' order. A request sends it straight
# through the pooled connection's driver, which prepares it once per connection: SQLAlchemy's execution around a
# statement (cache lookup, execution context, result) cost about a third of the CPU the accept's database call
# takes. The JSONB
# parameters go as JSON text, the form the codec SQLAlchemy's dialect installs on each connection takes; that
# codec decodes the JSONB columns of the row.
_COMPILED = _ACCEPT.compile(dialect=PGDialect_asyncpg())
_DRIVER_SQL = str(_COMPILED)
_DRIVER_ORDER: list[str] = list(_COMPILED.positiontup or ())
_JSONB = frozenset({"params", "actor", "payload"})
_ALIVE = sa.text("SELECT 1")


@attrs.frozen
class Acceptance:
    """What the statement found: no workspace (None: missing or outside the scope), its state, and the task
    it created (``created``) or the one an earlier request with the key created — or no task at all, when the
    workspace is not ACTIVE or an identical request committed while this one waited for the lock."""

    workspace_state: WorkspaceState | None
    task: Task | None = None
    created: bool = False


async def accept(
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
    scope: Scope,
) -> Acceptance:
    """Run the accepting statement in the caller's transaction (which then holds the workspace's row lock).

    Sent straight through the pooled connection's asyncpg driver (see ``_DRIVER_SQL``). Raises what the database
    raised; a connection the database dropped is found dead by SQLAlchemy as on any other statement, which then
    renews the pool and raises its own error (``database_unavailable``: the API answers "retry")."""
    values = {
        "wsid": wsid,
        "owners": None if scope.owners is None else sorted(scope.owners),
        "op": op,
        "idempotency_key": idempotency_key,
        "task_id": uuid7(),
        "request_hash": request_hash,
        "max_attempts": max_attempts,
        "timeout_seconds": timeout_seconds,
        "params": params,
        "request_id": request_id,
        "actor": actor,
        "payload": {"op": op, "after": {"status": TaskStatus.PENDING, "params": params}},
    }
    arguments = [json.dumps(values[name]) if name in _JSONB else values[name] for name in _DRIVER_ORDER]
    driver = cast(asyncpg.Connection, (await conn.get_raw_connection()).driver_connection)  # checked out: set
    try:
        row = await driver.fetchrow(_DRIVER_SQL, *arguments)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError) as error:
        await conn.execute(_ALIVE)  # a dropped connection fails here too, the way SQLAlchemy handles: pool renewed
        if not isinstance(error, asyncpg.PostgresError):
            await conn.invalidate()  # the driver's end is broken though the socket is not closed yet: discard it
        raise
    if row is None:
        return Acceptance(workspace_state=None)
    state = WorkspaceState(row["workspace_state"])
    if row["task_id"] is None:
        return Acceptance(state)
    return Acceptance(state, task_from_row(row), created=bool(row["is_new"]))
