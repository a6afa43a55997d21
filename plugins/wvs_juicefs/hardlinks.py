"""Hard links after ``juicefs clone``: the clone gives every name its own inode, so a file with three
names comes back as three files. The source is scanned (by descriptors: ``wvs_core.treewalk``) while the
clone runs, and afterwards the names of each inode are linked together again in the clone. Only inodes
with more than one link need work; a link to a file outside the tree cannot be kept.
"""

from __future__ import annotations

import os
import stat

import attrs

from wvs_core.treewalk import open_path, walk

Path = tuple[str, ...]


@attrs.define
class TreeScan:
    """What a scan of the source found: the bytes of its regular files (each inode once) and the names of each
    inode with several."""

    bytes: int = 0
    links: dict[tuple[int, int], list[Path]] = attrs.field(factory=dict)

    @property
    def groups(self) -> list[list[Path]]:
        """The names of each inode that has more than one of them inside the tree."""
        return [paths for paths in self.links.values() if len(paths) > 1]


def scan(source: int) -> TreeScan:
    """Sum the bytes below the directory open as ``source`` and group the names of its hard links."""
    found = TreeScan()
    for visit in walk(source):
        info = visit.info
        if visit.leaving or visit.is_dir:
            continue
        if info.st_nlink > 1:
            names = found.links.setdefault((info.st_dev, info.st_ino), [])
            names.append(visit.path)
            if len(names) > 1:
                continue  # its bytes are counted once
        if stat.S_ISREG(info.st_mode):
            found.bytes += info.st_size
    return found


def relink(clone: int, groups: list[list[Path]]) -> None:
    """In the tree open as ``clone``, make every name of each group a link to the group's first name,
    giving each directory touched its times back."""
    touched: dict[Path, tuple[int, int]] = {}
    for first, *others in groups:
        first_parent = open_path(clone, first[:-1])
        try:
            for other in others:
                _link(clone, first_parent, first[-1], other, touched)
        finally:
            os.close(first_parent)
    for directory, times in touched.items():
        fd = open_path(clone, directory)
        try:
            os.utime(fd, ns=times)
        finally:
            os.close(fd)


def _link(clone: int, first_parent: int, first_name: str, other: Path, touched: dict[Path, tuple[int, int]]) -> None:
    parent = open_path(clone, other[:-1])
    try:
        if stat.S_ISDIR(os.stat(other[-1], dir_fd=parent, follow_symlinks=False).st_mode):
            return  # the tree changed between the scan and the clone: nothing to link
        if other[:-1] not in touched:
            info = os.fstat(parent)
            touched[other[:-1]] = (info.st_atime_ns, info.st_mtime_ns)
        temporary = f".wvs-link-{os.urandom(8).hex()}"
        os.link(first_name, temporary, src_dir_fd=first_parent, dst_dir_fd=parent, follow_symlinks=False)
        os.rename(temporary, other[-1], src_dir_fd=parent, dst_dir_fd=parent)
    finally:
        os.close(parent)
