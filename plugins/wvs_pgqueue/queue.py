"""PostgresQueue: which tasks run next (runnable workspace heads, SKIP LOCKED) and LISTEN/NOTIFY wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import asyncpg
from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncEngine

from wvs_core.db.engine import asyncpg_dsn
from wvs_core.queue import TaskQueue
from wvs_pgqueue import queries

log = logging.getLogger(__name__)

RECONNECT_DELAY = 1.0


class PostgresQueue(TaskQueue):
    """Claims runnable workspace heads ``FOR UPDATE SKIP LOCKED``; wakes schedulers with ``NOTIFY`` (polling as
    fallback).

    Settings (``[plugins.settings.postgres]``): ``channel`` (default ``wvs_tasks``).
    """

    name = "postgres"

    def __init__(self, engine: AsyncEngine, settings: Mapping[str, Any]) -> None:
        super().__init__(engine, settings)
        self.channel = str(settings.get("channel", "wvs_tasks"))
        self._announcement = queries.NOTIFY.bindparams(channel=self.channel)
        self._wakeup = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the LISTEN loop on its own connection, outside the SQLAlchemy pool."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="wvs-queue-listener")

    async def close(self) -> None:
        """Stop listening."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    def announcement(self) -> TextClause:
        """NOTIFY the channel; PostgreSQL delivers it when the transaction commits."""
        return self._announcement

    def choice(self) -> TextClause:
        """Up to ``:limit`` runnable workspace heads, oldest first: each task's row and its workspace's row locked
        ``FOR UPDATE SKIP LOCKED`` for the rest of the claiming transaction."""
        return queries.CLAIM

    async def wait_for_work(self, timeout: float) -> None:
        """Return on a NOTIFY or after ``timeout`` seconds, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        self._wakeup.clear()

    def _on_notify(self, *_args: object) -> None:
        self._wakeup.set()

    async def _listen(self) -> None:
        dsn = asyncpg_dsn(self.engine.url.render_as_string(hide_password=False))
        while True:
            try:
                conn = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("queue listener cannot connect, polling meanwhile: %s", error)
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            try:
                await conn.add_listener(self.channel, self._on_notify)
                # Work may have been announced while we were not listening.
                self._wakeup.set()
                await lost.wait()
                log.warning("queue listener connection lost; reconnecting")
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("queue listener failed: %s", error)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
            await asyncio.sleep(RECONNECT_DELAY)
