"""Tree helpers shared by the built-in ops: the live tree, snapshot metadata, counting entries."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wvs_core.fsutil import atomic_write_json, read_json
from wvs_core.layout import WorkspaceLayout
from wvs_core.ops import OpFailed

METADATA_DIR = ".wvs"
METADATA_FILE = "snapshot.json"


def live_tree(layout: WorkspaceLayout) -> Path:
    """The live tree ``current`` points to; fails for good when the workspace has none."""
    if not layout.current_link.is_symlink() or not layout.current_link.resolve().is_dir():
        raise OpFailed("NO_CURRENT", f"{layout.current_link} is not a link to a live tree", retryable=False)
    return layout.current_link.resolve()


def seal_snapshot(tree: Path, source: Path, metadata: dict[str, Any]) -> None:
    """Write ``.wvs/snapshot.json`` into a freshly cloned ``tree`` and give back the mtimes it changed.

    Whether the source had a ``.wvs`` directory of its own is recorded, so a rollback restores the tree
    exactly (``unseal_snapshot``).
    """
    own_dir = (source / METADATA_DIR).is_dir()
    (tree / METADATA_DIR).mkdir(exist_ok=True)
    atomic_write_json(
        tree / METADATA_DIR / METADATA_FILE,
        {**metadata, "created_at": datetime.now(UTC).isoformat(), "source_had_wvs_dir": own_dir},
    )
    _copy_times(source, tree)
    if own_dir:
        _copy_times(source / METADATA_DIR, tree / METADATA_DIR)


def unseal_snapshot(tree: Path, snapshot: Path) -> None:
    """Remove WVS's metadata from a clone of ``snapshot`` so the clone equals the tree snapshotted."""
    metadata = read_json(tree / METADATA_DIR / METADATA_FILE) or {}
    (tree / METADATA_DIR / METADATA_FILE).unlink(missing_ok=True)
    if metadata.get("source_had_wvs_dir"):
        _copy_times(snapshot / METADATA_DIR, tree / METADATA_DIR)
    else:
        (tree / METADATA_DIR).rmdir()
    _copy_times(snapshot, tree)


def count_entries(tree: Path) -> int:
    """Files, directories and links below ``tree`` (for the clone-entries metric)."""
    return sum(len(dirs) + len(files) for _root, dirs, files in os.walk(tree))


def _copy_times(source: Path, target: Path) -> None:
    info = source.lstat()
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)
