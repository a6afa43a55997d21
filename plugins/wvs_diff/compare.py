"""Comparing two directory trees entry by entry, by descriptors: the engine of ``snapshot_diff``.

**What is reported.** Every entry below the two roots (the roots themselves are not compared), matched by
path, is at most one change:

- on one side only: ``added`` or ``removed``. A directory added or removed is reported, then every entry
  below it, so the counts and byte totals of a diff mean what they say (as ``git diff --stat`` lists files);
- of another type on each side (file, directory, symlink, FIFO, socket, device): ``type_changed``; when
  one side was a directory, the entries below it follow as ``removed`` (or ``added``);
- ``modified``: a regular file's content, a symlink's target or a device's number differs (``meta`` names
  any metadata that changed too);
- ``meta_changed``: the content is the same, and ``meta`` names what differs of ``mode``, ``uid``, ``gid``,
  ``mtime`` and ``xattrs`` (every extended attribute: POSIX ACLs and file capabilities too). A change of
  mtime alone (``touch``) is a ``meta_changed``. A directory's mtime is not compared: it moves whenever an
  entry is added, removed or renamed in it, which the diff reports itself.

Never compared: atime (reading is not changing), ctime and inode numbers (a clone is another inode) except
as ``ContentCheck.CTIME`` says, and link counts: a hard link made or broken is no change by itself, each
name is compared on its own content and metadata.

**Content, cheaply.** Files of different sizes differ without a read. Files of the same size are decided by
``ContentCheck`` (below; by default equal size and mtime mean equal content, rsync's quick check, which
clones keep: two snapshots that share most data are compared by metadata alone). Otherwise both are read
and compared chunk by chunk up to the first difference; a range that is a hole in both is not read.

**Hostile trees.** A live tree is written by an untrusted agent while it is compared (SPEC §13). No link is
followed: directories are opened from their parent's descriptor with ``O_NOFOLLOW`` (any depth; no path is
longer than one name), links are only read (``treewalk.read_link``, which puts a link's atime back). Only
regular files are opened, and only to compare content: first ``O_PATH`` (which opens nothing, so a FIFO
cannot block and a device's driver is never called) and checked, then reopened through ``/proc/self/fd``,
so the inode checked is the inode read, ``O_NOATIME``, at most ``CHUNK`` bytes per read. An entry that
vanishes while it is compared is reported as absent on that side; one that is no longer a regular file when
opened differs.

**Paths and order.** A change's ``path`` is its names joined by ``/``, each name decoded with
``os.fsdecode`` (undecodable bytes as lone surrogates), so ``os.fsencode(change.path)`` is the exact bytes
whatever they are (``wvs_diff.render`` says how a path is written in JSON). Changes come depth first, a
directory before the entries below it, siblings in the order of their names' bytes: ``path_key`` order.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
from collections.abc import Callable, Iterator

import attrs

from wvs_core.treewalk import MAX_DEPTH, TreeTooDeep, data_regions, open_directory, read_link

CHUNK = 1 << 20  # bytes read from each file at a time while comparing content
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
_GONE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)  # vanished, or no longer what the walk saw
_NO_XATTRS = (errno.ENOTSUP, errno.EOPNOTSUPP)  # the filesystem has no extended attributes here

TYPES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "directory",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "char_device",
    stat.S_IFBLK: "block_device",
}
"""The entry types a change names in ``type_before`` / ``type_after``."""


class ChangeKind(enum.StrEnum):
    """What happened to a path (SPEC §2, ``snapshot_diff``)."""

    ADDED = "added"  # only in the after tree
    REMOVED = "removed"  # only in the before tree
    MODIFIED = "modified"  # a file's bytes, a link's target or a device's number differ
    TYPE_CHANGED = "type_changed"  # a file became a directory, a link, ...
    META_CHANGED = "meta_changed"  # same content; mode, owner, mtime or extended attributes differ


class ContentCheck(enum.StrEnum):
    """When two regular files of the same size are read to compare their content."""

    METADATA = "metadata"
    """Only when their mtimes differ (rsync's quick check). A same-size rewrite whose mtime is then set back
    (``touch -d``, ``utime``) goes unseen; every clone keeps mtime, so shared data is never read."""
    CTIME = "ctime"
    """When their mtimes or their ctimes differ. For trees cloned with their ctimes kept (JuiceFS ``clone``:
    an untouched entry has its source's ctime, while a write or a ``utime`` sets the time of day and no call
    sets it back) the rewrite above is seen; on copies, which all have new ctimes, every same-size pair is
    read. Only content is decided so: JuiceFS leaves ctime alone on ``setxattr``, xattrs are always read."""
    FULL = "full"
    """Always: every pair of files of the same size is read."""


@attrs.frozen
class Change:
    """One path that differs. Sizes are ``st_size`` for files and symlinks (the target's length), None for
    other types and for the side where the entry is absent; types are ``TYPES`` names."""

    path: str
    change: ChangeKind
    type_before: str | None
    type_after: str | None
    size_before: int | None
    size_after: int | None
    meta: tuple[str, ...] = ()  # what changed of mode, uid, gid, mtime, xattrs (meta_changed, modified)

    @property
    def raw_path(self) -> bytes:
        """The path's exact bytes."""
        return os.fsencode(self.path)


def path_key(path: str) -> tuple[bytes, ...]:
    """The order of a diff: by the bytes of each name, a directory before the entries below it."""
    return tuple(os.fsencode(name) for name in path.split("/"))


def diff_trees(
    before: int,
    after: int,
    *,
    content_check: ContentCheck = ContentCheck.METADATA,
    xattrs: bool = True,
    checkpoint: Callable[[], None] = lambda: None,
) -> Iterator[Change]:
    """The changes from the tree open as directory ``before`` to the tree open as ``after``, streamed in
    ``path_key`` order (the descriptors stay the caller's). ``xattrs=False`` skips extended attributes
    (two system calls per entry fewer). ``checkpoint`` is called before each entry is compared and each chunk
    is read, so whatever it raises stops the diff there, even deep in an unchanged tree or a huge file.
    Raises OSError when a tree cannot be read."""
    return _Comparison(content_check, xattrs, checkpoint).changes(before, after)


@attrs.frozen
class _Entry:
    """An entry of one tree: its directory's descriptor, its name and its ``lstat``."""

    parent: int
    name: str
    info: os.stat_result

    @property
    def kind(self) -> int:
        return stat.S_IFMT(self.info.st_mode)


class _Gone(Exception):
    """``entry`` vanished, or became something else, while it was being compared."""

    def __init__(self, entry: _Entry) -> None:
        super().__init__(entry.name)
        self.entry = entry


@attrs.define
class _Level:
    """A directory being compared: its descriptor in each tree (None where that tree has no directory
    there), the names in each, and the names left to compare (the last one next)."""

    path: tuple[str, ...]
    before: int | None
    after: int | None
    before_names: frozenset[str] = frozenset()
    after_names: frozenset[str] = frozenset()
    pending: list[str] = attrs.Factory(list)

    def read_names(self) -> None:
        self.before_names = _names(self.before)
        self.after_names = _names(self.after)
        self.pending = sorted(self.before_names | self.after_names, key=os.fsencode, reverse=True)

    def entries(self, name: str) -> tuple[_Entry | None, _Entry | None]:
        before = _entry(self.before, name) if name in self.before_names else None
        after = _entry(self.after, name) if name in self.after_names else None
        return before, after

    def close(self) -> None:
        for fd in (self.before, self.after):
            if fd is not None:
                os.close(fd)


def _names(fd: int | None) -> frozenset[str]:
    return frozenset(os.listdir(fd)) if fd is not None else frozenset()


def _entry(parent: int | None, name: str) -> _Entry | None:
    if parent is None:
        return None
    try:
        return _Entry(parent, name, os.stat(name, dir_fd=parent, follow_symlinks=False))
    except FileNotFoundError:
        return None


@attrs.frozen
class _Comparison:
    content_check: ContentCheck
    xattrs: bool
    checkpoint: Callable[[], None]

    def changes(self, before: int, after: int) -> Iterator[Change]:
        stack = [_Level((), os.dup(before), os.dup(after))]
        try:
            stack[0].read_names()
            while stack:
                level = stack[-1]
                if not level.pending:
                    stack.pop().close()
                    continue
                self.checkpoint()
                name = level.pending.pop()
                old, new = level.entries(name)
                path = (*level.path, name)
                try:
                    change = self._compare(path, old, new)
                except _Gone as gone:  # compared again as absent on that side: no I/O left to fail
                    old, new = (None, new) if gone.entry is old else (old, None)
                    change = self._compare(path, old, new)
                if change is not None:
                    yield change
                below = _Level(path, None, None)
                stack.append(below)  # closed with the stack whatever fails next; popped at once if empty
                below.before = _open_if_directory(old)
                below.after = _open_if_directory(new)
                if len(stack) > MAX_DEPTH and (below.before is not None or below.after is not None):
                    raise TreeTooDeep(path)
                below.read_names()
        finally:
            for level in stack:
                level.close()

    def _compare(self, path: tuple[str, ...], old: _Entry | None, new: _Entry | None) -> Change | None:
        if old is None and new is None:
            return None
        if old is None or new is None:
            return _change(path, ChangeKind.ADDED if old is None else ChangeKind.REMOVED, old, new)
        if old.kind != new.kind:
            return _change(path, ChangeKind.TYPE_CHANGED, old, new)
        meta = self._meta(old, new)
        if self._content_differs(old, new):
            return _change(path, ChangeKind.MODIFIED, old, new, meta)
        return _change(path, ChangeKind.META_CHANGED, old, new, meta) if meta else None

    def _meta(self, old: _Entry, new: _Entry) -> tuple[str, ...]:
        a, b = old.info, new.info
        changed = [
            field
            for field, differs in (
                ("mode", stat.S_IMODE(a.st_mode) != stat.S_IMODE(b.st_mode)),
                ("uid", a.st_uid != b.st_uid),
                ("gid", a.st_gid != b.st_gid),
                ("mtime", old.kind != stat.S_IFDIR and a.st_mtime_ns != b.st_mtime_ns),
            )
            if differs
        ]
        if self.xattrs and _xattrs(old) != _xattrs(new):
            changed.append("xattrs")
        return tuple(changed)

    def _content_differs(self, old: _Entry, new: _Entry) -> bool:
        a, b = old.info, new.info
        if old.kind == stat.S_IFREG:
            if a.st_size != b.st_size:
                return True
            return not (self._equal_by_metadata(a, b) or _same_content(old, new, self.checkpoint))
        if old.kind == stat.S_IFLNK:
            return a.st_size != b.st_size or _target(old) != _target(new)
        if old.kind in (stat.S_IFCHR, stat.S_IFBLK):
            return a.st_rdev != b.st_rdev
        return False  # directories, FIFOs and sockets have no content of their own

    def _equal_by_metadata(self, a: os.stat_result, b: os.stat_result) -> bool:
        if self.content_check == ContentCheck.FULL or a.st_mtime_ns != b.st_mtime_ns:
            return False
        return self.content_check == ContentCheck.METADATA or a.st_ctime_ns == b.st_ctime_ns


def _change(
    path: tuple[str, ...], kind: ChangeKind, old: _Entry | None, new: _Entry | None, meta: tuple[str, ...] = ()
) -> Change:
    return Change("/".join(path), kind, _type(old), _type(new), _size(old), _size(new), meta)


def _type(entry: _Entry | None) -> str | None:
    return None if entry is None else TYPES.get(entry.kind, "unknown")


def _size(entry: _Entry | None) -> int | None:
    return entry.info.st_size if entry is not None and entry.kind in (stat.S_IFREG, stat.S_IFLNK) else None


def _open_if_directory(entry: _Entry | None) -> int | None:
    if entry is None or entry.kind != stat.S_IFDIR:
        return None
    try:
        return open_directory(entry.parent, entry.name)
    except OSError as error:
        if error.errno in _GONE:
            return None  # replaced since it was seen: nothing below it to compare
        raise


def _target(entry: _Entry) -> str:
    try:
        return read_link(entry.parent, entry.name, entry.info)
    except OSError as error:
        if error.errno in (*_GONE, errno.EINVAL):  # EINVAL: no longer a link
            raise _Gone(entry) from None
        raise


def _xattrs(entry: _Entry) -> dict[str, bytes]:
    """Every extended attribute of ``entry``, read by name in its directory's descriptor, never following it."""
    where = f"/proc/self/fd/{entry.parent}/{entry.name}"
    try:
        names = os.listxattr(where, follow_symlinks=False)
    except OSError as error:
        if error.errno in _NO_XATTRS:
            return {}
        if error.errno in _GONE:
            raise _Gone(entry) from None
        raise
    values = {}
    for name in names:
        try:
            values[name] = os.getxattr(where, name, follow_symlinks=False)
        except OSError as error:
            if error.errno == errno.ENODATA:
                continue  # removed since it was listed
            if error.errno in _GONE:
                raise _Gone(entry) from None
            raise
    return values


def _same_content(old: _Entry, new: _Entry, checkpoint: Callable[[], None]) -> bool:
    first = _open_regular(old)
    if first is None:
        return False
    try:
        second = _open_regular(new)
        if second is None:
            return False
        try:
            return _same_bytes(first, second, old.info.st_size, checkpoint)
        finally:
            os.close(second)
    finally:
        os.close(first)


def _open_regular(entry: _Entry) -> int | None:
    """A descriptor to read the regular file ``entry``, or None when it is no longer one. Opened ``O_PATH``
    first (which opens nothing: a FIFO cannot block, a device's driver is not called) and checked, then
    reopened through ``/proc/self/fd``: the inode checked is the inode read."""
    try:
        handle = os.open(entry.name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=entry.parent)
    except OSError as error:
        if error.errno in _GONE:
            raise _Gone(entry) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(handle).st_mode):
            return None
        reopen = f"/proc/self/fd/{handle}"
        try:
            return os.open(reopen, _READ_FLAGS | os.O_NOATIME)
        except PermissionError:  # O_NOATIME is refused to a caller who neither owns the file nor is root
            return os.open(reopen, _READ_FLAGS)
    finally:
        os.close(handle)


def _same_bytes(first: int, second: int, size: int, checkpoint: Callable[[], None]) -> bool:
    """Whether the first ``size`` bytes of the two files are equal, read up to the first difference."""
    for start, end in _data_in_either(first, second, size):
        offset = start
        while offset < end:
            checkpoint()
            chunk = os.pread(first, min(CHUNK, end - offset), offset)
            if chunk != os.pread(second, min(CHUNK, end - offset), offset):
                return False
            if not chunk:
                break  # both shorter than they were: equal so far
            offset += len(chunk)
    return True


def _data_in_either(first: int, second: int, size: int) -> list[tuple[int, int]]:
    """The byte ranges holding data in either file: the rest is a hole in both, zeros on both sides."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted([*data_regions(first, size), *data_regions(second, size)]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
