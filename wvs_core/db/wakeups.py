"""The queue's wake-ups after tasks accepted in one statement (``db/accept.py``), sent off the request path.

Such a task has committed when the request learns of it, so the wake-up (``TaskQueue.announce``) needs no
transaction of its own and no request needs to wait for it. One wake-up is in flight at a time; tasks accepted
meanwhile share the next one, which starts after they committed. Under load that is one statement for many
requests instead of one each. A wake-up that fails is logged: schedulers poll (``worker.poll_interval``) anyway.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from wvs_core.db.engine import DATABASE_ERRORS
from wvs_core.queue import TaskQueue

log = logging.getLogger(__name__)


class WakeUps:
    """Wakes the schedulers after tasks committed, one ``announce`` at a time on its own connection."""

    def __init__(self, engine: AsyncEngine, queue: TaskQueue) -> None:
        self._engine = engine
        self._queue = queue
        self._due = False
        self._sender: asyncio.Task[None] | None = None

    def task_committed(self) -> None:
        """A task committed: a wake-up starting from now on covers it."""
        self._due = True
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="wvs-queue-wake-ups")

    async def close(self) -> None:
        """Wait for the wake-up in flight, and the one due after it."""
        if self._sender is not None:
            await self._sender

    async def _send(self) -> None:
        while self._due:
            self._due = False
            try:
                async with self._engine.connect() as conn:
                    await self._queue.announce(conn)
            except DATABASE_ERRORS as error:
                log.warning("could not wake the schedulers; they will poll: %s", error)
                return
