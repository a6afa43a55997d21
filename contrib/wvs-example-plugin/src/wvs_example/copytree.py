"""The ``copytree`` storage backend: every clone a full copy made by GNU ``cp -a``, on any filesystem; trees
removed with ``rm -rf``; an empty tree is a plain directory.

```toml
[plugins]
storage = "copytree"

[plugins.settings.copytree]
reflink = "auto"   # cp --reflink: "auto" (share extents where the filesystem can, the default), "always", "never"
```

``cp`` runs in the source directory the executor opened (``/proc/self/fd/<source>``, see
``wvs_core.process.run_command``) and copies ``.``: no path into the agent's tree is resolved again, and
``cp -a`` never follows a link inside it. It keeps content, mode, owner, timestamps, links, hard links, holes,
special files and extended attributes. Where the volume updates atimes on reads (no ``noatime``), ``cp``'s
reads leave that trace on the source; JuiceFS does not update atimes by default. ``rm -rf`` removes a link
itself, never what it points to, and walks any depth by descriptors.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wvs_core.errors import ConfigError
from wvs_core.process import CommandFailed, run_command
from wvs_core.storage import StorageBackend, StorageCapabilities, StorageError, TreeUsage, make_directory

REFLINK_MODES = ("auto", "always", "never")


class CopyTreeBackend(StorageBackend):
    """Full copies with ``cp -a`` (reflinked where the filesystem can), removals with ``rm -rf``: slower than a
    metadata clone, but anywhere."""

    name = "copytree"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.reflink = settings.get("reflink", "auto")
        problems = []
        if self.reflink not in REFLINK_MODES:
            problems.append(f"reflink must be one of {', '.join(REFLINK_MODES)}, got {self.reflink!r}")
        if unknown := sorted(set(settings) - {"reflink"}):
            problems.append(f"unknown key(s) {', '.join(unknown)}")
        if problems:
            raise ConfigError(f"plugins.settings.{self.name}: {'; '.join(problems)}")

    async def clone_tree(self, source: int, destination: Path) -> TreeUsage:
        """``cp -a -T --reflink=… . <destination>`` in the directory open as ``source``; nothing counted (cp does
        not report what it copied, and a walk just to count it is not worth its time)."""
        try:
            await run_command("cp", "-a", "-T", f"--reflink={self.reflink}", ".", str(destination), cwd=source)
        except (CommandFailed, OSError) as error:
            raise StorageError("CLONE_FAILED", f"copy to {destination} failed: {error}") from None
        return TreeUsage()

    async def make_tree(self, destination: Path) -> None:
        """A plain directory, mode 0755."""
        await make_directory(destination)

    async def remove_tree(self, path: Path) -> None:
        """``rm -rf --one-file-system -- <path>`` (a path in WVS's area); missing is fine."""
        try:
            await run_command("rm", "-rf", "--one-file-system", "--", str(path))
        except (CommandFailed, OSError) as error:
            raise StorageError("REMOVE_FAILED", f"removing {path} failed: {error}") from None

    def capabilities(self) -> StorageCapabilities:
        """Full copies that keep owners (when the executor runs as root)."""
        return StorageCapabilities(metadata_clone=False, preserves_owner=True)
