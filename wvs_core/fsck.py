"""``wvs fsck``: compare the database with the filesystem and repair what is safe to repair.

Repairs never delete a tree that may hold user data unless ``prune`` is given: temporary trees, half-made
snapshots and the trees of deleted snapshots go with ``fix``; snapshot trees unknown to the database and
live trees that never became current need ``prune``. A workspace with a RUNNING task, or whose lock an
executor holds, is skipped: its disk and database may legitimately differ for a moment.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import attrs

from wvs_core.db.consistency import ConsistencyStore
from wvs_core.fsutil import switch_symlink
from wvs_core.ids import is_uuid, is_wsid
from wvs_core.layout import WorkspaceLayout, snapshot_metadata
from wvs_core.locks import workspace_lock
from wvs_core.models import Workspace, WorkspaceState
from wvs_core.quiesce import QuiesceProtocol
from wvs_core.recovery import recover_workspace
from wvs_core.storage import StorageBackend


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

    def __init__(self, store: ConsistencyStore, mount: Path, storage: StorageBackend, quiesce: QuiesceProtocol) -> None:
        self.store = store
        self.mount = mount
        self.storage = storage
        self.quiesce = quiesce

    async def run(self, wsid: str | None = None, fix: bool = False, prune: bool = False) -> Report:
        """Check (and repair) ``wsid``, or every workspace plus directories the database does not know."""
        known = await self.store.workspaces(wsid)
        checked, skipped, findings = [], [], []
        if wsid is None:
            on_disk = {name for name in await asyncio.to_thread(os.listdir, self.mount) if is_wsid(name)}
            for stray in sorted(on_disk - {w.wsid for w in known}):
                findings.append(Finding(stray, "workspace_unknown_to_db", str(self.mount / stray), "manual"))
        for workspace in known:
            layout = WorkspaceLayout(self.mount, workspace.wsid)
            async with workspace_lock(layout, wait=False) as acquired:
                if not acquired or await self.store.is_busy(workspace.wsid):
                    skipped.append(workspace.wsid)
                    continue
                checked.append(workspace.wsid)
                findings += await self._check(workspace, layout, fix, prune)
        return Report(checked, skipped, findings)

    async def _check(self, workspace: Workspace, layout: WorkspaceLayout, fix: bool, prune: bool) -> list[Finding]:
        if not await asyncio.to_thread(layout.root.is_dir):
            if workspace.state in (WorkspaceState.ACTIVE, WorkspaceState.DISABLED):
                return [Finding(workspace.wsid, "workspace_missing_on_disk", str(layout.root), "manual")]
            return []
        findings = await self._leftovers(workspace, layout, fix)
        findings += await self._snapshots(workspace, layout, fix, prune)
        findings += await self._current_and_live(workspace, layout, fix, prune)
        return findings

    async def _leftovers(self, workspace: Workspace, layout: WorkspaceLayout, fix: bool) -> list[Finding]:
        """What a crashed op left (temporary trees and files, a frozen agent): the executor's own recovery."""
        actions = await recover_workspace(layout, self.storage, self.quiesce, dry_run=not fix)
        return [Finding(workspace.wsid, "crash_leftover", action, "fix", fixed=fix) for action in actions]

    async def _snapshots(self, workspace: Workspace, layout: WorkspaceLayout, fix: bool, prune: bool) -> list[Finding]:
        findings = []
        rows = {row.snapshot_id: row for row in await self.store.snapshots(workspace.wsid)}
        trees = {name for name in await _names(layout.snapshots_dir) if is_uuid(name)}
        for snapshot_id, row in rows.items():
            complete = await asyncio.to_thread(snapshot_metadata, layout, snapshot_id) is not None
            if row.deleted_at is None and not complete:
                finding = Finding(workspace.wsid, "snapshot_missing_on_disk", snapshot_id, "fix")
                if fix:
                    await self.store.mark_deleted(workspace.wsid, snapshot_id)
                    finding.fixed = True
                findings.append(finding)
            elif row.deleted_at is not None and snapshot_id in trees:
                finding = Finding(workspace.wsid, "deleted_snapshot_on_disk", str(layout.snapshot(snapshot_id)), "fix")
                findings.append(await self._remove(finding, layout.snapshot(snapshot_id), fix))
        for snapshot_id in sorted(trees - set(rows)):
            tree = layout.snapshot(snapshot_id)
            if await asyncio.to_thread(snapshot_metadata, layout, snapshot_id) is not None:
                findings.append(
                    await self._remove(
                        Finding(workspace.wsid, "snapshot_unknown_to_db", str(tree), "prune"), tree, prune
                    )
                )
            else:
                findings.append(
                    await self._remove(Finding(workspace.wsid, "incomplete_snapshot", str(tree), "fix"), tree, fix)
                )
        return findings

    async def _current_and_live(
        self, workspace: Workspace, layout: WorkspaceLayout, fix: bool, prune: bool
    ) -> list[Finding]:
        findings = []
        made = await self.store.live_ids_made_current(workspace.wsid)
        link = layout.current_link
        target = await asyncio.to_thread(_resolved_dir, link)
        if target is None:
            finding = Finding(workspace.wsid, "current_dangling", str(link), "fix")
            recorded = Path(workspace.current_path) if workspace.current_path else None
            if fix and recorded is not None and recorded.parent == layout.live_dir and recorded.is_dir():
                await asyncio.to_thread(switch_symlink, link, layout.current_target(recorded.name))
                finding.fixed = True
            findings.append(finding)
        elif workspace.current_path != str(target):
            detail = f"current → {target}, database says {workspace.current_path}"
            finding = Finding(workspace.wsid, "current_mismatch", detail, "fix")
            if fix:
                snapshot_id = made.get(target.name, workspace.current_snapshot_id)
                await self.store.set_current_path(workspace.wsid, str(target), snapshot_id, workspace.current_path)
                finding.fixed = True
            findings.append(finding)
        for name in await _names(layout.live_dir):
            tree = layout.live_dir / name
            if is_uuid(name) and name not in made and tree != target:
                finding = Finding(workspace.wsid, "live_tree_never_current", str(tree), "prune")
                findings.append(await self._remove(finding, tree, prune))
        return findings

    async def _remove(self, finding: Finding, tree: Path, allowed: bool) -> Finding:
        if allowed:
            await self.storage.remove_tree(tree)
            finding.fixed = True
        return finding


async def _names(directory: Path) -> list[str]:
    try:
        return sorted(await asyncio.to_thread(os.listdir, directory))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _resolved_dir(link: Path) -> Path | None:
    if not link.is_symlink():
        return None
    target = link.resolve()
    return target if target.is_dir() else None
