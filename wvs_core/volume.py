"""A workspace volume that a plugin mounts for the embedded single-machine mode."""

from __future__ import annotations

import abc
from pathlib import Path


class LocalVolume(abc.ABC):
    """A mounted volume: where workspaces live and which storage backend works on it."""

    storage: str  # name of the storage backend for this volume
    mount_path: Path

    @abc.abstractmethod
    def close(self) -> None:
        """Unmount and release everything the volume started; safe to call twice."""
