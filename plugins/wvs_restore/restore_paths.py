"""restore_paths: replace some paths of ``current`` with a snapshot's, quiesced, keeping the tree it replaces.

Built on the public seams only. The snapshot's versions of the paths are cloned first (the snapshot never
changes: the agent keeps working meanwhile) into a staging tree in WVS's area; then, with the agent frozen,
``current`` is cloned into a new live tree whose ``prepare`` swaps the staged entries in (and removes the paths the
snapshot lacks) before the clone is renamed into the view; ``current`` switches to it and the replaced tree is
kept as an ``auto=before-rollback`` snapshot (``wvs_core.keeping``). Each path therefore holds either its old or
its new content at any instant — a kill -9 leaves the old tree current, or the new one — never a mix in a file.
"""

from __future__ import annotations

import asyncio
import functools
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
from prometheus_client import Counter

from wvs_core.convert import describe_error, structure
from wvs_core.errors import ErrorCode
from wvs_core.ids import check_uuid, uuid7
from wvs_core.keeping import keep_replaced_tree, record_kept, replaced_live_id
from wvs_core.layout import LIVE
from wvs_core.models import ExecutionResult, Task, TaskStatus
from wvs_core.ops import (
    ADDED_AT_CLAIM,
    CHOSEN_BY_SERVER,
    ClaimDecision,
    ExecutionContext,
    OpFailed,
    OpRoute,
    TaskOp,
    WorkspaceTransaction,
)
from wvs_core.trees import LiveTree, SnapshotTree
from wvs_core.treewalk import open_directory, remove_entry
from wvs_restore.paths import check_paths, outermost, resolve

RESTORED = "current.restored"
RESTORED_PATHS = Counter(
    "wvs_restore_paths_total", "Paths put back into current from a snapshot by restore_paths tasks that succeeded."
)


@attrs.frozen
class RestorePathsParams:
    """The snapshot and the paths of it to put back in ``current``; the new live tree's id and the kept snapshot's
    are chosen when the task is created, ``previous_live_path`` when it is claimed."""

    snapshot_id: str = attrs.field(validator=check_uuid, metadata={"description": "the snapshot to restore from"})
    paths: list[str] = attrs.field(
        validator=check_paths,
        metadata={
            "description": "1 to 256 paths relative to the workspace's root (a directory with everything below "
            "it, a link itself); normalized, never '..', never through a link; one the snapshot lacks is removed"
        },
    )
    new_live_id: str = attrs.field(factory=uuid7, validator=check_uuid, metadata=CHOSEN_BY_SERVER)
    kept_snapshot_id: str = attrs.field(factory=uuid7, validator=check_uuid, metadata=CHOSEN_BY_SERVER)
    previous_live_path: str = attrs.field(default="", metadata=ADDED_AT_CLAIM)


@attrs.frozen
class Staged:
    """A path's version in the snapshot, cloned into the staging tree: ``entry`` (None: the snapshot lacks it)
    and the ``lstat`` of the snapshot's directories on the way (to make missing ones alike)."""

    path: str
    entry: Path | None
    directories: list[os.stat_result]


