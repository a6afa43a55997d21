"""workspace_fork: lay out a new workspace whose first live tree is a clone of another workspace's snapshot."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
from prometheus_client import Counter

from wvs_core.convert import describe_error, structure
from wvs_core.errors import ErrorCode
from wvs_core.ids import check_uuid, check_wsid, uuid7
from wvs_core.layout import LIVE, WorkspaceLayout, snapshot_metadata
from wvs_core.models import ExecutionResult, Task, TaskStatus
from wvs_core.ops import (
    CHOSEN_BY_SERVER,
    ClaimDecision,
    ExecutionContext,
    OpFailed,
    OpRoute,
    WorkspaceInitializer,
    WorkspaceTransaction,
)
from wvs_core.storage import open_tree
from wvs_core.trees import LiveTree

FORKED = "workspace.forked"
FORKS = Counter("wvs_fork_total", "Forks that succeeded: workspaces started from a clone of another's snapshot.")


@attrs.frozen
class WorkspaceForkParams:
    """``source_wsid``: the workspace the snapshot belongs to; ``snapshot_id``: the snapshot the new workspace
    starts from; ``live_id``: the id of its first live tree, chosen when the task is created."""

    source_wsid: str = attrs.field(validator=check_wsid)
    snapshot_id: str = attrs.field(validator=check_uuid)
    live_id: str = attrs.field(factory=uuid7, validator=check_uuid, metadata=CHOSEN_BY_SERVER)


def _open_source(source: WorkspaceLayout, snapshot_id: str) -> int:
    """Blocking: a descriptor of the complete snapshot tree in WVS's area (trusted paths); a snapshot that is
    not complete fails the fork for good (``SNAPSHOT_MISSING``)."""
    if snapshot_metadata(source, snapshot_id) is None:
        path = source.snapshot(snapshot_id)
        raise OpFailed("SNAPSHOT_MISSING", f"{path} is not a complete snapshot", retryable=False)
    return open_tree(source.snapshot(snapshot_id))


class WorkspaceFork(WorkspaceInitializer):
    """The first task of a forked workspace (instead of ``init_workspace``): the SPEC §1 layout, the first live
    tree cloned from ``snapshot_id`` of ``source_wsid``, ``current`` pointing to it.

    The new workspace has no snapshot of its own yet, so its ``current_snapshot_id`` stays NULL. The source
    snapshot cannot be dropped until the fork ends (``references`` with ``source_workspace``). Idempotent: a
    re-run finds the clone complete (or removes what an interrupted one left) and the link in place."""

    name = "workspace_fork"
    params_type = WorkspaceForkParams
    event_types = MappingProxyType(
        {FORKED: "a forked workspace's first live tree is in place: data {source_wsid, source_snapshot_id}"}
    )
    routes = (
        OpRoute(
            "POST",
            "/v1/workspaces/{wsid}/snapshots/{snapshot_id}:fork",
            source_param="source_wsid",
            operation_id="forkSnapshot",
            summary="Fork: a new workspace whose first live tree is a clone of this snapshot",
        ),
    )

    def source_workspace(self, params: Mapping[str, Any]) -> str | None:
        """The workspace the forked snapshot belongs to."""
        return str(params["source_wsid"])

    def references(self, params: Mapping[str, Any]) -> list[str]:
        """The forked snapshot (of ``source_wsid``)."""
        return [params["snapshot_id"]]

    def live_trees(self, params: Mapping[str, Any]) -> dict[str, str | None]:
        """The first live tree: a clone of no snapshot of this workspace."""
        return {params["live_id"]: None}

    async def on_claimed(self, tx: WorkspaceTransaction, task: Task) -> ClaimDecision:
        """Refuse (DEAD, so INIT_FAILED) a fork whose source snapshot is gone."""
        source, snapshot_id = task.params["source_wsid"], task.params["snapshot_id"]
        snapshot = await tx.get_snapshot(source, snapshot_id)
        if snapshot is None or snapshot.deleted_at is not None:
            return ClaimDecision.reject(ErrorCode.NOT_FOUND, f"snapshot {snapshot_id} of {source!r} does not exist")
        return ClaimDecision.proceed()

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
        """PROVISIONING → ACTIVE, then ``workspace.forked`` on the new workspace, naming where it comes from."""
        await super().on_succeeded(tx, task, result)
        source = {"source_wsid": task.params["source_wsid"], "source_snapshot_id": task.params["snapshot_id"]}
        await tx.record_event(FORKED, source)

    def count_outcome(self, task: Task) -> None:
        """``wvs_fork_total``: one more fork succeeded."""
        if task.status == TaskStatus.SUCCEEDED:
            FORKS.inc()

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Make ``live/``, clone the snapshot into the first live tree (``ctx.clone``), let the quiesce protocol
        set up, then switch ``current`` last."""
        try:
            params = structure(dict(ctx.params), WorkspaceForkParams)
        except Exception as error:
            raise OpFailed("INVALID_PARAMS", describe_error(error), retryable=False) from None
        await asyncio.to_thread(ctx.view.directory, LIVE, True)
        first = LiveTree(params.live_id)
        if not await ctx.has_tree(first):
            source = ctx.layout.volume.workspace(params.source_wsid)
            fd = await asyncio.to_thread(_open_source, source, params.snapshot_id)
            try:
                await ctx.clone(fd, first)
            finally:
                os.close(fd)
        ctx.reached("forked")
        return await self.point_current(ctx, params.live_id)
