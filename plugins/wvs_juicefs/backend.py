"""JuiceFSBackend: ``juicefs clone -p`` (its request, sent to the mount directly) and ``juicefs rmr``."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wvs_core.cancellation import finish_in_thread
from wvs_core.process import CommandFailed, run_command
from wvs_core.storage import StorageBackend, StorageCapabilities, StorageError, TreeUsage, make_directory
from wvs_core.treewalk import DIRECTORY_FLAGS
from wvs_juicefs.binary import find_juicefs
from wvs_juicefs.control import clone_by_descriptor, clone_entry_at, volume_root
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
        self.clone_threads = min(max(int(settings.get("clone_threads", 4)), 1), 255)
        self._roots: dict[int, Path] = {}  # the volume root of each device cloned on

    async def clone_tree(self, source: int, destination: Path) -> TreeUsage:
        """The clone ``juicefs clone -p`` asks the mount for (``wvs_juicefs.control``), of the inode open as
        ``source`` — the one the executor checked, whatever an agent renames meanwhile — then the hard links.

        The clone splits hard links, so the source is scanned while it runs (``wvs_juicefs.hardlinks``) and the
        links are made again; that scan also sums the bytes. The entries are the clone's own count.
        """
        scanning = asyncio.create_task(asyncio.to_thread(scan, source))
        stop = threading.Event()
        try:
            entries = await finish_in_thread(self._clone, source, destination, stop, stop=stop)
        except OSError as error:
            raise StorageError("CLONE_FAILED", f"juicefs clone to {destination} failed: {error}") from None
        finally:
            found = await scanning
        if found.groups:
            await finish_in_thread(_relink_at, destination, found.groups)  # done before a clean-up removes it
        return TreeUsage(entries=entries, bytes=found.bytes)

    def _clone(self, source: int, destination: Path, stop: threading.Event) -> int | None:
        return clone_by_descriptor(self._root_of(destination), source, destination, self.clone_threads, stop)

    async def clone_entry(self, parent: int, name: str, destination: Path) -> None:
        """The clone of that one inode (``wvs_juicefs.control.clone_entry_at``): metadata only, no sibling read."""
        stop = threading.Event()
        try:
            await finish_in_thread(self._clone_entry, parent, name, destination, stop, stop=stop)
        except OSError as error:
            raise StorageError("CLONE_FAILED", f"juicefs clone of {name!r} to {destination} failed: {error}") from None

    def _clone_entry(self, parent: int, name: str, destination: Path, stop: threading.Event) -> None:
        clone_entry_at(self._root_of(destination), parent, name, destination, stop)

    def _root_of(self, destination: Path) -> Path:
        """The root of the volume ``destination`` (in WVS's area) is made on, found once per device."""
        device = os.stat(destination.parent).st_dev
        if device not in self._roots:
            self._roots[device] = volume_root(destination.parent)
        return self._roots[device]

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
