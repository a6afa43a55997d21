"""An exact copy of a directory tree, by descriptors (SPEC §5 "Clones are exact").

Kept: content (reflinked where the filesystem can, holes kept where it cannot), type (files, directories,
symlinks as links, FIFOs, sockets, device nodes), mode including setuid/setgid/sticky, owner, atime and
mtime, every extended attribute (so POSIX ACLs and file capabilities too), and hard links within the tree.
The source is read through ``wvs_core.treewalk`` — no link followed, any depth, ``O_NOATIME`` — so the
copy neither escapes the tree nor changes it. A hard link to a file outside the tree cannot be kept: the
copy gets its own inode (the content is the same).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading

from wvs_core.storage import TreeUsage
from wvs_core.treewalk import DIRECTORY_FLAGS, Visit, data_regions, open_path, read_link, walk

FICLONE = 0x40049409  # ioctl: share the source's extents (btrfs, XFS, ...)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOATIME
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def copy_tree(source: int, parent: int, name: str, stop: threading.Event | None = None) -> TreeUsage:
    """Copy the directory open as ``source`` to ``name`` (which must not exist) in the directory open as
    ``parent``; returns what was copied below the root, counted as it went (entries, and bytes of regular files
    with a hard-linked file once). Raises OSError — InterruptedError when ``stop`` is set before the copy is
    done (it is checked between entries)."""
    os.mkdir(name, 0o700, dir_fd=parent)
    root = os.open(name, DIRECTORY_FLAGS, dir_fd=parent)
    try:
        return _Copy(root, stop or threading.Event()).run(source)
    finally:
        os.close(root)


class _Copy:
    def __init__(self, root: int, stop: threading.Event) -> None:
        self.root = root
        self.stop = stop
        self.targets = [os.dup(root)]  # the destination directories being filled, deepest last
        self.first_copies: dict[tuple[int, int], tuple[str, ...]] = {}  # hard links: (dev, ino) → path

    def run(self, source: int) -> TreeUsage:
        entries = size = 0
        try:
            for visit in walk(source):
                if self.stop.is_set():
                    raise InterruptedError("copy stopped")
                if visit.leaving:
                    target = self.targets.pop()
                    try:
                        _apply_metadata(target, visit.info, f"/proc/self/fd/{visit.parent}/{visit.name}")
                    finally:
                        os.close(target)
                    continue
                entries += 1
                size += self._copy(visit, self.targets[-1])
            _apply_metadata(self.root, os.fstat(source), source)
        finally:
            for target in self.targets:
                os.close(target)
        return TreeUsage(entries=entries, bytes=size)

    def _copy(self, visit: Visit, target: int) -> int:
        """Copy one entry; returns the bytes of data it added (a regular file's size, 0 for a new name of one)."""
        info, name = visit.info, visit.name
        kind = stat.S_IFMT(info.st_mode)
        if kind != stat.S_IFDIR and info.st_nlink > 1 and self._link(visit, target):
            return 0
        if kind == stat.S_IFDIR:
            os.mkdir(name, 0o700, dir_fd=target)
            self.targets.append(os.open(name, DIRECTORY_FLAGS, dir_fd=target))
        elif kind == stat.S_IFREG:
            _copy_file(visit.parent, target, name, info)
            return info.st_size
        elif kind == stat.S_IFLNK:
            os.symlink(read_link(visit.parent, name, info), name, dir_fd=target)
            _apply_metadata_at(visit.parent, target, name, info)
        else:  # FIFO, socket, character or block device
            os.mknod(name, kind | 0o600, info.st_rdev, dir_fd=target)
            _apply_metadata_at(visit.parent, target, name, info)
        return 0

    def _link(self, visit: Visit, target: int) -> bool:
        """Make ``visit`` a hard link of the copy of its inode when that was copied already; False otherwise."""
        key = (visit.info.st_dev, visit.info.st_ino)
        first = self.first_copies.get(key)
        if first is None:
            self.first_copies[key] = visit.path
            return False
        first_parent = open_path(self.root, first[:-1])
        try:
            os.link(first[-1], visit.name, src_dir_fd=first_parent, dst_dir_fd=target, follow_symlinks=False)
        finally:
            os.close(first_parent)
        return True


def copy_entry(source_dir: int, name: str, target_dir: int, target_name: str) -> None:
    """Copy the entry ``name`` of the directory open as ``source_dir`` — a regular file, a link (as a link) or a
    special file, never followed — to ``target_name`` (which must not exist) in ``target_dir``, exactly as
    ``copy_tree`` copies an entry. Raises IsADirectoryError for a directory, OSError."""
    info = os.stat(name, dir_fd=source_dir, follow_symlinks=False)
    kind = stat.S_IFMT(info.st_mode)
    if kind == stat.S_IFDIR:
        raise IsADirectoryError(errno.EISDIR, f"{name!r} is a directory")
    if kind == stat.S_IFREG:
        _copy_file(source_dir, target_dir, name, info, target_name)
        return
    if kind == stat.S_IFLNK:
        os.symlink(read_link(source_dir, name, info), target_name, dir_fd=target_dir)
    else:
        os.mknod(target_name, kind | 0o600, info.st_rdev, dir_fd=target_dir)
    _apply_metadata_at(source_dir, target_dir, name, info, target_name)


def _copy_file(
    source_dir: int, target_dir: int, name: str, info: os.stat_result, target_name: str | None = None
) -> None:
    source = os.open(name, _FILE_FLAGS, dir_fd=source_dir)
    try:
        target = os.open(target_name or name, _NEW_FILE_FLAGS, 0o600, dir_fd=target_dir)
        try:
            _copy_content(source, target, info.st_size)
            _apply_metadata(target, info, source)
        finally:
            os.close(target)
    finally:
        os.close(source)


def _copy_content(source: int, target: int, size: int) -> None:
    """Reflink when the filesystem can; else copy the data regions only, so holes stay holes."""
    try:
        fcntl.ioctl(target, FICLONE, source)
        return
    except OSError:
        pass
    for start, end in data_regions(source, size):
        position = start
        while position < end:
            copied = os.copy_file_range(source, target, end - position, position, position)
            if copied == 0:
                break
            position += copied
    os.ftruncate(target, size)


def _apply_metadata(fd: int, info: os.stat_result, xattrs_from: int | str) -> None:
    """Owner, then mode (a chown clears setuid), then extended attributes read from ``xattrs_from`` (after
    the chown, which clears file capabilities), then the times, last."""
    os.fchown(fd, info.st_uid, info.st_gid)
    os.fchmod(fd, stat.S_IMODE(info.st_mode))
    _copy_xattrs(xattrs_from, fd)
    os.utime(fd, ns=(info.st_atime_ns, info.st_mtime_ns))


def _apply_metadata_at(
    source_dir: int, target_dir: int, name: str, info: os.stat_result, target_name: str | None = None
) -> None:
    """The same for a symlink or special file, which cannot be opened: by name, never following it."""
    target = target_name or name
    os.chown(target, info.st_uid, info.st_gid, dir_fd=target_dir, follow_symlinks=False)
    if not stat.S_ISLNK(info.st_mode):
        os.chmod(target, stat.S_IMODE(info.st_mode), dir_fd=target_dir)
    _copy_xattrs(f"/proc/self/fd/{source_dir}/{name}", f"/proc/self/fd/{target_dir}/{target}")
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns), dir_fd=target_dir, follow_symlinks=False)


def _copy_xattrs(source: int | str, target: int | str) -> None:
    """Every extended attribute; a path (a link or special file, by ``/proc/self/fd``) is never followed."""
    follow = isinstance(source, int)  # with a descriptor there is nothing to follow (and os refuses False)
    for attribute in os.listxattr(source, follow_symlinks=follow):
        value = os.getxattr(source, attribute, follow_symlinks=follow)
        os.setxattr(target, attribute, value, follow_symlinks=isinstance(target, int))
