"""snapshot_create: clone the live tree ``current`` points to, under quiesce, into a snapshot in WVS's area."""

from __future__ import annotations

import asyncio

import attrs

from wvs_core.ids import check_uuid
from wvs_core.models import ExecutionResult, Task
from wvs_core.ops import ExecutionContext, TaskOp, WorkspaceTransaction
from wvs_core.trees import LiveTree, SnapshotTree
from wvs_ops.params import parse_params


@attrs.frozen
class SnapshotCreateParams:
    """The snapshot's id (chosen when the task is created) and an optional message."""

    snapshot_id: str = attrs.field(validator=check_uuid)
    message: str | None = None


class SnapshotCreate(TaskOp):
    """Idempotent: a complete snapshot is reported as done; a partial one is discarded and redone."""

    name = "snapshot_create"
    params_type = SnapshotCreateParams

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Clone the live tree ``current`` points to under quiesce (nothing is cloned when the agent does not
        confirm the freeze); a complete snapshot is reported done without reading the agent view."""
        params = parse_params(ctx, SnapshotCreateParams)
        snapshot = SnapshotTree(params.snapshot_id, params.message)
        results = {"snapshot_id": params.snapshot_id, "fs_path": str(ctx.layout.snapshot(params.snapshot_id))}
        if await ctx.has_tree(snapshot):
            return ExecutionResult(success=True, noop=True, results=results)
        live = LiveTree(await asyncio.to_thread(ctx.view.current_live_id))
        await ctx.clone(live, snapshot, freeze=True)
        return ExecutionResult(success=True, results=results)

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
        """Record the snapshot row."""
        await tx.add_snapshot(
            task.wsid, result.results["snapshot_id"], result.results["fs_path"], task.params.get("message")
        )
