"""snapshot_create: clone the live tree ``current`` points to, under quiesce, into a snapshot in WVS's area."""

from __future__ import annotations

import asyncio
from types import MappingProxyType

import attrs

from wvs_core.ids import check_uuid, uuid7
from wvs_core.labels import check_labels
from wvs_core.models import ExecutionResult, Task
from wvs_core.ops import CHOSEN_BY_SERVER, ExecutionContext, OpRoute, TaskOp, WorkspaceTransaction
from wvs_core.storage import TreeUsage
from wvs_core.trees import LiveTree, SnapshotTree
from wvs_ops.params import parse_params

MAX_MESSAGE_LENGTH = 4096


def _check_labels(_instance: object, _attribute: object, value: dict[str, str]) -> None:
    check_labels(value)


@attrs.frozen
class SnapshotCreateParams:
    """An optional message (at most 4,096 characters) and labels (SPEC §2: at most 16, keys
    ``^[a-z0-9][a-z0-9_.-]{0,62}$``, values at most 256 characters); the snapshot's id is chosen when the task
    is created."""

    message: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.max_len(MAX_MESSAGE_LENGTH)),
        metadata={"description": "why the snapshot was taken, at most 4096 characters"},
    )
    labels: dict[str, str] = attrs.field(
        factory=dict,
        validator=_check_labels,
        metadata={"description": "labels of the snapshot, at most 16 key: value pairs (values at most 256 characters)"},
    )
    snapshot_id: str = attrs.field(factory=uuid7, validator=check_uuid, metadata=CHOSEN_BY_SERVER)


class SnapshotCreate(TaskOp):
    """Snapshot ``current``: a quiesced clone of the live tree into WVS's area.

    Idempotent: a complete snapshot is reported as done; a partial one is discarded and redone."""

    name = "snapshot_create"
    params_type = SnapshotCreateParams
    quiesces = True
    result_types = MappingProxyType({"entries": int, "bytes": int})  # TreeUsage's figures, when the clone gave them
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
        usage = await ctx.clone(live, snapshot, freeze=True)
        return ExecutionResult(success=True, results=results | (usage or TreeUsage()).as_results())

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
        """Record the snapshot row, with its labels and the usage the clone reported."""
        await tx.add_snapshot(
            task.wsid,
            result.results["snapshot_id"],
            result.results["fs_path"],
            task.params.get("message"),
            labels=task.params.get("labels") or {},
            usage=TreeUsage.from_results(result.results),
        )
