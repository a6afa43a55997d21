"""The ``localfs`` storage backend: reflink copies where the filesystem supports them, else plain copies."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from wvs_core import hookimpl
from wvs_core.cancellation import finish_in_thread
from wvs_core.storage import StorageBackend, StorageCapabilities, StorageError, TreeUsage, make_directory
from wvs_core.treewalk import remove_entry
from wvs_localfs.copy import copy_entry, copy_tree


def _copy_to(source: int, destination: Path, stop: threading.Event) -> TreeUsage:
    parent = os.open(destination.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return copy_tree(source, parent, destination.name, stop)
    finally:
        os.close(parent)


def _copy_entry_to(parent: int, name: str, destination: Path) -> None:
    target = os.open(destination.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        copy_entry(parent, name, target, destination.name)
    finally:
        os.close(target)


class LocalFSBackend(StorageBackend):
    """Exact copies by descriptors (reflinks where the filesystem supports them: O(1) data on btrfs/XFS)."""

    name = "localfs"

    async def clone_tree(self, source: int, destination: Path) -> TreeUsage:
        """An exact copy (``wvs_localfs.copy``): reflinked data where the filesystem can, every attribute,
        hard links and holes kept, any depth; entries and bytes counted as it copies. Cancelled, it stops the
        copy and returns once nothing writes to ``destination`` any more (nor reads ``source``, which the caller
        then closes)."""
        stop = threading.Event()
        try:
            return await finish_in_thread(_copy_to, source, destination, stop, stop=stop)
        except OSError as error:
            raise StorageError("CLONE_FAILED", f"copy to {destination} failed: {error}") from None

    async def clone_entry(self, parent: int, name: str, destination: Path) -> None:
        """An exact copy of that one entry (``wvs_localfs.copy.copy_entry``; reflinked data where the filesystem
        can); no sibling read."""
        try:
            await asyncio.to_thread(_copy_entry_to, parent, name, destination)
        except OSError as error:
            raise StorageError("CLONE_FAILED", f"copy of {name!r} to {destination} failed: {error}") from None

    async def make_tree(self, destination: Path) -> None:
        """A plain directory."""
        await make_directory(destination)

    async def remove_tree(self, path: Path) -> None:
        """``shutil.rmtree``, which walks by descriptors and never follows a link; a link at ``path`` is
        unlinked; missing is fine."""
        try:
            await asyncio.to_thread(remove_entry, path)
        except OSError as error:
            raise StorageError("REMOVE_FAILED", str(error)) from None

    def capabilities(self) -> StorageCapabilities:
        """Copies (reflinks where possible) that keep owners when run as root."""
        return StorageCapabilities(metadata_clone=False, preserves_owner=True)


@hookimpl(trylast=True)
def wvs_register_storage_backends() -> list[type[StorageBackend]]:
    """Provide the ``localfs`` backend."""
    return [LocalFSBackend]
