"""snapshot_create: quiesce, clone ``current`` into a temporary name, seal it with snapshot.json, rename."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import attrs

from wvs_core.fsutil import atomic_write_json, fsync_dir, read_json
from wvs_core.ids import check_uuid
from wvs_core.layout import WorkspaceLayout
from wvs_core.models import ExecutionResult, Task
from wvs_core.ops import ExecutionContext, OpFailed, TaskOp, WorkspaceTransaction
from wvs_ops.params import parse_params


@attrs.frozen
class SnapshotCreateParams:
    """The snapshot's id (chosen when the task is created) and an optional message."""

    snapshot_id: str = attrs.field(validator=check_uuid)
    message: str | None = None


def is_complete(layout: WorkspaceLayout, snapshot_id: str) -> bool:
    """A snapshot is complete once its directory holds a ``snapshot.json`` naming it."""
    metadata = read_json(layout.snapshot_metadata(snapshot_id))
    return isinstance(metadata, dict) and metadata.get("snapshot_id") == snapshot_id


def live_tree(layout: WorkspaceLayout) -> Path:
    """The live tree ``current`` points to; fails for good when the workspace has none."""
    if not layout.current_link.is_symlink() or not layout.current_link.resolve().is_dir():
        raise OpFailed("NO_CURRENT", f"{layout.current_link} is not a link to a live tree", retryable=False)
    return layout.current_link.resolve()


def _seal(layout: WorkspaceLayout, params: SnapshotCreateParams, wsid: str) -> None:
    tmp = layout.snapshot_tmp(params.snapshot_id)
    (tmp / ".wvs").mkdir(exist_ok=True)
    metadata = {
        "snapshot_id": params.snapshot_id,
        "wsid": wsid,
        "created_at": datetime.now(UTC).isoformat(),
        "message": params.message,
    }
    atomic_write_json(tmp / ".wvs" / "snapshot.json", metadata)
    tmp.rename(layout.snapshot(params.snapshot_id))
    fsync_dir(layout.snapshots_dir)


class SnapshotCreate(TaskOp):
    """Idempotent: a complete snapshot is reported as done; a partial one is discarded and redone."""

    name = "snapshot_create"
    params_type = SnapshotCreateParams

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Clone under quiesce; nothing is cloned when the agent does not confirm the freeze."""
        params = parse_params(ctx, SnapshotCreateParams)
        layout = ctx.layout
        results = {"snapshot_id": params.snapshot_id, "fs_path": str(layout.snapshot(params.snapshot_id))}
        if await asyncio.to_thread(is_complete, layout, params.snapshot_id):
            return ExecutionResult(success=True, noop=True, results=results)
        source = await asyncio.to_thread(live_tree, layout)
        # Leftovers of an attempt that crashed: a half-made clone, or a tree renamed without metadata.
        await ctx.storage.remove_tree(layout.snapshot_tmp(params.snapshot_id))
        await ctx.storage.remove_tree(layout.snapshot(params.snapshot_id))
        async with ctx.quiesced():
            await ctx.storage.clone_tree(source, layout.snapshot_tmp(params.snapshot_id))
        await asyncio.to_thread(_seal, layout, params, ctx.wsid)
        return ExecutionResult(success=True, results=results)

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
        """Record the snapshot row."""
        await tx.add_snapshot(
            task.wsid, result.results["snapshot_id"], result.results["fs_path"], task.params.get("message")
        )
