"""set_current (rollback): clone a snapshot into a new live tree and switch ``current`` to it."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import attrs

from wvs_core import metrics
from wvs_core.agentview import AgentView, WorkspaceTampered
from wvs_core.errors import ErrorCode
from wvs_core.ids import check_uuid, uuid7
from wvs_core.keeping import keep_replaced_tree, record_kept, replaced_live_id
from wvs_core.layout import LIVE
from wvs_core.models import ExecutionResult, Task
from wvs_core.ops import (
    ADDED_AT_CLAIM,
    CHOSEN_BY_SERVER,
    ClaimDecision,
    ExecutionContext,
    OpRoute,
    TaskOp,
    WorkspaceTransaction,
)
from wvs_core.trees import LiveTree, SnapshotTree
from wvs_ops.params import parse_params

log = logging.getLogger(__name__)


@attrs.frozen
class SetCurrentParams:
    """The snapshot to restore; the ids of the live tree to build and of the snapshot that keeps the replaced one
    (chosen when the task is created); ``previous_live_path`` is what the database says ``current`` holds, added
    by ``on_claimed`` to the executor call (never stored with the task)."""

    snapshot_id: str = attrs.field(validator=check_uuid, metadata={"description": "the snapshot to restore"})
    new_live_id: str = attrs.field(factory=uuid7, validator=check_uuid, metadata=CHOSEN_BY_SERVER)
    kept_snapshot_id: str = attrs.field(factory=uuid7, validator=check_uuid, metadata=CHOSEN_BY_SERVER)
    previous_live_path: str = attrs.field(default="", metadata=ADDED_AT_CLAIM)


class SetCurrent(TaskOp):
    """Roll back: make ``current`` a fresh clone of a snapshot, quiesced.

    Idempotent: done once ``current`` points to this task's live tree and the replaced tree is kept as the
    snapshot ``kept_snapshot_id`` (``wvs_core.keeping``)."""

    name = "set_current"
    params_type = SetCurrentParams
    quiesces = True
    routes = (
        OpRoute(
            "POST",
            "/v1/workspaces/{wsid}/current:set",
            operation_id="setCurrent",
            summary="Roll back — clone a snapshot into a new live tree and switch `current` to it",
        ),
    )

    def references(self, params: Mapping[str, Any]) -> list[str]:
        """The snapshot being restored."""
        return [params["snapshot_id"]]

    def live_trees(self, params: Mapping[str, Any]) -> dict[str, str | None]:
        """The new live tree, a clone of the snapshot."""
        return {params["new_live_id"]: params["snapshot_id"]}

    def kept_trees(self, params: Mapping[str, Any]) -> list[str]:
        """The snapshot that keeps the replaced live tree."""
        return [params["kept_snapshot_id"]]

    async def on_claimed(self, tx: WorkspaceTransaction, task: Task) -> ClaimDecision:
        """Refuse a deleted snapshot; setting the current snapshot again is a no-op success; otherwise
        tell the executor which live tree is being replaced (a re-run after the switch can no longer see it)."""
        snapshot_id = task.params["snapshot_id"]
        snapshot = await tx.get_snapshot(task.wsid, snapshot_id)
        if snapshot is None or snapshot.deleted_at is not None:
            return ClaimDecision.reject(ErrorCode.NOT_FOUND, f"snapshot {snapshot_id} does not exist")
        workspace = await tx.get_workspace(task.wsid)
        if workspace.current_snapshot_id == snapshot_id:
            return ClaimDecision.done(
                ExecutionResult(success=True, noop=True, results={"current_path": workspace.current_path or ""})
            )
        return ClaimDecision.proceed(previous_live_path=workspace.current_path or "")

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Under quiesce: clone the snapshot into the new live tree (``ctx.clone``), switch ``current``, keep the
        replaced tree as a snapshot. Every replaced tree is kept, a pristine clone of the current snapshot too:
        one rule, an O(1) rename, and retention takes it like any other."""
        params = parse_params(ctx, SetCurrentParams)
        view = ctx.view
        new_live = ctx.layout.live(params.new_live_id)
        if await asyncio.to_thread(view.points_to, params.new_live_id):  # switched before a crash
            previous_id = replaced_live_id(ctx, params.previous_live_path)
            kept = await keep_replaced_tree(ctx, previous_id, params.kept_snapshot_id)
            return _switched(new_live, params.previous_live_path, kept)
        snapshot = SnapshotTree(params.snapshot_id)
        await asyncio.to_thread(snapshot.check_complete, ctx)
        previous_id = await asyncio.to_thread(_current_tree, view)
        ctx.checkpoint()
        try:
            async with ctx.quiesced():
                ctx.reached("frozen")
                ctx.checkpoint()
                await ctx.clone(snapshot, LiveTree(params.new_live_id))
                ctx.checkpoint()  # the last safe point: after the switch the rollback has happened
                started = time.monotonic()
                await asyncio.to_thread(view.switch_current, params.new_live_id)
                metrics.SWITCH_DURATION.observe(time.monotonic() - started)
                ctx.reached("switched")
                kept = await keep_replaced_tree(ctx, previous_id, params.kept_snapshot_id)
        except BaseException:
            # Ask the disk, not a flag: a cancelled await may still have let the switch happen.
            if not await asyncio.to_thread(view.points_to, params.new_live_id):
                # The new tree never became current: no user writes in it.
                await asyncio.to_thread(view.remove_tree, LIVE, params.new_live_id)
            raise
        return _switched(new_live, str(ctx.layout.live(previous_id)), kept)

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
        """``current_snapshot_id`` and ``current_path`` change together, and the kept tree becomes a snapshot."""
        if not result.noop:
            await tx.set_current(task.wsid, task.params["snapshot_id"], result.results["current_path"])
            await record_kept(tx, task, result)


def _current_tree(view: AgentView) -> str:
    """The live id of the tree ``current`` points to, which must be a real directory (else WorkspaceTampered)."""
    live_id = view.current_live_id()
    if not view.has_live_tree(live_id):
        raise WorkspaceTampered(f"{view.describe(LIVE, live_id)}, where current points, is missing")
    return live_id


def _switched(new_live: os.PathLike[str], previous_live_path: str, kept: dict[str, str]) -> ExecutionResult:
    results = {"current_path": os.fspath(new_live), **kept}
    if previous_live_path:
        results["previous_live_path"] = previous_live_path
    return ExecutionResult(success=True, results=results)
