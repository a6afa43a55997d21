"""The scheduler's side of an op's DB rules: ``WorkspaceTransaction`` over one connection."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from wvs_core.db.events import DeferredEvents
from wvs_core.db.rows import from_row
from wvs_core.db.tables import snapshots, tasks, workspaces
from wvs_core.events import EventType, NewEvent, workspace_event_type
from wvs_core.models import UNFINISHED, Snapshot, Task, Workspace, WorkspaceState
from wvs_core.storage import TreeUsage

SCHEDULER_ACTOR = {"type": "scheduler"}


SnapshotReferences = Callable[[str, Mapping[str, Any]], list[str]]
"""The snapshots a task of an op with given params references: the loaded ops' declarations
(``PluginRegistry.snapshot_references``), so no op or param name is known here."""


async def snapshot_users(
    conn: AsyncConnection,
    wsid: str,
    snapshot_id: str,
    references: SnapshotReferences,
    except_task_id: str | None = None,
) -> list[str]:
    """``"current"`` if the workspace's current tree came from the snapshot, plus every other unfinished
    task that references it (per its op's declaration): the reasons it may not be dropped.

    A task of another workspace references it too when it is that workspace's initializer (a fork,
    ``TaskOp.source_workspace``): such a task is unfinished exactly while its workspace is PROVISIONING, so
    those few workspaces' unfinished tasks are read as well (snapshot ids are unique across workspaces)."""
    users: list[str] = []
    current = (
        await conn.execute(sa.select(workspaces.c.current_snapshot_id).where(workspaces.c.wsid == wsid))
    ).scalar_one_or_none()
    if current == snapshot_id:
        users.append("current")
    provisioning = sa.select(workspaces.c.wsid).where(
        workspaces.c.state == WorkspaceState.PROVISIONING, workspaces.c.wsid != wsid
    )
    query = sa.select(tasks.c.task_id, tasks.c.op, tasks.c.params).where(
        sa.or_(tasks.c.wsid == wsid, tasks.c.wsid.in_(provisioning)), tasks.c.status.in_(UNFINISHED)
    )
    for row in await conn.execute(query):  # one workspace's unfinished tasks and the initializers running: a handful
        if row.task_id != except_task_id and snapshot_id in references(row.op, row.params):
            users.append(row.task_id)
    return users


