"""What ``wvs fsck`` reads from and repairs in the database."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from wvs_core.db.events import record
from wvs_core.db.rows import from_row
from wvs_core.db.tables import snapshots, tasks, workspaces
from wvs_core.events import AuditOnly, EventType, NewEvent
from wvs_core.models import Snapshot, TaskStatus, Workspace

FSCK_ACTOR = {"type": "fsck"}

LiveTrees = Callable[[str, Mapping[str, Any]], dict[str, str | None] | None]
"""The live trees a succeeded task of an op with given params made current (the ops' declarations)."""

KeptTrees = Callable[[str, Mapping[str, Any]], list[str]]
"""The snapshots a task of an op with given params makes of the live tree it replaced (the ops' declarations)."""


# Workspaces whose stored head is not what their tasks say it is (a trigger keeps it; a write that bypassed
# triggers — a data-only restore, session_replication_role = replica — or a hand-edited row can leave it wrong).
_WRONG_HEADS = sa.text(
    """
    SELECT w.wsid, w.head_task_id, w.head_run_at, h.task_id, h.run_at
    FROM wvs.workspaces w
    LEFT JOIN LATERAL wvs.workspace_head(w.wsid) AS h ON true
    WHERE (CAST(:wsid AS text) IS NULL OR w.wsid = :wsid)
      AND (w.head_task_id, w.head_created_at, w.head_run_at) IS DISTINCT FROM (h.task_id, h.created_at, h.run_at)
    ORDER BY w.wsid
    """
)
_REFRESH_HEAD = sa.text("SELECT wvs.refresh_workspace_head(:wsid)")


@attrs.frozen
class WrongHead:
    """A workspace whose stored head (its oldest unfinished task, and when that may run) is not its tasks'."""

    wsid: str
    stored: tuple[str | None, datetime | None]  # (head_task_id, head_run_at)
    actual: tuple[str | None, datetime | None]  # the oldest unfinished task, and when it may run (None: running)


class ConsistencyStore:
    """Reads and repairs for the consistency check; every repair is audited, and one that changes a
    workspace or a snapshot is the same event as any other such change, by the actor ``{"type": "fsck"}``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def workspaces(self, wsid: str | None = None) -> list[Workspace]:
        """One workspace or all."""
        query = workspaces.select().order_by(workspaces.c.wsid)
        if wsid is not None:
            query = query.where(workspaces.c.wsid == wsid)
        async with self.engine.connect() as conn:
            return [from_row(row, Workspace) for row in await conn.execute(query)]

    async def is_busy(self, wsid: str) -> bool:
        """True while a task of the workspace is RUNNING: its disk and database may legitimately differ."""
        query = sa.select(tasks.c.task_id).where(tasks.c.wsid == wsid, tasks.c.status == TaskStatus.RUNNING)
        async with self.engine.connect() as conn:
            return (await conn.execute(query.limit(1))).first() is not None

    async def wrong_heads(self, wsid: str | None = None) -> list[WrongHead]:
        """Workspaces (``wsid``, or all) whose stored head disagrees with their tasks."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(_WRONG_HEADS, {"wsid": wsid})
            return [WrongHead(row[0], (row[1], row[2]), (row[3], row[4])) for row in rows]

    async def repair_head(self, wsid: str) -> None:
        """Recompute the workspace's head from its tasks, under its row lock, as every task change does. Not
        audited: the head is derived from the tasks (like an index), and no workspace or task changes."""
        async with self.engine.begin() as conn:
            await conn.execute(_REFRESH_HEAD, {"wsid": wsid})

    async def snapshots(self, wsid: str) -> list[Snapshot]:
        """Every snapshot row of the workspace, deleted ones included."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(snapshots.select().where(snapshots.c.wsid == wsid))
            return [from_row(row, Snapshot) for row in rows]

    async def live_ids_made_current(self, wsid: str, live_trees: LiveTrees) -> tuple[dict[str, str | None], set[str]]:
        """Live tree ids that some successful task made current → the snapshot each was cloned from, as the
        tasks' ops declare them (``live_trees``: ``PluginRegistry.live_trees``); and the ops of succeeded tasks
        that declare nothing because no loaded plugin provides them."""
        query = sa.select(tasks.c.op, tasks.c.params).where(
            tasks.c.wsid == wsid, tasks.c.status == TaskStatus.SUCCEEDED
        )
        made: dict[str, str | None] = {}
        unknown: set[str] = set()
        async with self.engine.connect() as conn:
            for op, params in await conn.execute(query):
                declared = live_trees(op, params)
                if declared is None:
                    unknown.add(op)
                else:
                    made.update(declared)
        return made, unknown

    async def kept_snapshots(self, wsid: str, kept_trees: KeptTrees) -> dict[str, tuple[str, str]]:
        """Snapshot ids that a task of the workspace (in any state) makes by keeping the live tree it replaced,
        as the ops declare them (``kept_trees``: ``PluginRegistry.kept_trees``) → ``(task_id, op)``."""
        query = sa.select(tasks.c.task_id, tasks.c.op, tasks.c.params).where(tasks.c.wsid == wsid)
        async with self.engine.connect() as conn:
            return {
                snapshot_id: (task_id, op)
                for task_id, op, params in await conn.execute(query)
                for snapshot_id in kept_trees(op, params)
            }

    async def set_current_path(self, wsid: str, current_path: str, snapshot_id: str | None, before: str | None) -> None:
        """Make the database follow what ``current`` points to on disk."""
        async with self.engine.begin() as conn:
            await conn.execute(
                workspaces.update()
                .where(workspaces.c.wsid == wsid)
                .values(
                    current_path=current_path, current_snapshot_id=snapshot_id, updated_at=sa.func.clock_timestamp()
                )
            )
            data = {
                "before": {"current_path": before},
                "after": {"current_snapshot_id": snapshot_id, "current_path": current_path},
                "reason": "fsck: the database follows the disk",
            }
            await record(conn, NewEvent(type=EventType.CURRENT_CHANGED, wsid=wsid, actor=FSCK_ACTOR, data=data))

    async def mark_deleted(self, wsid: str, snapshot_id: str) -> None:
        """A snapshot whose tree is gone is gone: set ``deleted_at``."""
        async with self.engine.begin() as conn:
            marked = await conn.execute(
                snapshots.update()
                .where(snapshots.c.snapshot_id == snapshot_id, snapshots.c.deleted_at.is_(None))
                .values(deleted_at=sa.func.clock_timestamp())
                .returning(snapshots.c.deleted_at)
            )
            if (deleted_at := marked.scalar_one_or_none()) is not None:
                data = {
                    "after": {"snapshot_id": snapshot_id, "deleted_at": deleted_at.isoformat()},
                    "reason": "fsck: tree missing on disk",
                }
                await record(conn, NewEvent(type=EventType.SNAPSHOT_DROPPED, wsid=wsid, actor=FSCK_ACTOR, data=data))

    async def move_snapshot(self, wsid: str, snapshot_id: str, fs_path: str) -> None:
        """Point the snapshot's row at its tree's new path (the layout migration); a no-op when it already does."""
        async with self.engine.begin() as conn:
            moved = await conn.execute(
                snapshots.update()
                .where(snapshots.c.snapshot_id == snapshot_id, snapshots.c.wsid == wsid, snapshots.c.fs_path != fs_path)
                .values(fs_path=fs_path)
                .returning(snapshots.c.snapshot_id)
            )
            if moved.first() is not None:
                data = {"after": {"snapshot_id": snapshot_id, "fs_path": fs_path}}
                await record(conn, NewEvent(type=AuditOnly.SNAPSHOT_MOVED, wsid=wsid, actor=FSCK_ACTOR, data=data))
