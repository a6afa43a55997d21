"""The safety snapshot of a rollback (SPEC §4, "A rollback loses nothing"), for any op that replaces ``current``.

Once ``current`` has switched, the live tree it replaced is cloned into the snapshot area under an id the server
chose when the task was created, completed with its metadata — an ordinary snapshot labelled
``auto=before-rollback``, listed, restorable, droppable, subject to retention — and then removed from the view.
The op's DB-side rule records its row (``record_kept``).

A clone, not a rename (which SPEC §4 allows as O(1)): a renamed tree keeps the agent's inodes, so a descriptor
the agent held open in it, or a hard link it made to one of its files from elsewhere in its view, would still
write into the snapshot after it was sealed — and a later restore would bring that back (SPEC §13: an agent
never changes a snapshot). The clone has inodes of its own. On JuiceFS it is a metadata clone, like a snapshot's.

Crash-safe at every instant: until the clone is complete the replaced tree is still ``live/<id>`` (declared by the
task that made it current, so ``wvs fsck`` keeps it); once complete (``ctx.clone``'s rename and seal), a re-run
only removes ``live/<id>``. No live tree is left behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from wvs_core.agentview import WorkspaceTampered
from wvs_core.ids import is_uuid
from wvs_core.layout import LIVE, WorkspaceLayout
from wvs_core.models import ExecutionResult, Task
from wvs_core.ops import ExecutionContext, WorkspaceTransaction
from wvs_core.trees import LiveTree, SnapshotTree, seal_snapshot
from wvs_core.treewalk import TreeTooDeep

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
    """Keep ``live/<live_id>`` (``current`` no longer points to it) as the snapshot ``snapshot_id``, then remove
    it from the view, or finish doing so after a crash; idempotent. Returns the result entries
    ``kept_snapshot_id`` and ``kept_fs_path``, none when there was nothing to keep (no previous tree, or the agent
    removed it or put something else at its name: nothing is followed).

    The rollback has happened by then, so an agent that tampered with the replaced tree, or nested it deeper than
    a walk goes (``TreeTooDeep``), only loses its own keep: the op still succeeds. Steps reached: those of
    ``ctx.clone``, kept, replaced-removed.
    """
    snapshot = SnapshotTree(snapshot_id, kept_message(ctx.task_id, ctx.op_name), BEFORE_ROLLBACK)
    kept = await ctx.has_tree(snapshot)
    if not kept and live_id is not None:
        try:
            await ctx.clone(LiveTree(live_id), snapshot)
            kept = True
        except (WorkspaceTampered, TreeTooDeep) as error:  # the agent's doing: the rollback has happened all the same
            log.warning("nothing to keep: %s", error)
    ctx.reached("kept")
    if live_id is not None:
        try:
            await asyncio.to_thread(ctx.view.remove_tree, LIVE, live_id)
        except OSError as error:  # the agent, racing the removal of its old tree: the rollback has happened
            log.warning("could not remove the replaced tree %s: %s", ctx.view.describe(LIVE, live_id), error)
        ctx.reached("replaced-removed")
    if not kept:
        return {}
    return {"kept_snapshot_id": snapshot_id, "kept_fs_path": str(ctx.layout.snapshot(snapshot_id))}


def seal_kept_tree(layout: WorkspaceLayout, snapshot_id: str, task_id: str, op: str) -> None:
    """Blocking: complete a kept tree whose keep stopped between rename and seal, as the keep would have."""
    seal_snapshot(layout, snapshot_id, kept_message(task_id, op), BEFORE_ROLLBACK)


async def record_kept(tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
    """The DB-side rule: record the snapshot the task kept, if it kept one (``snapshot.created``)."""
    if snapshot_id := result.results.get("kept_snapshot_id"):
        message = kept_message(task.task_id, task.op)
        await tx.add_snapshot(task.wsid, snapshot_id, result.results["kept_fs_path"], message, labels=BEFORE_ROLLBACK)
