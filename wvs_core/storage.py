"""The storage backend interface: how a plugin clones and removes workspace trees."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs


@attrs.frozen
class StorageCapabilities:
    """What a backend can do, reported by ``wvs plugins`` and used by the executor's metrics."""

    metadata_clone: bool  # a clone costs metadata only, whatever the data size
    preserves_owner: bool  # uid/gid survive a clone


class StorageBackend(abc.ABC):
    """Clones and removes directory trees on the workspace volume.

    Subclasses set ``name`` (the value of ``storage.backend`` in the config that selects them) and
    take their own ``[storage.<name>]`` config table as ``settings``.
    """

    name: ClassVar[str]

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings

    @abc.abstractmethod
    async def clone_tree(self, source: Path, destination: Path) -> None:
        """Clone ``source`` to ``destination`` (which must not exist).

        The clone keeps content, mode, owner, timestamps, empty directories and symlinks (as links,
        never followed). It may leave a partial ``destination`` on failure; callers clone into a
        temporary name and rename, so a partial tree never looks complete.
        """

    @abc.abstractmethod
    async def remove_tree(self, path: Path) -> None:
        """Remove ``path`` and everything below it; a missing ``path`` is not an error."""

    @abc.abstractmethod
    def capabilities(self) -> StorageCapabilities:
        """Describe this backend."""


class StorageError(Exception):
    """A clone or remove failed; ``reason`` is a short machine-readable cause."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
