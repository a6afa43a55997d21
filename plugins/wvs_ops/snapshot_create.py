"""snapshot_create: clone the live tree ``current`` points to, under quiesce, into a snapshot in WVS's area."""

from __future__ import annotations

import asyncio

import attrs

from wvs_core.ids import check_uuid, uuid7
from wvs_core.models import ExecutionResult, Task
from wvs_core.ops import CHOSEN_BY_SERVER, ExecutionContext, OpRoute, TaskOp, WorkspaceTransaction
from wvs_core.trees import LiveTree, SnapshotTree
from wvs_ops.params import parse_params

MAX_MESSAGE_LENGTH = 4096


@attrs.frozen
class SnapshotCreateParams:
    """An optional message (at most 4,096 characters); the snapshot's id is chosen when the task is created."""

    message: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.max_len(MAX_MESSAGE_LENGTH)),
        metadata={"description": "why the snapshot was taken, at most 4096 characters"},
    )
    snapshot_id: str = attrs.field(factory=uuid7, validator=check_uuid, metadata=CHOSEN_BY_SERVER)


class SnapshotCreate(TaskOp):
    """Snapshot ``current``: a quiesced clone of the live tree into WVS's area.

    Idempotent: a complete snapshot is reported as done; a partial one is discarded and redone."""

    name = "snapshot_create"
    params_type = SnapshotCreateParams
    routes = (
        OpRoute(
            "POST",
            "/v1/workspaces/{wsid}/snapshots",
            answer=("snapshot_id",),
            operation_id="createSnapshot",
            summary="Snapshot `current` (under quiesce); the snapshot id is returned at once",
        ),
    )

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