class SqlWorkspaceTransaction:
    """Implements ``wvs_core.ops.WorkspaceTransaction`` inside the queue's transaction for ``task``."""

    def __init__(
        self,
        conn: AsyncConnection,
        task: Task,
        references: SnapshotReferences,
        actor: dict[str, Any] | None = None,
        op_event_types: Collection[str] = (),
        events: DeferredEvents | None = None,
    ) -> None:
        self.conn = conn
        self.events = events or DeferredEvents(conn)  # the transaction's events still waiting go first
        self.task = task
        self.references = references
        self.actor = actor or SCHEDULER_ACTOR
        self.op_event_types = frozenset(op_event_types)  # what the task's op declares (``TaskOp.event_types``)
        self.state_changes: list[tuple[str, str]] = []  # (from, to), for metrics once committed

    async def record_event(self, type_: str, data: Mapping[str, Any]) -> None:
        """Record an event of a type the task's op declares, with ``op`` added to ``data``."""
        if type_ not in self.op_event_types:
            raise ValueError(f"op {self.task.op} does not declare the event type {type_!r} (TaskOp.event_types)")
        await self._record(type_, {"op": self.task.op, **data})

    async def _record(self, type_: str, data: dict[str, Any]) -> None:
        event = NewEvent(
            type=type_,
            wsid=self.task.wsid,
            task_id=self.task.task_id,
            request_id=self.task.request_id,
            actor=self.actor,
            data=data,
        )
        await self.events.record([event])

    async def get_workspace(self, wsid: str) -> Workspace:
        """The workspace row, locked for the rest of the transaction."""
        row = (await self.conn.execute(workspaces.select().where(workspaces.c.wsid == wsid).with_for_update())).one()
        return from_row(row, Workspace)

    async def set_workspace_state(self, wsid: str, state: WorkspaceState, **fields: Any) -> None:
        """Move the workspace to ``state`` and update ``fields``; a change of state is an event."""
        before = await self.get_workspace(wsid)
        await self.conn.execute(
            workspaces.update()
            .where(workspaces.c.wsid == wsid)
            .values(state=state, updated_at=sa.func.clock_timestamp(), **fields)
        )
        if before.state != state:
            self.state_changes.append((before.state, state))
            data = {"before": {"state": before.state}, "after": {"state": state, **fields}}
            await self._record(workspace_event_type(state), data)

    async def set_current(self, wsid: str, snapshot_id: str | None, current_path: str) -> None:
        """Update ``current_snapshot_id`` and ``current_path`` together."""
        before = await self.get_workspace(wsid)
        await self.conn.execute(
            workspaces.update()
            .where(workspaces.c.wsid == wsid)
            .values(current_snapshot_id=snapshot_id, current_path=current_path, updated_at=sa.func.clock_timestamp())
        )
        await self._record(
            EventType.CURRENT_CHANGED,
            {
                "before": {"current_snapshot_id": before.current_snapshot_id, "current_path": before.current_path},
                "after": {"current_snapshot_id": snapshot_id, "current_path": current_path},
            },
        )

    async def get_snapshot(self, wsid: str, snapshot_id: str) -> Snapshot | None:
        """The snapshot row, deleted or not."""
        row = (
            await self.conn.execute(
                snapshots.select().where(snapshots.c.wsid == wsid, snapshots.c.snapshot_id == snapshot_id)
            )
        ).first()
        return from_row(row, Snapshot) if row else None

    async def add_snapshot(
        self,
        wsid: str,
        snapshot_id: str,
        fs_path: str,
        message: str | None,
        *,
        labels: Mapping[str, str] | None = None,
        usage: TreeUsage | None = None,
    ) -> None:
        """Record a snapshot that exists on disk; a re-run after a crash finds it recorded already."""
        usage = usage or TreeUsage()
        inserted = await self.conn.execute(
            pg_insert(snapshots)
            .values(
                snapshot_id=snapshot_id,
                wsid=wsid,
                fs_path=fs_path,
                message=message,
                labels=dict(labels or {}),
                entries=usage.entries,
                bytes=usage.bytes,
                created_at=sa.func.clock_timestamp(),  # not now(): a claim's transaction may have begun ahead
            )
            .on_conflict_do_nothing(index_elements=["snapshot_id"])
            .returning(snapshots.c.snapshot_id)
        )
        if inserted.first() is not None:
            after = {"snapshot_id": snapshot_id, "fs_path": fs_path, "message": message, "labels": dict(labels or {})}
            await self._record(EventType.SNAPSHOT_CREATED, {"after": after})

    async def snapshot_users(self, wsid: str, snapshot_id: str) -> list[str]:
        """Why the snapshot may not go (other than this task)."""
        return await snapshot_users(self.conn, wsid, snapshot_id, self.references, except_task_id=self.task.task_id)

    async def mark_snapshot_deleted(self, snapshot_id: str) -> datetime:
        """Set ``deleted_at`` unless already set (the drop is an event the first time only); returns it."""
        already = (
            await self.conn.execute(sa.select(snapshots.c.deleted_at).where(snapshots.c.snapshot_id == snapshot_id))
        ).scalar_one()
        if already is not None:
            return already
        deleted_at: datetime = (
            await self.conn.execute(
                snapshots.update()
                .where(snapshots.c.snapshot_id == snapshot_id)
                .values(deleted_at=sa.func.clock_timestamp())
                .returning(snapshots.c.deleted_at)
            )
        ).scalar_one()
        data = {"after": {"snapshot_id": snapshot_id, "deleted_at": deleted_at.isoformat()}}
        await self._record(EventType.SNAPSHOT_DROPPED, data)
        return deleted_at
