"""``wvs fsck``: compare the database with the filesystem and repair what is safe to repair.

Repairs never delete a tree that may hold user data unless ``prune`` is given: temporary trees, half-made
snapshots and the trees of deleted snapshots go with ``fix``; snapshot trees unknown to the database and
live trees that never became current need ``prune``. A tree a rollback kept (``TaskOp.kept_trees``) is never
removed: its metadata missing means the keep was interrupted before its seal, which ``fix`` completes. A
workspace with a RUNNING task, or whose lock an executor holds, is skipped: its disk and database may
legitimately differ for a moment.

The agent views are read as the executor reads them (``wvs_core.agentview``): nothing is followed through a
link, and a workspace whose view was tampered with is reported (``workspace_tampered``), never repaired
through what the agent planted. Every workspace is checked on its own: one that cannot be checked is a
finding, and the others are still checked.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime
from pathlib import Path

import attrs

from wvs_core.agentview import AgentView, WorkspaceTampered
from wvs_core.db.consistency import ConsistencyStore, KeptTrees, LiveTrees
from wvs_core.errors import StartupError
from wvs_core.ids import is_uuid, is_wsid
from wvs_core.keeping import seal_kept_tree
from wvs_core.layout import CURRENT, LIVE, METADATA_SUFFIX, VolumeLayout, WorkspaceLayout, area_names, snapshot_metadata
from wvs_core.locks import workspace_lock
from wvs_core.models import Workspace, WorkspaceState
from wvs_core.quiesce import QuiesceProtocol
from wvs_core.recovery import recover_workspace
from wvs_core.storage import StorageBackend

log = logging.getLogger(__name__)


class NoSuchWorkspace(StartupError):
    """The workspace fsck was asked to check is neither in the database nor on the volume (a typo'd wsid)."""


@attrs.define
class Finding:
    """One inconsistency. ``repair`` says what fixes it: ``fix``, ``prune`` or ``manual``."""

    wsid: str
    kind: str
    detail: str
    repair: str
    fixed: bool = False


@attrs.frozen
class Report:
    """The outcome of a check: clean when every finding is fixed."""

    checked: list[str]
    skipped: list[str]
    findings: list[Finding]

    @property
    def clean(self) -> bool:
        """Nothing left to repair."""
        return all(finding.fixed for finding in self.findings)


class Fsck:
    """Checks one workspace or all, repairing with ``fix`` (and ``prune``) as it goes."""

    def __init__(
        self,
        store: ConsistencyStore,
        mount: Path,
        storage: StorageBackend,
        quiesce: QuiesceProtocol,
        live_trees: LiveTrees,
        kept_trees: KeptTrees,
    ) -> None:
        self.store = store
        self.live_trees = live_trees  # the ops' declarations: which live trees a succeeded task made current
        self.kept_trees = kept_trees  # and which snapshots a task makes of the live tree it replaced
        self.volume = VolumeLayout(mount)
        self.storage = storage
        self.quiesce = quiesce

    async def run(self, wsid: str | None = None, fix: bool = False, prune: bool = False) -> Report:
        """Check (and repair) ``wsid``, or every workspace plus directories the database does not know.
        Raises NotAVolume when the mount holds no WVS area (the volume is not mounted there), NoSuchWorkspace
        when ``wsid`` is neither in the database nor on the volume."""
        await asyncio.to_thread(self.volume.require_area)
        known = await self.store.workspaces(wsid)
        checked, skipped, findings = [], [], []
        findings += await self._heads(wsid, fix)
        on_disk = {name for name in await asyncio.to_thread(os.listdir, self.volume.mount) if is_wsid(name)}
        if wsid is not None:
            if not known and wsid not in on_disk:
                raise NoSuchWorkspace(f"no workspace {wsid!r}: neither in the database nor at {self.volume.mount}")
            on_disk &= {wsid}
        for stray in sorted(on_disk - {w.wsid for w in known}):
            findings.append(Finding(stray, "workspace_unknown_to_db", str(self.volume.mount / stray), "manual"))
        for workspace in known:
            layout = self.volume.workspace(workspace.wsid)
            async with workspace_lock(layout, wait=False) as acquired:
                if not acquired or await self.store.is_busy(workspace.wsid):
                    skipped.append(workspace.wsid)
                    continue
                checked.append(workspace.wsid)
                try:
                    findings += await self._check(workspace, layout, fix, prune)
                except Exception as error:  # one bad workspace never stops the check of the others
                    log.exception("fsck of %s failed", workspace.wsid)
                    findings.append(
                        Finding(workspace.wsid, "check_failed", f"{type(error).__name__}: {error}", "manual")
                    )
        return Report(checked, skipped, findings)

    async def _heads(self, wsid: str | None, fix: bool) -> list[Finding]:
        """Each workspace's stored head against its tasks: a database-only check, safe while tasks run (a head
        and its tasks change in one transaction), so busy workspaces are checked too."""
        findings = []
        for wrong in await self.store.wrong_heads(wsid):
            detail = f"head {_head(wrong.stored)}, but its oldest unfinished task is {_head(wrong.actual)}"
            finding = Finding(wrong.wsid, "queue_head_wrong", detail, "fix")
            if fix:
                await self.store.repair_head(wrong.wsid)
                finding.fixed = True
            findings.append(finding)
        return findings

    async def _check(self, workspace: Workspace, layout: WorkspaceLayout, fix: bool, prune: bool) -> list[Finding]:
        findings = await self._snapshots(workspace, layout, fix, prune)
        try:
            view = await asyncio.to_thread(AgentView.open, layout)
        except WorkspaceTampered as error:
            if await asyncio.to_thread(os.path.lexists, layout.root):
                findings.append(Finding(workspace.wsid, "workspace_tampered", str(error), "manual"))
            elif workspace.state in (WorkspaceState.ACTIVE, WorkspaceState.DISABLED):
                findings.append(Finding(workspace.wsid, "workspace_missing_on_disk", str(layout.root), "manual"))
            return findings
        with view:
            try:
                actions = await recover_workspace(layout, view, self.storage, self.quiesce, dry_run=not fix)
                findings += [Finding(workspace.wsid, "crash_leftover", action, "fix", fixed=fix) for action in actions]
                findings += await self._current_and_live(workspace, layout, view, fix, prune)
            except WorkspaceTampered as error:
                findings.append(Finding(workspace.wsid, "workspace_tampered", str(error), "manual"))
        return findings

    async def _snapshots(self, workspace: Workspace, layout: WorkspaceLayout, fix: bool, prune: bool) -> list[Finding]:
        """Snapshot rows against ``<area>/snapshots/<wsid>/`` (WVS's area: paths are trusted)."""
        findings = []
        rows = {row.snapshot_id: row for row in await self.store.snapshots(workspace.wsid)}
        names = await asyncio.to_thread(area_names, layout.snapshots_dir)
        trees = {name for name in names if is_uuid(name)}
        metadata_files = {name.removesuffix(METADATA_SUFFIX) for name in names if name.endswith(METADATA_SUFFIX)}
        for snapshot_id, row in rows.items():
            complete = await asyncio.to_thread(snapshot_metadata, layout, snapshot_id) is not None
            if row.deleted_at is None and not complete:
                finding = Finding(workspace.wsid, "snapshot_missing_on_disk", snapshot_id, "fix")
                if fix:
                    await self.store.mark_deleted(workspace.wsid, snapshot_id)
                findings.append(await self._remove_snapshot(finding, layout, snapshot_id, fix))
            elif row.deleted_at is not None and (snapshot_id in trees or snapshot_id in metadata_files):
                finding = Finding(workspace.wsid, "deleted_snapshot_on_disk", str(layout.snapshot(snapshot_id)), "fix")
                findings.append(await self._remove_snapshot(finding, layout, snapshot_id, fix))
        kept = await self.store.kept_snapshots(workspace.wsid, self.kept_trees)
        for snapshot_id in sorted((trees | metadata_files) - set(rows)):
            if not is_uuid(snapshot_id):
                continue
            if snapshot_id in kept and snapshot_id in trees:
                findings.append(await self._kept(workspace.wsid, layout, snapshot_id, kept[snapshot_id], fix))
            elif await asyncio.to_thread(snapshot_metadata, layout, snapshot_id) is not None and snapshot_id in trees:
                finding = Finding(workspace.wsid, "snapshot_unknown_to_db", str(layout.snapshot(snapshot_id)), "prune")
                findings.append(await self._remove_snapshot(finding, layout, snapshot_id, prune))
            else:
                finding = Finding(workspace.wsid, "incomplete_snapshot", str(layout.snapshot(snapshot_id)), "fix")
                findings.append(await self._remove_snapshot(finding, layout, snapshot_id, fix))
        return findings

    async def _kept(
        self, wsid: str, layout: WorkspaceLayout, snapshot_id: str, task: tuple[str, str], fix: bool
    ) -> Finding:
        """A tree a rollback kept that has no row yet: its task's re-run records it. Unsealed (the keep stopped
        between rename and seal), ``fix`` seals it as the keep would have; never removed, whatever the options."""
        path = str(layout.snapshot(snapshot_id))
        if await asyncio.to_thread(snapshot_metadata, layout, snapshot_id) is not None:
            return Finding(wsid, "kept_tree_unrecorded", f"{path} (kept by task {task[0]})", "manual")
        finding = Finding(wsid, "kept_tree_unsealed", f"{path} (kept by task {task[0]})", "fix")
        if fix:
            await asyncio.to_thread(seal_kept_tree, layout, snapshot_id, *task)
            finding.fixed = True
        return finding

    async def _current_and_live(
        self, workspace: Workspace, layout: WorkspaceLayout, view: AgentView, fix: bool, prune: bool
    ) -> list[Finding]:
        findings = []
        made, unknown_ops = await self.store.live_ids_made_current(workspace.wsid, self.live_trees)
        live_ids = [name for name in await asyncio.to_thread(view.entries, LIVE) if is_uuid(name)]
        target = await asyncio.to_thread(_current_live_id, view)
        recorded = Path(workspace.current_path) if workspace.current_path else None
        if target is None or target not in live_ids:
            finding = Finding(workspace.wsid, "current_dangling", view.describe(CURRENT), "fix")
            if fix and recorded is not None and recorded.parent == layout.root / LIVE and recorded.name in live_ids:
                await asyncio.to_thread(view.has_live_tree, recorded.name)  # a real directory, or tampered
                await asyncio.to_thread(view.switch_current, recorded.name)
                finding.fixed = True
                target = recorded.name
            findings.append(finding)
        elif workspace.current_path != str(layout.live(target)):
            detail = f"current → {layout.live(target)}, database says {workspace.current_path}"
            finding = Finding(workspace.wsid, "current_mismatch", detail, "fix")
            if fix:
                snapshot_id = made.get(target, workspace.current_snapshot_id)
                await self.store.set_current_path(
                    workspace.wsid, str(layout.live(target)), snapshot_id, workspace.current_path
                )
                finding.fixed = True
            findings.append(finding)
        for live_id in live_ids:
            if live_id not in made and live_id != target and unknown_ops:
                # A task of an op this process does not load may have made it: never prune on a guess.
                detail = f"{layout.live(live_id)} (tasks of ops not loaded here: {', '.join(sorted(unknown_ops))})"
                findings.append(Finding(workspace.wsid, "live_tree_unaccounted", detail, "manual"))
            elif live_id not in made and live_id != target:
                finding = Finding(workspace.wsid, "live_tree_never_current", str(layout.live(live_id)), "prune")
                if prune:
                    await asyncio.to_thread(view.remove_tree, LIVE, live_id)
                    finding.fixed = True
                findings.append(finding)
        return findings

    async def _remove_snapshot(
        self, finding: Finding, layout: WorkspaceLayout, snapshot_id: str, allowed: bool
    ) -> Finding:
        """Remove a snapshot's metadata, then its tree (the order of ``snapshot_drop``)."""
        if allowed:
            await asyncio.to_thread(layout.snapshot_metadata(snapshot_id).unlink, missing_ok=True)
            await self.storage.remove_tree(layout.snapshot(snapshot_id))
            finding.fixed = True
        return finding


def _current_live_id(view: AgentView) -> str | None:
    """The live id ``current`` names; None when it is missing; WorkspaceTampered when it is anything else."""
    if CURRENT not in view.entries():
        return None
    return view.current_live_id()


def _head(head: tuple[str | None, datetime | None]) -> str:
    """A head ``(task_id, run_at)`` for a person."""
    task_id, run_at = head
    if task_id is None:
        return "none"
    return f"{task_id} ({'running' if run_at is None else f'runnable from {run_at.isoformat()}'})"
