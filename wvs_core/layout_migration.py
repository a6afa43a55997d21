"""``wvs fsck --migrate-layout``: move a volume written by the earlier layout to SPEC §1's.

The earlier layout kept each workspace's snapshots inside its agent view (``<root>/snapshots/<id>/``, with
WVS's ``.wvs/snapshot.json`` written inside each tree), its temporary trees beside them (``.tmp-<id>``) and
the workspace locks in ``<mount>/.wvs-locks/``. Each snapshot is cloned into WVS's area (a metadata clone
on JuiceFS), WVS's file is taken back out of the clone so the tree is again exactly what was snapshotted,
the metadata file is written beside it, the database row is pointed at the new path, and only then is the
old tree removed. Trees are cloned, never moved: moving a directory out of an agent view would let a
process working inside it walk ``..`` out of its sandbox.

Every step can be re-run: a snapshot whose new copy is complete only has its old tree removed, so a crash
at any instant is finished by running the migration again. Stop the executors first (they hold the old
locks); the agent views are read as the executor reads them (``wvs_core.agentview``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from wvs_core.agentview import AgentView, WorkspaceTampered, read_small_file_at
from wvs_core.db.consistency import ConsistencyStore
from wvs_core.fsck import Finding
from wvs_core.ids import is_uuid
from wvs_core.layout import LIVE, META, VolumeLayout, WorkspaceLayout, snapshot_metadata, write_snapshot_metadata
from wvs_core.locks import workspace_lock
from wvs_core.storage import StorageBackend
from wvs_core.treewalk import DIRECTORY_FLAGS

OLD_SNAPSHOTS = "snapshots"  # <root>/snapshots in the earlier layout
OLD_METADATA = "snapshot.json"  # <snapshot>/.wvs/snapshot.json in the earlier layout
OLD_TMP_PREFIX = ".tmp-"
OLD_LOCKS = ".wvs-locks"
MAX_OLD_METADATA_BYTES = 64 * 1024


class LayoutMigration:
    """Migrates every workspace the database knows; one that cannot be migrated is a finding, the others
    are migrated all the same."""

    def __init__(self, store: ConsistencyStore, mount: Path, storage: StorageBackend) -> None:
        self.store = store
        self.volume = VolumeLayout(mount)
        self.storage = storage

    async def run(self) -> list[Finding]:
        """Migrate; returns what was done (``fixed``) and what needs a hand (``manual``)."""
        await asyncio.to_thread(self.volume.ensure_area)
        findings: list[Finding] = []
        for workspace in await self.store.workspaces():
            layout = self.volume.workspace(workspace.wsid)
            async with workspace_lock(layout):
                try:
                    findings += await self._workspace(layout)
                except WorkspaceTampered as error:
                    findings.append(Finding(workspace.wsid, "workspace_tampered", str(error), "manual"))
                except Exception as error:  # one workspace never stops the migration of the others
                    detail = f"{type(error).__name__}: {error}"
                    findings.append(Finding(workspace.wsid, "migration_failed", detail, "manual"))
        old_locks = self.volume.mount / OLD_LOCKS
        if await asyncio.to_thread(os.path.isdir, old_locks):
            await asyncio.to_thread(shutil.rmtree, old_locks)
            findings.append(Finding("-", "migrated", f"removed {old_locks}", "fix", fixed=True))
        return findings

    async def _workspace(self, layout: WorkspaceLayout) -> list[Finding]:
        if not await asyncio.to_thread(os.path.lexists, layout.root):
            return []
        await asyncio.to_thread(layout.ensure_area_dirs)
        findings = []
        with await asyncio.to_thread(AgentView.open, layout) as view:
            names = await asyncio.to_thread(view.entries, OLD_SNAPSHOTS)
            for name in names:
                done = await self._old_entry(layout, view, name)
                findings.append(Finding(layout.wsid, "migrated", done, "fix", fixed=True))
            if names:
                await asyncio.to_thread(view.remove_empty_directory, OLD_SNAPSHOTS)
            for name in await asyncio.to_thread(view.entries, LIVE):
                if name.startswith(OLD_TMP_PREFIX):
                    await asyncio.to_thread(view.remove_tree, LIVE, name)
                    done = f"removed {view.describe(LIVE, name)}"
                    findings.append(Finding(layout.wsid, "migrated", done, "fix", fixed=True))
        return findings

    async def _old_entry(self, layout: WorkspaceLayout, view: AgentView, name: str) -> str:
        """Migrate (or remove, when it was never a complete snapshot) one entry of the old snapshots dir."""
        metadata = await asyncio.to_thread(_old_metadata, view, name) if is_uuid(name) else None
        if metadata is None:
            await asyncio.to_thread(view.remove_tree, OLD_SNAPSHOTS, name)
            return f"removed {view.describe(OLD_SNAPSHOTS, name)!r} (never a complete snapshot)"
        if await asyncio.to_thread(snapshot_metadata, layout, name) is None:
            await self._copy(layout, view, name, metadata)
        await self.store.move_snapshot(layout.wsid, name, str(layout.snapshot(name)))
        await asyncio.to_thread(view.remove_tree, OLD_SNAPSHOTS, name)
        return f"snapshot {name} → {layout.snapshot(name)}"

    async def _copy(self, layout: WorkspaceLayout, view: AgentView, snapshot_id: str, metadata: dict[str, Any]) -> None:
        tmp, final = layout.tmp_dir / f"migrate-{snapshot_id}", layout.snapshot(snapshot_id)
        await self.storage.remove_tree(tmp)
        await self.storage.remove_tree(final)
        source = await asyncio.to_thread(view.open_directory, OLD_SNAPSHOTS, snapshot_id)
        try:
            await self.storage.clone_tree(source, tmp)
            await asyncio.to_thread(_take_out_old_metadata, tmp, source, bool(metadata.get("source_had_wvs_dir")))
        finally:
            os.close(source)
        await asyncio.to_thread(tmp.rename, final)
        fields = {key: metadata.get(key) for key in ("wsid", "message", "created_at")}
        await asyncio.to_thread(write_snapshot_metadata, layout, snapshot_id, fields)


def _old_metadata(view: AgentView, snapshot_id: str) -> dict[str, Any] | None:
    """``snapshots/<id>/.wvs/snapshot.json`` of the earlier layout when it names the snapshot, else None."""
    try:
        fd = view.open_directory(OLD_SNAPSHOTS, snapshot_id, META)
    except WorkspaceTampered:
        return None
    try:
        data = read_small_file_at(fd, OLD_METADATA, MAX_OLD_METADATA_BYTES)
    finally:
        os.close(fd)
    try:
        metadata = json.loads(data) if data is not None else None
    except (ValueError, RecursionError):  # the agent could write anything there
        return None
    return metadata if isinstance(metadata, dict) and metadata.get("snapshot_id") == snapshot_id else None


def _take_out_old_metadata(tree: Path, source: int, source_had_wvs_dir: bool) -> None:
    """Make the clone ``tree`` exactly the tree that was snapshotted: without WVS's ``.wvs/snapshot.json``
    (and ``.wvs`` itself when the agent had none), with the times the agent's tree had. The clone holds
    whatever the agent had (its ``.wvs`` may be a link by now): it is touched by descriptors only."""
    root = os.open(tree, DIRECTORY_FLAGS)
    try:
        try:
            meta = os.open(META, DIRECTORY_FLAGS, dir_fd=root)
        except OSError:  # no directory there (any more): nothing of WVS's to take out
            meta = -1
        if meta >= 0:
            try:
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    os.unlink(OLD_METADATA, dir_fd=meta)
                if source_had_wvs_dir:
                    with contextlib.suppress(OSError):
                        times = os.stat(META, dir_fd=source, follow_symlinks=False)
                        os.utime(meta, ns=(times.st_atime_ns, times.st_mtime_ns))
            finally:
                os.close(meta)
            if not source_had_wvs_dir:
                with contextlib.suppress(OSError):  # not empty: the agent put something there meanwhile
                    os.rmdir(META, dir_fd=root)
        times = os.fstat(source)
        os.utime(root, ns=(times.st_atime_ns, times.st_mtime_ns))
    finally:
        os.close(root)
