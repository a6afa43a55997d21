"""The ``localfs`` storage backend: reflink copies where the filesystem supports them, else plain copies."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from pathlib import Path

from wvs_core import hookimpl
from wvs_core.storage import StorageBackend, StorageCapabilities, StorageError
from wvs_localfs.copy import copy_tree


def _remove_at(parent: int, name: str) -> None:
    try:
        kind = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(kind):
        shutil.rmtree(name, dir_fd=parent)
    else:
        os.unlink(name, dir_fd=parent)


def _copy_to(source: int, destination: Path) -> int:
    parent = os.open(destination.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return copy_tree(source, parent, destination.name)
    finally:
        os.close(parent)


class LocalFSBackend(StorageBackend):
    """Exact copies by descriptors (reflinks where the filesystem supports them: O(1) data on btrfs/XFS)."""

    name = "localfs"

    async def clone_tree(self, source: int, destination: Path) -> int:
        """An exact copy (``wvs_localfs.copy``): reflinked data where the filesystem can, every attribute,
        hard links and holes kept, any depth."""
        try:
            return await asyncio.to_thread(_copy_to, source, destination)
        except OSError as error:
            raise StorageError("CLONE_FAILED", f"copy to {destination} failed: {error}") from None

    async def remove_tree(self, parent: int, name: str) -> None:
        """Remove ``name`` below ``parent`` with ``shutil.rmtree(dir_fd=…)``, which walks by descriptor and
        never follows a link; a link or file named ``name`` is unlinked; missing is fine."""
        try:
            await asyncio.to_thread(_remove_at, parent, name)
        except OSError as error:
            raise StorageError("REMOVE_FAILED", str(error)) from None

    def capabilities(self) -> StorageCapabilities:
        """Copies (reflinks where possible) that keep owners when run as root."""
        return StorageCapabilities(metadata_clone=False, preserves_owner=True)


@hookimpl(trylast=True)
def wvs_register_storage_backends() -> list[type[StorageBackend]]:
    """Provide the ``localfs`` backend."""
    return [LocalFSBackend]
