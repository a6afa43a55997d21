"""snapshot_create: quiesce, clone ``current`` into WVS's area under a temporary name, rename, write metadata."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import attrs

from wvs_core import metrics
from wvs_core.fsutil import fsync_dir
from wvs_core.ids import check_uuid, uuid7
from wvs_core.layout import snapshot_metadata, write_snapshot_metadata
from wvs_core.models import ExecutionResult, Task
from wvs_core.ops import CHOSEN_BY_SERVER, ExecutionContext, TaskOp, WorkspaceTransaction
from wvs_ops.params import parse_params
from wvs_ops.trees import check_clone, current_tree

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

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Clone under quiesce; nothing is cloned when the agent does not confirm the freeze."""
        params = parse_params(ctx, SnapshotCreateParams)
        layout = ctx.layout
        final, tmp = layout.snapshot(params.snapshot_id), layout.snapshot_tmp(params.snapshot_id)
        results = {"snapshot_id": params.snapshot_id, "fs_path": str(final)}
        if await asyncio.to_thread(snapshot_metadata, layout, params.snapshot_id):
            return ExecutionResult(success=True, noop=True, results=results)
        async with current_tree(ctx) as (_live_id, source):
            # Leftovers of an attempt that crashed: a half-made clone, or a tree renamed without metadata.
            await ctx.storage.remove_tree(tmp)
            await ctx.storage.remove_tree(final)
            ctx.reached("cleaned")
            ctx.checkpoint()
            try:
                async with ctx.quiesced():
                    ctx.reached("frozen")
                    ctx.checkpoint()
                    started = time.monotonic()
                    entries = await ctx.storage.clone_tree(source, tmp)
                    metrics.CLONE_DURATION.labels(self.name).observe(time.monotonic() - started)
                    ctx.reached("cloned")
                ctx.reached("resumed")
                ctx.checkpoint()
                await asyncio.to_thread(check_clone, tmp)
                await asyncio.to_thread(tmp.rename, final)
                await asyncio.to_thread(fsync_dir, layout.snapshots_dir)
                ctx.reached("renamed")
                created_at = datetime.now(UTC).isoformat()
                metadata = {"wsid": ctx.wsid, "message": params.message, "created_at": created_at}
                await asyncio.to_thread(write_snapshot_metadata, layout, params.snapshot_id, metadata)
                ctx.reached("sealed")
            except BaseException:
                await ctx.storage.remove_tree(tmp)  # never leave a half-made tree behind
                raise
        metrics.CLONE_ENTRIES.labels(self.name).inc(entries)
        return ExecutionResult(success=True, results=results)

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
        """Record the snapshot row."""
        await tx.add_snapshot(
            task.wsid, result.results["snapshot_id"], result.results["fs_path"], task.params.get("message")
        )
