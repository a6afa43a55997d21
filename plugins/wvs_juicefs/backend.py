"""JuiceFSBackend: ``juicefs clone -p`` and ``juicefs rmr``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wvs_core.cancellation import finish_in_thread
from wvs_core.process import CommandFailed, run_command
from wvs_core.storage import StorageBackend, StorageCapabilities, StorageError, make_directory
from wvs_core.treewalk import DIRECTORY_FLAGS
from wvs_juicefs.binary import find_juicefs
from wvs_juicefs.hardlinks import relink, scan


def _relink_at(destination: Path, groups: list[list[tuple[str, ...]]]) -> None:
    clone = os.open(destination, DIRECTORY_FLAGS)
    try:
        relink(clone, groups)
    finally:
        os.close(clone)


class JuiceFSBackend(StorageBackend):
    """Clones cost metadata only; ``-p`` keeps uid, gid and mode, and timestamps are kept as they are.

    Settings (``[plugins.settings.juicefs]``): ``binary`` (path of ``juicefs``), ``clone_threads``.
    """

    name = "juicefs"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.binary = find_juicefs(settings.get("binary"))
        self.clone_threads = int(settings.get("clone_threads", 4))

    async def clone_tree(self, source: int, destination: Path) -> int:
        """``juicefs clone -p . DESTINATION`` in the directory open as ``source``, then the hard links.

        ``juicefs clone`` takes the inode to clone from ``lstat(SRC)``; run in ``/proc/self/fd/<source>``
        with SRC ``.``, that is the inode the executor checked, whatever an agent renames meanwhile. The
        clone splits hard links, so the source is scanned while it runs and the links are made again.
        """
        scanning = asyncio.create_task(asyncio.to_thread(scan, source))
        try:
            await run_command(
                self.binary, "clone", "-p", "--threads", str(self.clone_threads), ".", str(destination), cwd=source
            )
        except CommandFailed as error:
            raise StorageError("CLONE_FAILED", str(error)) from None
        finally:
            found = await scanning
        if found.groups:
            await finish_in_thread(_relink_at, destination, found.groups)  # done before a clean-up removes it
        return found.entries

    async def make_tree(self, destination: Path) -> None:
        """A plain directory (JuiceFS clones any directory)."""
        await make_directory(destination)

    async def remove_tree(self, path: Path) -> None:
        """``juicefs rmr PATH`` (fast: removes in the metadata engine); missing is fine. ``PATH`` is in WVS's
        area, where no one else can plant the control file ``rmr`` opens in its parent directory."""
        if not await asyncio.to_thread(os.path.lexists, path):
            return
        try:
            await run_command(self.binary, "rmr", str(path))
        except CommandFailed as error:
            raise StorageError("REMOVE_FAILED", str(error)) from None

    def capabilities(self) -> StorageCapabilities:
        """Metadata clones that keep owners."""
        return StorageCapabilities(metadata_clone=True, preserves_owner=True)
