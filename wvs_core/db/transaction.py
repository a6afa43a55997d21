"""The scheduler's side of an op's DB rules: ``WorkspaceTransaction`` over one connection."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from wvs_core.db.audit import write_audit
from wvs_core.db.rows import from_row
from wvs_core.db.tables import snapshots, workspaces
from wvs_core.models import Task, Workspace, WorkspaceState

SCHEDULER_ACTOR = {"type": "scheduler"}


class SqlWorkspaceTransaction:
    """Implements ``wvs_core.ops.WorkspaceTransaction`` inside the queue's transaction for ``task``."""

    def __init__(self, conn: AsyncConnection, task: Task, actor: dict[str, Any] | None = None) -> None:
        self.conn = conn
        self.task = task
        self.actor = actor or SCHEDULER_ACTOR
        self.state_changes: list[tuple[str, str]] = []  # (from, to), for metrics once committed

    async def get_workspace(self, wsid: str) -> Workspace:
        """The workspace row, locked for the rest of the transaction."""
        row = (await self.conn.execute(workspaces.select().where(workspaces.c.wsid == wsid).with_for_update())).one()
        return from_row(row, Workspace)

    async def set_workspace_state(self, wsid: str, state: WorkspaceState, **fields: Any) -> None:
        """Move the workspace to ``state`` and update ``fields``, with an audit row."""
        before = await self.get_workspace(wsid)
        await self.conn.execute(
            workspaces.update()
            .where(workspaces.c.wsid == wsid)
            .values(state=state, updated_at=sa.func.clock_timestamp(), **fields)
        )
        if before.state != state:
            self.state_changes.append((before.state, state))
        await write_audit(
            self.conn,
            action="workspace.state",
            wsid=wsid,
            task_id=self.task.task_id,
            request_id=self.task.request_id,
            actor=self.actor,
            payload={"before": {"state": before.state}, "after": {"state": state, **fields}},
        )

    async def add_snapshot(self, wsid: str, snapshot_id: str, fs_path: str, message: str | None) -> None:
        """Record a snapshot that exists on disk; a re-run after a crash finds it recorded already."""
        await self.conn.execute(
            pg_insert(snapshots)
            .values(snapshot_id=snapshot_id, wsid=wsid, fs_path=fs_path, message=message)
            .on_conflict_do_nothing(index_elements=["snapshot_id"])
        )
        await write_audit(
            self.conn,
            action="snapshot.create",
            wsid=wsid,
            task_id=self.task.task_id,
            request_id=self.task.request_id,
            actor=self.actor,
            payload={"after": {"snapshot_id": snapshot_id, "fs_path": fs_path, "message": message}},
        )
