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

from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from wvs_core.db.rows import task_from_row
from wvs_core.db.tables import tasks
from wvs_core.events import EventType
from wvs_core.ids import uuid7
from wvs_core.models import Task, TaskStatus, WorkspaceState
from wvs_core.scope import Scope

# The earlier task is read in the statement's snapshot, taken before the lock was granted: an identical
# request that committed meanwhile is not in it, and ON CONFLICT then inserts nothing (the caller looks again).
_ACCEPT = (
    sa.text(
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
    )
    .bindparams(
        sa.bindparam("owners", type_=ARRAY(sa.Text)),
        sa.bindparam("params", type_=JSONB),
        sa.bindparam("actor", type_=JSONB),
        sa.bindparam("payload", type_=JSONB),
    )
    .columns(sa.column("workspace_state", sa.Text), sa.column("is_new", sa.Boolean), *tasks.c)
)


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
    """Run the accepting statement in the caller's transaction (which then holds the workspace's row lock)."""
    row = (
        await conn.execute(
            _ACCEPT,
            {
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
            },
        )
    ).first()
    if row is None:
        return Acceptance(workspace_state=None)
    state = WorkspaceState(row.workspace_state)
    if row.task_id is None:
        return Acceptance(state)
    return Acceptance(state, task_from_row(row), created=bool(row.is_new))
