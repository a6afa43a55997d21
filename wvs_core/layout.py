"""The on-disk layout of the volume (SPEC §1); every path is derived from validated ids only.

Two areas. Each workspace's **agent view** ``<mount>/<wsid>/`` is what the agent's sandbox mounts: it may
write anything there, so WVS reads it only through ``wvs_core.agentview``. **WVS's area**
``<mount>/.wvs/`` (root, 0700) holds the snapshots, the trees of clones in flight and the workspace locks;
no agent view contains it, so paths inside it are trusted.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

import attrs

from wvs_core.config import setting
from wvs_core.errors import ConfigError
from wvs_core.fsutil import atomic_write_json, fsync_dir, read_json
from wvs_core.ids import is_uuid, is_wsid

AREA = ".wvs"  # WVS's area under the mount; never a wsid (a wsid starts with [a-z0-9])
CURRENT = "current"  # names inside an agent view
LIVE = "live"
META = ".wvs"
CONTROL_FILE = "control.json"
CONTROL_LOCK = "control.lock"
METADATA_SUFFIX = ".json"
AREA_MODE = 0o700


def checked_id(value: str) -> str:
    """``value`` when it is a WVS id (UUID text), else ValueError."""
    if not is_uuid(value):
        raise ValueError(f"not a WVS id: {value!r}")
    return value


class NotAVolume(ConfigError):
    """``executor.mount_path`` holds no WVS area, or one WVS did not make."""


@attrs.frozen
class VolumeLayout:
    """The volume-wide paths: WVS's area and its three folders."""

    mount: Path

    @property
    def area(self) -> Path:
        """``<mount>/.wvs``: root-owned, mode 0700, never in an agent view."""
        return self.mount / AREA

    @property
    def snapshots(self) -> Path:
        """``<area>/snapshots``: one folder per workspace."""
        return self.area / "snapshots"

    @property
    def tmp(self) -> Path:
        """``<area>/tmp``: one folder per workspace, for clones in flight."""
        return self.area / "tmp"

    @property
    def locks(self) -> Path:
        """``<area>/locks``: one lock file per workspace (``wvs_core.locks``)."""
        return self.area / "locks"

    def ensure_area(self) -> None:
        """Create WVS's area (idempotent) and make sure it is a real directory only root can enter.

        Raises NotAVolume when ``<mount>/.wvs`` or one of its folders is a link, not a directory, not this
        user's, or open to others: that is not something WVS made, and adopting it would hand the area (and
        every snapshot written there) to whoever did. The mount's own root
        loses group and other write permission (a fresh JuiceFS volume's is 0777): whoever may create names
        there could plant a future workspace's view. Raises NotAVolume too when the mount path is missing or
        not a directory.
        """
        try:
            mount = os.stat(self.mount)
        except OSError as error:
            raise NotAVolume(f"{setting('executor.mount_path')}: {self.mount}: {error.strerror}") from None
        if not stat.S_ISDIR(mount.st_mode):
            raise NotAVolume(f"{setting('executor.mount_path')}: {self.mount} is not a directory")
        if mount.st_mode & 0o022:
            os.chmod(self.mount, stat.S_IMODE(mount.st_mode) & ~0o022)
        for directory in (self.area, self.snapshots, self.tmp, self.locks):
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory, AREA_MODE)
            info = os.lstat(directory)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
                raise NotAVolume(
                    f"{setting('executor.mount_path')}: {directory} is not as WVS makes it (a directory of uid "
                    f"{os.geteuid()}, mode 0700): someone else may have written into it; check it, and move it "
                    "away to let WVS make it afresh"
                )

    def require_area(self) -> None:
        """Raise NotAVolume unless WVS's area exists: ``<mount>`` is not (yet) a WVS volume, or the volume
        is not mounted there."""
        if not self.area.is_dir():
            raise NotAVolume(
                f"no WVS area at {self.area}: is the volume mounted at {self.mount}? "
                f"Set {setting('executor.mount_path')} to where it is"
            )

    def workspace(self, wsid: str) -> WorkspaceLayout:
        """The layout of one workspace."""
        return WorkspaceLayout(self.mount, wsid)


