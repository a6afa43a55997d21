"""The ``localfs`` storage backend: reflink copies where the filesystem supports them, else plain copies."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from wvs_core import hookimpl
from wvs_core.process import CommandFailed, run_command
from wvs_core.storage import StorageBackend, StorageCapabilities, StorageError


class LocalFSBackend(StorageBackend):
    """``cp -a --reflink=auto``: keeps mode, owner, timestamps and symlinks; O(1) data on btrfs/XFS."""

    name = "localfs"

    async def clone_tree(self, source: Path, destination: Path) -> None:
        """Copy ``source`` to ``destination`` with every attribute."""
        try:
            await run_command("cp", "-a", "--reflink=auto", "--no-target-directory", str(source), str(destination))
        except CommandFailed as error:
            raise StorageError("CLONE_FAILED", str(error)) from None

    async def remove_tree(self, path: Path) -> None:
        """Remove ``path``; missing is fine."""
        try:
            await asyncio.to_thread(shutil.rmtree, path)
        except FileNotFoundError:
            return
        except OSError as error:
            raise StorageError("REMOVE_FAILED", str(error)) from None

    def capabilities(self) -> StorageCapabilities:
        """Copies (reflinks where possible) that keep owners when run as root."""
        return StorageCapabilities(metadata_clone=False, preserves_owner=True)


@hookimpl(trylast=True)
def wvs_register_storage_backends() -> list[type[StorageBackend]]:
    """Provide the ``localfs`` backend."""
    return [LocalFSBackend]
