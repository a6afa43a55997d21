"""``checkout_clean``: make ``current`` a fresh clone of a snapshot with some paths left out.

Built only on WVS's public seams (``wvs_core.ops``, ``wvs_core.trees``, ``wvs_core.agentview``): ``ctx.clone``
makes the clone in WVS's area, where it is pruned, and renames it into the agent view as ``live/<new_live_id>``
(crash-safe, idempotent, cleaned up on failure); then ``current`` is switched to it while the agent is frozen.
The snapshot is immutable, so only the switch needs the freeze: the agent keeps working while the clone is
made.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from wvs_core.convert import describe_error, structure
from wvs_core.ids import check_uuid, uuid7
from wvs_core.layout import LIVE
from wvs_core.models import ExecutionResult, Task
from wvs_core.ops import CHOSEN_BY_SERVER, ExecutionContext, OpFailed, TaskOp, WorkspaceTransaction
from wvs_core.trees import LiveTree, SnapshotTree
from wvs_example.paths import check_paths, find_paths


@attrs.frozen
class CheckoutCleanParams:
    """The snapshot to check out and the paths to leave out of it; the new live tree's id is chosen when the
    task is created."""

    snapshot_id: str = attrs.field(validator=check_uuid, metadata={"description": "the snapshot to check out"})
    remove: list[str] = attrs.field(
        validator=check_paths,
        metadata={
            "description": "paths relative to the snapshot's root to leave out (a directory with everything "
            "below it, a link itself); normalized, never '..', never through a link; absent ones are skipped"
        },
    )
    new_live_id: str = attrs.field(factory=uuid7, validator=check_uuid, metadata=CHOSEN_BY_SERVER)


class CheckoutClean(TaskOp):
    """Make ``current`` a fresh clone of a snapshot without the listed paths (build output, secrets…), quiesced.

    Idempotent: done once ``current`` points to this task's live tree. The replaced tree is kept."""

    name = "checkout_clean"
    params_type = CheckoutCleanParams
    quiesces = True
    result_types = MappingProxyType({"removed": int})

    def references(self, params: Mapping[str, Any]) -> list[str]:
        """The snapshot being checked out: it cannot be dropped while the task is unfinished."""
        return [params["snapshot_id"]]

    def live_trees(self, params: Mapping[str, Any]) -> dict[str, str | None]:
        """The new live tree, made from the snapshot: ``wvs fsck`` keeps it."""
        return {params["new_live_id"]: params["snapshot_id"]}

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Clone the snapshot, remove the paths from the clone before it is renamed to ``live/<id>``, then
        switch ``current`` to it under quiesce. ``result.removed`` counts the listed paths the snapshot has."""
        try:
            params = structure(dict(ctx.params), CheckoutCleanParams)
        except Exception as error:
            raise OpFailed("INVALID_PARAMS", describe_error(error), retryable=False) from None
        view, live_id, snapshot = ctx.view, params.new_live_id, SnapshotTree(params.snapshot_id)
        await asyncio.to_thread(snapshot.check_complete, ctx)
        # Read from the snapshot, which never changes: the same answer on a re-run, and a path through a link
        # fails the task before anything is cloned.
        found = await asyncio.to_thread(find_paths, ctx.layout.snapshot(params.snapshot_id), params.remove)
        result = ExecutionResult(
            success=True, results={"current_path": str(ctx.layout.live(live_id)), "removed": str(len(found))}
        )
        if await asyncio.to_thread(view.points_to, live_id):  # switched before a crash
            return result
        await asyncio.to_thread(view.current_live_id)  # current must be WVS's link to a live tree
        try:
            prune = functools.partial(find_paths, paths=found, remove=True)  # in the clone, before it is renamed
            await ctx.clone(snapshot, LiveTree(live_id), prepare=prune)  # nothing to do if renamed before a crash
            async with ctx.quiesced():
                ctx.reached("frozen")
                ctx.checkpoint()  # the last safe point: after the switch the checkout has happened
                await asyncio.to_thread(view.switch_current, live_id)
                ctx.reached("switched")
        except BaseException:
            # Ask the disk, not a flag: a cancelled await may still have let the switch happen.
            if not await asyncio.to_thread(view.points_to, live_id):
                await asyncio.to_thread(view.remove_tree, LIVE, live_id)  # never current: no user writes
            raise
        return result

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
        """``current_snapshot_id`` (the snapshot ``current`` was made from) and ``current_path`` change together
        (the ``current.changed`` event)."""
        await tx.set_current(task.wsid, task.params["snapshot_id"], result.results["current_path"])