@attrs.frozen
class WorkspaceLayout:
    """Paths of one workspace: its agent view and its folders in WVS's area."""

    mount: Path
    wsid: str = attrs.field()

    @wsid.validator
    def _check_wsid(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if not is_wsid(value):
            raise ValueError(f"not a workspace id: {value!r}")

    @property
    def volume(self) -> VolumeLayout:
        """The volume this workspace lives on."""
        return VolumeLayout(self.mount)

    # --- the agent view: read and written only through wvs_core.agentview --------------------

    @property
    def root(self) -> Path:
        """``<mount>/<wsid>``: the agent view."""
        return self.mount / self.wsid

    def live(self, live_id: str) -> Path:
        """``<root>/live/<live_id>``, as recorded in ``current_path`` (never opened by this path)."""
        return self.root / LIVE / checked_id(live_id)

    @staticmethod
    def current_target(live_id: str) -> str:
        """What ``current`` holds to point at ``live/<live_id>``: relative, so any mount point works."""
        return f"{LIVE}/{checked_id(live_id)}"

    # --- WVS's area ---------------------------------------------------------------------------

    @property
    def lock_file(self) -> Path:
        """The workspace lock (``wvs_core.locks``); exists before the workspace does."""
        return self.volume.locks / f"{self.wsid}.lock"

    @property
    def snapshots_dir(self) -> Path:
        """``<area>/snapshots/<wsid>``: the workspace's snapshot trees and their metadata files."""
        return self.volume.snapshots / self.wsid

    @property
    def tmp_dir(self) -> Path:
        """``<area>/tmp/<wsid>``: trees of clones in flight, renamed into place when complete."""
        return self.volume.tmp / self.wsid

    def snapshot(self, snapshot_id: str) -> Path:
        """A snapshot tree: an exact clone, WVS writes nothing inside it."""
        return self.snapshots_dir / checked_id(snapshot_id)

    def snapshot_metadata(self, snapshot_id: str) -> Path:
        """``<snapshot_id>.json`` beside the tree: written after the tree is in place, it marks it complete."""
        return self.snapshots_dir / (checked_id(snapshot_id) + METADATA_SUFFIX)

    def snapshot_tmp(self, snapshot_id: str) -> Path:
        """Where a snapshot is cloned before it is renamed into place."""
        return self.tmp_dir / f"snapshot-{checked_id(snapshot_id)}"

    def live_tmp(self, live_id: str) -> Path:
        """Where a live tree is cloned before it is renamed into the agent view."""
        return self.tmp_dir / f"live-{checked_id(live_id)}"

    def ensure_area_dirs(self) -> None:
        """Create the workspace's folders in WVS's area (idempotent; the area is WVS's alone, so what is
        there was made by WVS)."""
        for directory in (self.snapshots_dir, self.tmp_dir):
            directory.mkdir(mode=AREA_MODE, exist_ok=True)


def area_names(directory: Path) -> list[str]:
    """The names in ``directory``, a folder of WVS's area (trusted: listed by path), sorted; none when it is
    missing."""
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []


def snapshot_metadata(layout: WorkspaceLayout, snapshot_id: str) -> dict[str, Any] | None:
    """The snapshot's metadata when the snapshot is complete (its tree is there and its metadata file names
    it), else None."""
    metadata = read_json(layout.snapshot_metadata(snapshot_id))
    if (
        isinstance(metadata, dict)
        and metadata.get("snapshot_id") == snapshot_id
        and layout.snapshot(snapshot_id).is_dir()
    ):
        return metadata
    return None


def write_snapshot_metadata(layout: WorkspaceLayout, snapshot_id: str, metadata: dict[str, Any]) -> None:
    """Write ``<snapshot_id>.json`` (``{snapshot_id, wsid, message, created_at}``) beside the tree, which must
    be in place already: from now on the snapshot is complete."""
    atomic_write_json(layout.snapshot_metadata(snapshot_id), {"snapshot_id": snapshot_id, **metadata})
    fsync_dir(layout.snapshots_dir)
