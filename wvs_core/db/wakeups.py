"""The wake-ups after tasks accepted in one statement (``db/accept.py``), sent off the request path: the
schedulers' (``TaskQueue.announce``) and the event dispatcher's (a NOTIFY on ``db.events.CHANNEL``).

Such a task and its ``task.created`` event have committed when the request learns of them, so no request
waits for the wake-ups, and the accepting statement never takes PostgreSQL's notification lock (held by a
notifying transaction from its commit record to its end: notifying commits go one at a time, WAL flush
included). One round of wake-ups is in flight at a time: an idle API sends one at once; tasks accepted meanwhile
share the next one, which starts after they committed: under load, one for many requests. A round is two
statements on a connection in autocommit, the schedulers' first: each is a transaction of its own, so the
schedulers are woken by the first round trip, with no BEGIN before it and no COMMIT after it. A wake-up that
fails is logged: the schedulers and the dispatcher poll (``worker.poll_interval``, ``events.poll_interval``) anyway.
"""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from wvs_core.db.engine import DATABASE_ERRORS
from wvs_core.db.events import CHANNEL
from wvs_core.queue import TaskQueue

log = logging.getLogger(__name__)

_NOTIFY_DISPATCHER = sa.text("SELECT pg_notify(:channel, '')").bindparams(channel=CHANNEL)


class WakeUps:
    """Wakes the schedulers and the event dispatcher after tasks committed, one transaction at a time."""

    def __init__(self, engine: AsyncEngine, queue: TaskQueue) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._queue = queue
        self._due = False
        self._sender: asyncio.Task[None] | None = None

    async def task_committed(self) -> None:
        """A task committed: a wake-up starting from now on covers it. Yields once, so that a wake-up starting now
        is on its way to the database before the caller answers its request (the pickup latency)."""
        self._due = True
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="wvs-wake-ups")
            await asyncio.sleep(0)

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
                    await conn.execute(_NOTIFY_DISPATCHER)
            except DATABASE_ERRORS as error:
                log.warning("could not wake the schedulers and the event dispatcher; they poll meanwhile: %s", error)
                return