class RestorePaths(TaskOp):
    """Put some paths of a snapshot back into ``current``, quiesced, keeping the tree replaced.

    Idempotent: done once ``current`` points to this task's live tree and the replaced tree is kept."""

    name = "restore_paths"
    params_type = RestorePathsParams
    quiesces = True
    event_types = MappingProxyType(
        {
            RESTORED: "paths of current were put back as a snapshot holds them: data {snapshot_id, paths, "
            "current_path, kept_snapshot_id}"
        }
    )
    routes = (
        OpRoute(
            "POST",
            "/v1/workspaces/{wsid}/current:restore",
            operation_id="restorePaths",
            summary="Put some paths of a snapshot back into `current`, keeping the tree replaced as a snapshot",
        ),
    )

    def references(self, params: Mapping[str, Any]) -> list[str]:
        """The snapshot restored from."""
        return [params["snapshot_id"]]

    def live_trees(self, params: Mapping[str, Any]) -> dict[str, str | None]:
        """The new live tree: no snapshot's clone (a mix of ``current`` and the snapshot)."""
        return {params["new_live_id"]: None}

    def kept_trees(self, params: Mapping[str, Any]) -> list[str]:
        """The snapshot that keeps the replaced live tree."""
        return [params["kept_snapshot_id"]]

    async def on_claimed(self, tx: WorkspaceTransaction, task: Task) -> ClaimDecision:
        """Refuse a deleted snapshot; tell the executor which live tree is being replaced."""
        snapshot_id = task.params["snapshot_id"]
        snapshot = await tx.get_snapshot(task.wsid, snapshot_id)
        if snapshot is None or snapshot.deleted_at is not None:
            return ClaimDecision.reject(ErrorCode.NOT_FOUND, f"snapshot {snapshot_id} does not exist")
        workspace = await tx.get_workspace(task.wsid)
        return ClaimDecision.proceed(previous_live_path=workspace.current_path or "")

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Stage the snapshot's versions, then under quiesce: clone ``current`` with them swapped in, switch, keep."""
        try:
            params = structure(dict(ctx.params), RestorePathsParams)
        except Exception as error:
            raise OpFailed("INVALID_PARAMS", describe_error(error), retryable=False) from None
        view, live_id = ctx.view, params.new_live_id
        new_live = str(ctx.layout.live(live_id))
        if await asyncio.to_thread(view.points_to, live_id):  # switched before a crash
            kept = await keep_replaced_tree(
                ctx, replaced_live_id(ctx, params.previous_live_path), params.kept_snapshot_id
            )
            return ExecutionResult(success=True, results={"current_path": new_live, **kept})
        snapshot = SnapshotTree(params.snapshot_id)
        staging = ctx.layout.tmp_dir / f"restore-{live_id}"
        await ctx.storage.remove_tree(staging)  # what an interrupted attempt staged
        try:
            staged = await _stage(ctx, snapshot, staging, outermost(params.paths))
            ctx.reached("staged")
            ctx.checkpoint()
            async with ctx.quiesced():
                ctx.reached("frozen")
                previous_id = await asyncio.to_thread(view.current_live_id)
                swap = functools.partial(_swap, staged=staged)
                await ctx.clone(LiveTree(previous_id), LiveTree(live_id), prepare=swap)
                ctx.checkpoint()  # the last safe point: after the switch the restore has happened
                await asyncio.to_thread(view.switch_current, live_id)
                ctx.reached("switched")
                kept = await keep_replaced_tree(ctx, previous_id, params.kept_snapshot_id)
        except BaseException:
            if not await asyncio.to_thread(view.points_to, live_id):
                await asyncio.to_thread(view.remove_tree, LIVE, live_id)  # never current: no user writes
            raise
        finally:
            await ctx.storage.remove_tree(staging)
        return ExecutionResult(success=True, results={"current_path": new_live, **kept})

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
        """``current_path`` moves (``current_snapshot_id`` becomes none: the tree mixes two), the kept tree
        becomes a snapshot, and ``current.restored`` names the paths (those below another listed path left out:
        restoring the directory covered them)."""
        await tx.set_current(task.wsid, None, result.results["current_path"])
        await record_kept(tx, task, result)
        restored = {
            "snapshot_id": task.params["snapshot_id"],
            "paths": outermost(task.params["paths"]),
            "current_path": result.results["current_path"],
            "kept_snapshot_id": result.results.get("kept_snapshot_id"),
        }
        await tx.record_event(RESTORED, restored)

    def count_outcome(self, task: Task) -> None:
        """``wvs_restore_paths_total``: the paths a restore that succeeded put back (each counted once)."""
        if task.status == TaskStatus.SUCCEEDED:
            RESTORED_PATHS.inc(len(outermost(task.params["paths"])))


async def _stage(ctx: ExecutionContext, snapshot: SnapshotTree, staging: Path, paths: list[str]) -> list[Staged]:
    """Clone each path's version out of the snapshot into ``staging``: a directory with everything below it
    (``clone_tree``), anything else by itself (``clone_entry``) — never its siblings."""
    root = await asyncio.to_thread(snapshot.open, ctx)
    try:
        await asyncio.to_thread(staging.mkdir, 0o700)
        staged = []
        for index, path in enumerate(paths):
            found = await asyncio.to_thread(resolve, root, path)
            if found is None or found.info is None:
                staged.append(Staged(path, None, found.directories if found else []))
                if found is not None:
                    os.close(found.parent)
                continue
            try:
                target = staging / str(index)
                if stat.S_ISDIR(found.info.st_mode):
                    source = await asyncio.to_thread(open_directory, found.parent, found.name)
                    try:
                        await ctx.storage.clone_tree(source, target)
                    finally:
                        os.close(source)
                    staged.append(Staged(path, target, found.directories))
                else:
                    await ctx.storage.clone_entry(found.parent, found.name, target)
                    staged.append(Staged(path, target, found.directories))
            finally:
                os.close(found.parent)
        return staged
    finally:
        os.close(root)


def _swap(temporary: Path, staged: list[Staged]) -> None:
    """In the clone of ``current`` (still WVS's): each path removed, and the snapshot's version put in its place."""
    root = os.open(temporary, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for item in staged:
            found = resolve(root, item.path, make=item.directories if item.entry is not None else None)
            if found is None:
                continue  # absent from both
            try:
                remove_entry(found.name, found.parent)
                if item.entry is not None:
                    os.rename(item.entry, found.name, dst_dir_fd=found.parent)
            finally:
                os.close(found.parent)
    finally:
        os.close(root)
