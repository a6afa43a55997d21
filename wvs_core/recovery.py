"""Undoing what a crashed op left behind. Run under the workspace lock, so no op of the workspace is running."""

from __future__ import annotations

import asyncio
import os

from wvs_core.layout import TMP_PREFIX, WorkspaceLayout
from wvs_core.quiesce import QuiesceProtocol
from wvs_core.storage import StorageBackend

STRAY_FILE_MARK = ".tmp-"  # atomic writes' temporary files: .control.json.tmp-…, .current.tmp-…


async def recover_workspace(
    layout: WorkspaceLayout, storage: StorageBackend, quiesce: QuiesceProtocol, dry_run: bool = False
) -> list[str]:
    """Remove temporary trees and files and resume a workspace left frozen; returns what was (with
    ``dry_run``: would be) done."""
    actions = []
    for parent in (layout.snapshots_dir, layout.live_dir):
        for name in await asyncio.to_thread(_names, parent):
            if name.startswith(TMP_PREFIX):
                if not dry_run:
                    await storage.remove_tree(parent / name)
                actions.append(f"temporary tree {parent / name}")
    for parent in (layout.root, layout.meta_dir):
        for name in await asyncio.to_thread(_names, parent):
            if name.startswith(".") and STRAY_FILE_MARK in name and not name.startswith(TMP_PREFIX):
                if not dry_run:
                    await asyncio.to_thread((parent / name).unlink, missing_ok=True)
                actions.append(f"temporary file {parent / name}")
    if stuck := await quiesce.recover(layout, dry_run):
        actions.append(stuck)
    return actions


def _names(directory: os.PathLike[str]) -> list[str]:
    try:
        return os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
