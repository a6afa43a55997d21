"""Walking a directory tree by descriptors, as a careful root process reads a tree an agent made.

Nothing is resolved by path: each directory is opened from its parent's descriptor with ``O_NOFOLLOW``,
so a link is never followed, no path is ever longer than one name (trees deeper than ``PATH_MAX`` are
walked like any other), and an agent renaming directories mid-walk can only hide entries from the walk,
never lead it out of the tree. Directories are opened ``O_NOATIME``: WVS's own reads leave no trace in the
trees it versions (SPEC §5). Only directories are opened; files are only ``lstat``-ed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

import attrs

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC  # a directory, never through a link


@attrs.frozen
class Visit:
    """One entry of the tree: ``parent`` is its directory's descriptor (valid during the visit only),
    ``path`` the names from the root to it, ``info`` its ``lstat``. ``leaving`` marks the second visit of a
    directory, after all its children (where a copy sets the directory's own times)."""

    parent: int
    path: tuple[str, ...]
    info: os.stat_result
    leaving: bool = False

    @property
    def name(self) -> str:
        """The entry's own name."""
        return self.path[-1]

    @property
    def is_dir(self) -> bool:
        """A real directory (never a link to one)."""
        return stat.S_ISDIR(self.info.st_mode)


def open_directory(parent: int, name: str) -> int:
    """``openat(parent, name, O_DIRECTORY|O_NOFOLLOW|O_NOATIME)``; without O_NOATIME where it is refused
    (a non-root caller that does not own the directory)."""
    try:
        return os.open(name, DIRECTORY_FLAGS | os.O_NOATIME, dir_fd=parent)
    except PermissionError:
        return os.open(name, DIRECTORY_FLAGS, dir_fd=parent)


MAX_DEPTH = 2048
"""Levels of directories a walk descends at most. Each level holds a descriptor (and its path) while the levels
below it are walked, so an agent nesting directories by the hundred thousand would exhaust the process's
descriptors and memory, for every workspace at once; and below this depth no path can name an entry anyway
(PATH_MAX is 4,096 bytes, and a level takes at least two: a name and a ``/``)."""


class TreeTooDeep(OSError):
    """A tree nests directories deeper than ``MAX_DEPTH``: an op on it fails for good (``TREE_TOO_DEEP``)."""

    def __init__(self, path: tuple[str, ...]) -> None:
        shown = "/".join(path[:4])
        super().__init__(errno.ELOOP, f"directories nested deeper than {MAX_DEPTH} levels below {shown!r}")


def walk(root: int) -> Iterator[Visit]:
    """Every entry below the directory open as ``root``, depth first, a directory before its children and
    again (``leaving``) after them. An entry that vanishes or turns into something else mid-walk is passed
    over; raises TreeTooDeep below ``MAX_DEPTH`` levels, OSError for anything else."""
    root_fd = os.dup(root)
    stack: list[tuple[int, tuple[str, ...], list[str], os.stat_result | None]] = [(root_fd, (), _names(root_fd), None)]
    try:
        while stack:
            fd, path, names, info = stack[-1]
            if not names:
                stack.pop()
                if info is not None:
                    yield Visit(stack[-1][0], path, info, leaving=True)
                os.close(fd)
                continue
            name = names.pop()
            try:
                entry = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            visit = Visit(fd, (*path, name), entry)
            yield visit
            if visit.is_dir:
                if len(stack) > MAX_DEPTH:
                    raise TreeTooDeep(visit.path)
                try:
                    child = open_directory(fd, name)
                except OSError as error:
                    if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                        continue  # changed under us: no longer a directory to descend into
                    raise
                stack.append((child, visit.path, _names(child), entry))
    finally:
        for fd, *_rest in stack:
            os.close(fd)


def read_link(parent: int, name: str, info: os.stat_result) -> str:
    """The target of the link ``name`` (whose ``lstat`` is ``info``), leaving no trace: ``readlink`` updates
    a link's atime on a ``relatime`` filesystem and no flag prevents it, so the times are put back."""
    target = os.readlink(name, dir_fd=parent)
    after = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if after.st_atime_ns != info.st_atime_ns and after.st_ino == info.st_ino:
        os.utime(name, ns=(info.st_atime_ns, after.st_mtime_ns), dir_fd=parent, follow_symlinks=False)
    return target


def _names(fd: int) -> list[str]:
    """The names in the directory open as ``fd``, read once (sorted, popped from the end: walked in order)."""
    with os.scandir(fd) as entries:
        return sorted((entry.name for entry in entries), reverse=True)


def open_path(root: int, path: tuple[str, ...]) -> int:
    """A new descriptor of the directory ``root/<path…>``, one ``O_NOFOLLOW`` component at a time."""
    fd = os.dup(root)
    for name in path:
        parent = fd
        try:
            fd = open_directory(parent, name)
        finally:
            os.close(parent)
    return fd


def remove_entry(path: os.PathLike[str] | str, parent: int | None = None) -> None:
    """Remove ``path`` (relative to the directory open as ``parent`` when given) and everything below it, by
    descriptors (``walk``), never following a link, and without recursion: an agent may nest directories deeper
    than Python's stack (``shutil.rmtree`` recurses once per level). A link or file is unlinked itself; missing is
    fine, and so is an entry that vanishes meanwhile (someone else removing it too). Raises OSError otherwise
    (ENOTEMPTY when something was added meanwhile)."""
    try:
        if not stat.S_ISDIR(os.stat(path, dir_fd=parent, follow_symlinks=False).st_mode):
            os.unlink(path, dir_fd=parent)
            return
        top = os.open(path, DIRECTORY_FLAGS, dir_fd=parent)
        try:
            for visit in walk(top):  # a directory is left after everything below it
                with contextlib.suppress(FileNotFoundError):
                    if visit.leaving:
                        os.rmdir(visit.name, dir_fd=visit.parent)
                    elif not visit.is_dir:
                        os.unlink(visit.name, dir_fd=visit.parent)
        finally:
            os.close(top)
        os.rmdir(path, dir_fd=parent)
    except FileNotFoundError:
        return


def data_regions(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """The ``(start, end)`` byte ranges of the file open as ``fd`` (of ``size`` bytes) that hold data, as
    ``SEEK_DATA``/``SEEK_HOLE`` report them: the holes between them read as zeros and need no copying."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole is left
            return
        offset = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, offset
