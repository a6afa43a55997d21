"""snapshot_drop: mark the snapshot deleted under the workspace's serialization, then remove its tree."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

import attrs

from wvs_core.errors import ErrorCode
from wvs_core.ids import check_uuid
from wvs_core.models import ExecutionResult, Task
from wvs_core.ops import ClaimDecision, ExecutionContext, OpRoute, TaskOp, WorkspaceTransaction
from wvs_ops.params import parse_params

log = logging.getLogger(__name__)


@attrs.frozen
class SnapshotDropParams:
    """The snapshot to drop."""

    snapshot_id: str = attrs.field(validator=check_uuid, metadata={"description": "the snapshot to drop"})


class SnapshotDrop(TaskOp):
    """Drop a snapshot that is neither current nor in use by an unfinished task.

    Idempotent: done when the snapshot's directory is gone."""

    name = "snapshot_drop"
    params_type = SnapshotDropParams
    routes = (
        OpRoute(
            "DELETE",
            "/v1/workspaces/{wsid}/snapshots/{snapshot_id}",
            body=False,
            operation_id="dropSnapshot",
            summary="Drop a snapshot that is neither current nor used by an unfinished task",
        ),
    )

    def references(self, params: Mapping[str, Any]) -> list[str]:
        """The snapshot being dropped: a second drop of it waits (it would find it gone)."""
        return [params["snapshot_id"]]

    def drops(self, params: Mapping[str, Any]) -> list[str]:
        """The snapshot: refused while it is current or another unfinished task references it."""
        return [params["snapshot_id"]]

    async def on_claimed(self, tx: WorkspaceTransaction, task: Task) -> ClaimDecision:
        """Re-check that nothing uses the snapshot and set ``deleted_at``, in the claiming transaction.

        The task is now its workspace's only running task, so no set_current can make the snapshot
        current between this check and the removal.
        """
        snapshot_id = task.params["snapshot_id"]
        snapshot = await tx.get_snapshot(task.wsid, snapshot_id)
        if snapshot is None:
            return ClaimDecision.reject(ErrorCode.NOT_FOUND, f"snapshot {snapshot_id} does not exist")
        users = await tx.snapshot_users(task.wsid, snapshot_id)
        if users:
            return ClaimDecision.reject(
                ErrorCode.CONFLICT_SNAPSHOT_IN_USE, f"snapshot {snapshot_id} is in use by {', '.join(users)}"
            )
        await tx.mark_snapshot_deleted(snapshot_id)
        return ClaimDecision.proceed()

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Remove the metadata first (the snapshot is no longer complete), then the tree (``juicefs rmr`` on
        JuiceFS) and any temporary leftovers."""
        params = parse_params(ctx, SnapshotDropParams)
        layout = ctx.layout
        tree = layout.snapshot(params.snapshot_id)
        existed = await asyncio.to_thread(os.path.lexists, tree)
        await asyncio.to_thread(layout.snapshot_metadata(params.snapshot_id).unlink, missing_ok=True)
        await ctx.storage.remove_tree(layout.snapshot_tmp(params.snapshot_id))
        ctx.reached("cleaned")
        await ctx.storage.remove_tree(tree)
        ctx.reached("removed")
        return ExecutionResult(success=True, noop=not existed, results={"snapshot_id": params.snapshot_id})

    async def on_dead(self, tx: WorkspaceTransaction, task: Task) -> None:
        """The tree could not be removed: say so loudly; ``deleted_at`` stays (the snapshot is gone for users)."""
        log.error(
            "snapshot %s is deleted but its tree could not be removed: %s",
            task.params["snapshot_id"],
            task.error,
            extra={"alert": "snapshot_tree_not_removed"},
        )
