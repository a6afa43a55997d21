"""The ``localfs`` storage backend: reflink copies where the filesystem supports them, else plain copies."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from pathlib import Path

from wvs_core import hookimpl
from wvs_core.process import CommandFailed, run_command
from wvs_core.storage import StorageBackend, StorageCapabilities, StorageError


def _remove_at(parent: int, name: str) -> None:
    try:
        kind = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(kind):
        shutil.rmtree(name, dir_fd=parent)
    else:
        os.unlink(name, dir_fd=parent)


class LocalFSBackend(StorageBackend):
    """``cp -a --reflink=auto``: keeps mode, owner, timestamps and symlinks; O(1) data on btrfs/XFS."""

    name = "localfs"

    async def clone_tree(self, source: int, destination: Path) -> None:
        """``cp -a --reflink=auto . DESTINATION`` in the directory open as ``source``: every attribute kept,
        links copied as links."""
        try:
            await run_command("cp", "-a", "--reflink=auto", "--no-target-directory", ".", str(destination), cwd=source)
        except CommandFailed as error:
            raise StorageError("CLONE_FAILED", str(error)) from None

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
