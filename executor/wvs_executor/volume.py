"""Is the mount still the volume the executor started on? (SPEC §13)

If the JuiceFS mount goes away under a running executor, ``<mount>`` silently becomes a directory of the
root disk: a new workspace would be created there and an existing one would look emptied. So the executor
notes the mount's identity at start and compares before every op.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from wvs_core import metrics


@attrs.frozen
class VolumeIdentity:
    """What identifies a mounted volume: the device and inode of the mount path, and the filesystem id."""

    device: int
    inode: int
    filesystem: int

    @classmethod
    def of(cls, mount: Path) -> VolumeIdentity:
        """The identity of what is mounted at ``mount`` now; OSError when it cannot be read."""
        info = os.stat(mount)
        return cls(info.st_dev, info.st_ino, os.statvfs(mount).f_fsid)


class VolumeWatch:
    """Compares the mount with the identity it had at start; reports readiness in ``wvs_executor_ready``."""

    def __init__(self, mount: Path) -> None:
        self.mount = mount
        self.expected = VolumeIdentity.of(mount)
        metrics.EXECUTOR_READY.set(1)

    def problem(self) -> str | None:
        """None while the mount is the volume of the start; else why not (and the executor is not ready)."""
        reason: str | None = None
        try:
            if VolumeIdentity.of(self.mount) != self.expected:
                reason = f"{self.mount} is no longer the volume the executor started on"
        except OSError as error:
            reason = f"{self.mount} cannot be read: {error.strerror}"
        metrics.EXECUTOR_READY.set(0 if reason else 1)
        return reason
