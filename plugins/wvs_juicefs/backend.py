"""JuiceFSBackend: ``juicefs clone -p`` and ``juicefs rmr``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wvs_core.process import CommandFailed, run_command
from wvs_core.storage import StorageBackend, StorageCapabilities, StorageError
from wvs_juicefs.binary import find_juicefs


class JuiceFSBackend(StorageBackend):
    """Clones cost metadata only; ``-p`` keeps uid, gid and mode, and timestamps are kept as they are.

    Settings (``[plugins.settings.juicefs]``): ``binary`` (path of ``juicefs``), ``clone_threads``.
    """

    name = "juicefs"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.binary = find_juicefs(settings.get("binary"))
        self.clone_threads = int(settings.get("clone_threads", 4))

    async def clone_tree(self, source: Path, destination: Path) -> None:
        """``juicefs clone -p SOURCE DESTINATION``."""
        try:
            await run_command(
                self.binary,
                "clone",
                "-p",
                "--threads",
                str(self.clone_threads),
                str(source),
                str(destination),
            )
        except CommandFailed as error:
            raise StorageError("CLONE_FAILED", str(error)) from None

    async def remove_tree(self, path: Path) -> None:
        """``juicefs rmr PATH`` (fast: removes in the metadata engine); missing is fine."""
        if not await asyncio.to_thread(os.path.lexists, path):
            return
        try:
            await run_command(self.binary, "rmr", str(path))
        except CommandFailed as error:
            raise StorageError("REMOVE_FAILED", str(error)) from None

    def capabilities(self) -> StorageCapabilities:
        """Metadata clones that keep owners."""
        return StorageCapabilities(metadata_clone=True, preserves_owner=True)
