"""One ``wvs up`` per data directory: an exclusive ``flock`` on ``<data-dir>/wvs-up.lock``.

The kernel drops the lock when its holder dies, even by kill -9, so a crash never leaves the directory
locked. The file records the holder's pid for the message a second ``wvs up`` prints.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "wvs-up.lock"


class DataDirBusy(Exception):
    """Another process holds the data directory; ``pid`` is its pid, or None when it has not recorded it."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        holder = f"another `wvs up` (pid {pid})" if pid is not None else "another `wvs up`"
        super().__init__(f"{holder} is using {data_dir}; stop it first or choose another --data-dir")
        self.data_dir = data_dir
        self.pid = pid


@contextmanager
def hold_data_dir(data_dir: Path) -> Iterator[None]:
    """Hold ``data_dir`` (which must exist) for the block, recording this process's pid.

    Never waits: raises DataDirBusy when another process holds it. The lock's descriptor is close-on-exec,
    so the servers this process starts (PostgreSQL, JuiceFS) do not inherit it: they never keep the
    directory locked after this process dies.
    """
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirBusy(data_dir, _recorded_pid(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _recorded_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
