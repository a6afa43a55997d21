"""The on-disk layout of a workspace (SPEC §1); every path is derived from validated ids only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from wvs_core.fsutil import read_json
from wvs_core.ids import is_uuid, is_wsid

TMP_PREFIX = ".tmp-"


def _checked_id(value: str) -> str:
    if not is_uuid(value):
        raise ValueError(f"not a WVS id: {value!r}")
    return value


@attrs.frozen
class WorkspaceLayout:
    """Paths of one workspace under the volume's mount point."""

    mount: Path
    wsid: str = attrs.field()

    @wsid.validator
    def _check_wsid(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if not is_wsid(value):
            raise ValueError(f"not a workspace id: {value!r}")

    @property
    def root(self) -> Path:
        """``<mount>/<wsid>``."""
        return self.mount / self.wsid

    @property
    def lock_file(self) -> Path:
        """The workspace lock (``wvs_core.locks``), outside the workspace so it exists before init."""
        return self.mount / ".wvs-locks" / f"{self.wsid}.lock"

    @property
    def current_link(self) -> Path:
        """The symlink agents use: ``<root>/current``."""
        return self.root / "current"

    @property
    def live_dir(self) -> Path:
        """Parent of the writable trees."""
        return self.root / "live"

    @property
    def snapshots_dir(self) -> Path:
        """Parent of the read-only snapshot trees."""
        return self.root / "snapshots"

    @property
    def meta_dir(self) -> Path:
        """``<root>/.wvs``: WVS's own files for the workspace."""
        return self.root / ".wvs"

    @property
    def control_file(self) -> Path:
        """The quiesce handshake file (SPEC §6)."""
        return self.meta_dir / "control.json"

    def live(self, live_id: str) -> Path:
        """A writable tree ``live/<live_id>``."""
        return self.live_dir / _checked_id(live_id)

    def current_target(self, live_id: str) -> str:
        """What ``current`` holds to point at ``live/<live_id>``: relative, so any mount point works."""
        return f"live/{_checked_id(live_id)}"

    def live_tmp(self, live_id: str) -> Path:
        """Where a live tree is built before it is renamed into place."""
        return self.live_dir / (TMP_PREFIX + _checked_id(live_id))

    def snapshot(self, snapshot_id: str) -> Path:
        """A snapshot tree ``snapshots/<snapshot_id>``."""
        return self.snapshots_dir / _checked_id(snapshot_id)

    def snapshot_tmp(self, snapshot_id: str) -> Path:
        """Where a snapshot is cloned before it is renamed into place."""
        return self.snapshots_dir / (TMP_PREFIX + _checked_id(snapshot_id))

    def snapshot_metadata(self, snapshot_id: str) -> Path:
        """``snapshots/<id>/.wvs/snapshot.json``: written last, so its presence marks a complete snapshot."""
        return self.snapshot(snapshot_id) / ".wvs" / "snapshot.json"


def snapshot_metadata(layout: WorkspaceLayout, snapshot_id: str) -> dict[str, Any] | None:
    """The snapshot's metadata when the snapshot is complete (its ``snapshot.json`` names it), else None."""
    metadata = read_json(layout.snapshot_metadata(snapshot_id))
    if isinstance(metadata, dict) and metadata.get("snapshot_id") == snapshot_id:
        return metadata
    return None
