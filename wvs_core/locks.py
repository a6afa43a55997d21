"""The workspace lock: one op (or fsck) at a time per workspace, across every executor on the volume.

A ``flock`` on ``<mount>/.wvs/locks/<wsid>.lock`` in WVS's area: JuiceFS honours it across clients, and the
kernel drops it the moment its holder dies, even by kill -9, so a crashed executor never leaves a workspace
locked.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from wvs_core.cancellation import acquire_in_thread
from wvs_core.layout import WorkspaceLayout

POLL_INTERVAL = 0.05


def try_workspace_lock(layout: WorkspaceLayout) -> int | None:
    """Blocking, never waiting: take the workspace's lock. Its descriptor (close it to release the lock), or
    None when someone else holds it. WVS's area must exist (``VolumeLayout.ensure_area``)."""
    fd = os.open(layout.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@asynccontextmanager
async def workspace_lock(layout: WorkspaceLayout, wait: bool = True) -> AsyncIterator[bool]:
    """Hold the workspace's lock for the block; yields False (without holding it) when ``wait`` is False
    and someone else holds it. Waiting polls every POLL_INTERVAL, so the wait can be cancelled."""
    while True:
        fd = await acquire_in_thread(try_workspace_lock, layout, release=_release)
        if fd is not None or not wait:
            break
        await asyncio.sleep(POLL_INTERVAL)
    try:
        yield fd is not None
    finally:
        _release(fd)


def _release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # releases the lock
