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

from wvs_core.layout import WorkspaceLayout

POLL_INTERVAL = 0.05


@asynccontextmanager
async def workspace_lock(layout: WorkspaceLayout, wait: bool = True) -> AsyncIterator[bool]:
    """Hold the workspace's lock for the block; yields False (without holding it) when ``wait`` is False
    and someone else holds it. Waiting polls, so the wait can be cancelled. WVS's area must exist
    (``VolumeLayout.ensure_area``)."""
    fd = await asyncio.to_thread(os.open, layout.lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                acquired = True
                break
            except BlockingIOError:
                if not wait:
                    acquired = False
                    break
                await asyncio.sleep(POLL_INTERVAL)
        yield acquired
    finally:
        os.close(fd)  # releases the lock
