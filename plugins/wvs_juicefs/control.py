"""``juicefs clone`` without the ``juicefs`` command: the clone request sent through the mount's control file.

``juicefs clone SRC DST`` is a thin client: it looks up three inodes, writes one message to the control file in
the volume's root (``.jfs.control``, ``.control`` before 1.3) and reads the mount's answer — progress records
``0xFE, cloned: u64, total: u64`` (big-endian), then one errno byte. The metadata engine does the clone. Sending
the message ourselves gives the count of entries cloned, which the command shows only as a progress bar on a
terminal, and saves starting a 100 MB Go binary (~50 ms) and its coarse polling (10 to 300 ms) per clone.
The message is the command's own (``cmd/clone.go``; ``pkg/meta``: ``Clone = 1006``,
``CLONE_MODE_PRESERVE_ATTR = 0x02``); a mount that predates the concurrency byte ignores it, and one that
does not know the request answers EINVAL.

The source inode comes from ``fstat`` of the descriptor the executor checked, never from a path. Closing the
control file cancels a clone still running (the mount cancels the request's context when its handle is
flushed), as killing the command did.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import threading
from pathlib import Path

from wvs_core.treewalk import DIRECTORY_FLAGS

CLONE = 1006
PRESERVE_ATTRIBUTES = 0x02  # CLONE_MODE_PRESERVE_ATTR: uid, gid, mode and times as they are (``-p``)
PROGRESS = 0xFE
PROGRESS_RECORD = struct.Struct(">BQQ")
CONTROL_NAMES = (".jfs.control", ".control")
CONTROL_INODE = 0x7FFFFFFF00000002  # the mount's own control file (pkg/vfs: minInternalNode + 2), never a file
ROOT_INODE = 1
FIRST_POLL = 0.001  # the answer is polled (a read at the end answers EOF): 1 ms, doubling up to MAX_POLL
MAX_POLL = 0.02


def volume_root(path: Path) -> Path:
    """The root of the JuiceFS volume ``path`` (a directory in WVS's area: trusted) is on: the nearest directory
    above it, on the same device, whose inode is the volume root's. Raises OSError (ENOTSUP) when there is none."""
    device = os.stat(path).st_dev
    for candidate in (path, *path.parents):
        info = os.stat(candidate)
        if info.st_dev != device:
            break
        if info.st_ino == ROOT_INODE:
            return candidate
    raise OSError(errno.ENOTSUP, f"{path} is not on a JuiceFS volume")


def clone_by_descriptor(root: Path, source: int, destination: Path, threads: int, stop: threading.Event) -> int | None:
    """Clone the directory open as ``source`` to ``destination`` (which must not exist; its parent is in WVS's area)
    on the volume whose root is ``root``, keeping uid, gid, mode and times; blocks until the mount answers.

    Returns the entries cloned below the root, None if the mount reported no count. Raises OSError with the mount's
    errno (EEXIST: ``destination`` exists), InterruptedError when ``stop`` is set first (the clone is cancelled).
    """
    return _clone(root, os.fstat(source).st_ino, _inode_at(source, ".."), destination, threads, stop)


def clone_entry_at(root: Path, parent: int, name: str, destination: Path, stop: threading.Event) -> None:
    """Clone the entry ``name`` (never followed: a link is cloned as a link) of the directory open as ``parent`` to
    ``destination``, as ``clone_by_descriptor`` clones a directory: the mount clones that one inode, whose data is
    shared, not copied. Raises IsADirectoryError for a directory, else as ``clone_by_descriptor``."""
    entry = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:  # held open while cloned: the inode cloned is the one found, whatever is renamed meanwhile
        info = os.fstat(entry)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, f"{name!r} is a directory")
        _clone(root, info.st_ino, os.fstat(parent).st_ino, destination, 1, stop)
    finally:
        os.close(entry)


def _clone(
    root: Path, source_inode: int, parent_inode: int, destination: Path, threads: int, stop: threading.Event
) -> int | None:
    destination_parent = _inode_at(None, str(destination.parent))
    name = os.fsencode(destination.name)
    body = struct.pack(">QQQB", source_inode, parent_inode, destination_parent, len(name)) + name
    body += struct.pack(">HBB", 0, PRESERVE_ATTRIBUTES, threads)  # umask 0: it applies only without PRESERVE
    control = _open_control(root)
    try:
        os.write(control, struct.pack(">II", CLONE, len(body)) + body)
        return _answer(control, stop)
    finally:
        os.close(control)  # cancels the clone when it is still running


def _answer(control: int, stop: threading.Event) -> int | None:
    cloned: int | None = None
    pending = b""
    interval = FIRST_POLL
    while True:
        data = os.read(control, 1 << 16)
        if not data:
            if stop.wait(interval):
                raise InterruptedError("clone stopped")
            interval = min(interval * 2, MAX_POLL)
            continue
        interval = FIRST_POLL
        pending += data
        while len(pending) >= PROGRESS_RECORD.size and pending[0] == PROGRESS:
            _, cloned, _total = PROGRESS_RECORD.unpack_from(pending)
            pending = pending[PROGRESS_RECORD.size :]
        if pending[:1] == bytes([PROGRESS]):
            continue  # the rest of a record is still to come
        if len(pending) > 1:
            raise OSError(errno.EIO, f"the JuiceFS mount answered a clone with {pending[:32]!r}")
        if pending:  # the last byte: the errno
            if pending[0]:
                raise OSError(pending[0], os.strerror(pending[0]))
            return None if cloned is None else cloned - 1  # the mount counts the root too


def _open_control(root: Path) -> int:
    """The mount's control file; a file someone made under one of its names is refused, not written to."""
    for name in CONTROL_NAMES:
        try:
            handle = os.open(root / name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            if os.fstat(handle).st_ino != CONTROL_INODE:
                raise OSError(errno.ENOTSUP, f"{root / name} is not the JuiceFS mount's control file")
            return os.open(f"/proc/self/fd/{handle}", os.O_RDWR | os.O_CLOEXEC)
        finally:
            os.close(handle)
    raise OSError(errno.ENOTSUP, f"no JuiceFS control file in {root}")


def _inode_at(parent: int | None, name: str) -> int:
    fd = os.open(name, DIRECTORY_FLAGS, dir_fd=parent)
    try:
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)
