"""The storage backend interface: how a plugin clones, makes and removes workspace trees."""

from __future__ import annotations

import abc
import asyncio
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs

from wvs_core.treewalk import DIRECTORY_FLAGS


@attrs.frozen
class TreeUsage:
    """What a clone learnt of the tree it made, for ``wvs_clone_entries_total`` and a snapshot's ``entries`` and
    ``bytes``. A backend reports only what its clone tells it anyway (a copy counts as it goes; a metadata clone
    reports what it cloned) and leaves None what it would need a walk of its own to know: WVS never walks a
    tree just to count it, so an unknown figure is simply not observed."""

    entries: int | None = None  # names below the root: files, directories, links, special files (n names: n)
    bytes: int | None = None  # logical size: the regular files' st_size, a file with several names counted once

    def as_results(self) -> dict[str, str]:
        """The known figures as an executor's results: ``{"entries": "12", "bytes": "4096"}``, unknown ones absent."""
        figures = {"entries": self.entries, "bytes": self.bytes}
        return {name: str(value) for name, value in figures.items() if value is not None}

    @classmethod
    def from_results(cls, results: Mapping[str, str]) -> TreeUsage:
        """Read what ``as_results`` wrote (absent: unknown); ValueError for a figure that is not a count."""

        def count(name: str) -> int | None:
            text = results.get(name)
            if text is None:
                return None
            if not (text.isascii() and text.isdigit()):
                raise ValueError(f"result {name} must be a count, got {text!r}")
            return int(text)

        return cls(entries=count("entries"), bytes=count("bytes"))


@attrs.frozen
class StorageCapabilities:
    """What a backend can do, reported by ``wvs plugins`` and used by the executor's metrics."""

    metadata_clone: bool  # a clone costs metadata only, whatever the data size
    preserves_owner: bool  # uid/gid survive a clone


class StorageBackend(abc.ABC):
    """Clones, makes and removes directory trees on the workspace volume.

    Subclasses set ``name`` (the value of ``plugins.storage`` in the config that selects them) and
    take their own ``[plugins.settings.<name>]`` config table as ``settings``.
    """

    name: ClassVar[str]

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = settings

    @abc.abstractmethod
    async def clone_tree(self, source: int, destination: Path) -> TreeUsage:
        """Clone the directory open as ``source`` to ``destination`` (which must not exist; its parent is in
        WVS's area, so the path is trusted).

        ``source`` is a directory descriptor the executor resolved without following links. Read the tree
        through it — e.g. give a child process ``/proc/self/fd/<source>`` as its working directory (with
        ``pass_fds``) and clone ``.`` — never through a path, which an agent could redirect to another
        workspace between the check and the clone. The clone keeps content, mode, owner, timestamps, empty
        directories and symlinks (as links, never followed) — SPEC §5's "Clones are exact" lists the rest —
        and does not change the source (no atime updates from its reads). Returns the clone's ``TreeUsage``:
        each figure the clone itself yields, None for one it could only get by walking the tree
        (``TreeUsage()`` when it knows neither). It may leave a partial ``destination`` on failure; callers
        clone into a temporary name and rename, so a partial tree never looks complete.
        """

    async def clone_entry(self, parent: int, name: str, destination: Path) -> None:
        """Clone the one entry ``name`` — a regular file, a symlink (as a link) or a special file, never a
        directory (``clone_tree`` clones those) — of the directory open as ``parent`` to ``destination`` (which must
        not exist; its parent is in WVS's area), exactly as ``clone_tree`` clones an entry: content, mode, owner,
        timestamps, extended attributes (a file with several names becomes one with one). ``parent`` was resolved
        without following links and ``name`` is one component, never followed.

        The default clones the whole of ``parent`` beside ``destination`` and keeps only ``name``: right for any
        backend, at the cost of the siblings; a backend that can clone a single file overrides it. Raises
        StorageError (``CLONE_FAILED``: the entry is missing or a directory too)."""
        around = destination.with_name(f"{destination.name}.parent")
        await self.remove_tree(around)
        try:
            await self.clone_tree(parent, around)
            await asyncio.to_thread(_take_entry, around, name, destination)
        finally:
            await self.remove_tree(around)

    @abc.abstractmethod
    async def make_tree(self, destination: Path) -> None:
        """Make an empty tree at ``destination`` (which must not exist; its parent is in WVS's area): a plain
        directory, mode 0755, owned by the executor's user — or whatever this backend's trees are (a btrfs
        backend makes a subvolume, so the tree can be cloned later). Raise StorageError on failure. The
        caller gives it to its user and renames it into place (``ExecutionContext.new_tree``)."""

    @abc.abstractmethod
    async def remove_tree(self, path: Path) -> None:
        """Remove ``path`` and everything below it, never following a link (a link at ``path`` is removed
        itself); missing is not an error. ``path`` is always in WVS's area: the executor removes trees in an
        agent view itself, by descriptors (a tool that resolves paths there — ``juicefs rmr`` opens a
        control file in the parent directory — could be handed one the agent planted)."""

    @abc.abstractmethod
    def capabilities(self) -> StorageCapabilities:
        """Describe this backend."""


async def make_directory(destination: Path) -> None:
    """``make_tree`` for a backend whose trees are plain directories: ``mkdir``, mode 0755."""
    try:
        await asyncio.to_thread(os.mkdir, destination, 0o755)
    except OSError as error:
        raise StorageError("MAKE_FAILED", f"cannot make {destination}: {error}") from None


def _take_entry(clone: Path, name: str, destination: Path) -> None:
    """Blocking: move the non-directory ``name`` of the clone ``clone`` (WVS's: trusted) to ``destination``."""
    try:
        info = os.lstat(clone / name)
    except FileNotFoundError:
        raise StorageError("CLONE_FAILED", f"{name!r} is not in the directory cloned") from None
    if stat.S_ISDIR(info.st_mode):
        raise StorageError("CLONE_FAILED", f"{name!r} is a directory: clone it with clone_tree")
    os.rename(clone / name, destination)


def open_tree(path: Path) -> int:
    """A descriptor of the directory ``path`` in WVS's area, for ``clone_tree``; the caller closes it."""
    return os.open(path, DIRECTORY_FLAGS)


class StorageError(Exception):
    """A clone or remove failed; ``reason`` is a short machine-readable cause."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
