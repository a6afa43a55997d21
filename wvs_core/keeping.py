"""The safety snapshot of a rollback (SPEC §4, "A rollback loses nothing"), for any op that replaces ``current``.

Once ``current`` has switched, the live tree it replaced is renamed out of the agent view into the snapshot area
(O(1), whatever its size) under an id the server chose when the task was created, and its metadata is written
beside it, which completes it: an ordinary snapshot labelled ``auto=before-rollback``, listed, restorable,
droppable, subject to retention. The op's DB-side rule records its row (``record_kept``).

Crash-safe at every instant: before the rename the tree is still ``live/<id>`` (declared by the task that made it
current, so ``wvs fsck`` keeps it), after it the tree is at its final name; a tree there without its metadata is
this step interrupted between rename and seal, which a re-run (or ``wvs fsck --fix``) completes and nothing ever
removes (``TaskOp.kept_trees`` declares it). No live tree is left behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from wvs_core.ids import is_uuid
from wvs_core.layout import LIVE, WorkspaceLayout
from wvs_core.models import ExecutionResult, Task
from wvs_core.ops import ExecutionContext, WorkspaceTransaction
from wvs_core.trees import SnapshotTree, seal_snapshot

log = logging.getLogger(__name__)

BEFORE_ROLLBACK: Mapping[str, str] = MappingProxyType({"auto": "before-rollback"})
"""The labels of a tree a rollback kept."""


def kept_message(task_id: str, op: str) -> str:
    """The message of the snapshot a task kept: it names the task."""
    return f"the tree current held before task {task_id} ({op}) replaced it"


def replaced_live_id(ctx: ExecutionContext, previous_live_path: str) -> str | None:
    """The live id in ``previous_live_path`` (what the database said ``current`` held when the task was claimed)
    when it is exactly ``<root>/live/<uuid>`` of this workspace, else None."""
    live_id = Path(previous_live_path).name
    return live_id if is_uuid(live_id) and previous_live_path == str(ctx.layout.live(live_id)) else None


async def keep_replaced_tree(ctx: ExecutionContext, live_id: str | None, snapshot_id: str) -> dict[str, str]:
    """Keep ``live/<live_id>`` (``current`` no longer points to it) as the snapshot ``snapshot_id``, or finish
    keeping it after a crash; idempotent. Returns the result entries ``kept_snapshot_id`` and ``kept_fs_path``,
    none when there was nothing to keep (no previous tree, or the agent removed it itself).

    The rollback has happened by then, so an agent that put anything but a directory at the tree's name only
    loses its own keep: nothing is kept (and nothing followed), the op still succeeds. Steps reached: kept
    (renamed), kept-sealed.
    """
    snapshot = SnapshotTree(snapshot_id, kept_message(ctx.task_id, ctx.op_name), BEFORE_ROLLBACK)
    kept = await asyncio.to_thread(_keep, ctx, live_id, snapshot)
    if not kept:
        return {}
    return {"kept_snapshot_id": snapshot_id, "kept_fs_path": str(ctx.layout.snapshot(snapshot_id))}


def _keep(ctx: ExecutionContext, live_id: str | None, snapshot: SnapshotTree) -> bool:
    final = ctx.layout.snapshot(snapshot.snapshot_id)
    if not os.path.lexists(final):
        if live_id is None or not ctx.view.release_live_tree(live_id, final):
            log.warning("nothing to keep: %s is not a directory", ctx.view.describe(LIVE, live_id or "?"))
            return False
        ctx.reached("kept")
    elif not stat.S_ISDIR(os.lstat(final).st_mode):  # a link swapped in for the tree, moved before a crash
        os.unlink(final)
        return False
    if not snapshot.is_complete(ctx):  # else: sealed before a crash
        snapshot.seal(ctx)
        ctx.reached("kept-sealed")
    return True


def seal_kept_tree(layout: WorkspaceLayout, snapshot_id: str, task_id: str, op: str) -> None:
    """Blocking: complete a kept tree whose keep stopped between rename and seal, as the keep would have."""
    seal_snapshot(layout, snapshot_id, kept_message(task_id, op), BEFORE_ROLLBACK)


async def record_kept(tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
    """The DB-side rule: record the snapshot the task kept, if it kept one (``snapshot.created``)."""
    if snapshot_id := result.results.get("kept_snapshot_id"):
        message = kept_message(task.task_id, task.op)
        await tx.add_snapshot(task.wsid, snapshot_id, result.results["kept_fs_path"], message, labels=BEFORE_ROLLBACK)
