"""PostgresQueue: the task table is the queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wvs_core.db.engine import asyncpg_dsn
from wvs_core.db.rows import from_row
from wvs_core.models import Task
from wvs_core.queue import InTransaction, LeaseLost, TaskOutcome, TaskQueue
from wvs_pgqueue import queries

log = logging.getLogger(__name__)

RECONNECT_DELAY = 1.0


class PostgresQueue(TaskQueue):
    """Claims with ``FOR UPDATE SKIP LOCKED``; wakes schedulers with ``NOTIFY`` (polling as fallback).

    Settings (``[plugins.settings.postgres]``): ``channel`` (default ``wvs_tasks``).
    """

    name = "postgres"

    def __init__(self, engine: AsyncEngine, settings: Mapping[str, Any]) -> None:
        super().__init__(engine, settings)
        self.channel = str(settings.get("channel", "wvs_tasks"))
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

    async def announce(self, connection: AsyncConnection) -> None:
        """NOTIFY the channel; PostgreSQL delivers it when the caller's transaction commits."""
        await connection.execute(queries.NOTIFY, {"channel": self.channel})

    async def claim(self, worker_id: str, lease: float, on_claimed: InTransaction) -> Task | None:
        """Claim the oldest runnable task whose workspace is free, in one statement."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(queries.CLAIM, {"worker_id": worker_id, "lease": lease})).first()
            if row is None:
                return None
            task = from_row(row, Task)
            await on_claimed(conn, task)
            return task

    async def renew(self, worker_id: str, task_ids: list[str], lease: float) -> set[str]:
        """Extend this worker's leases in one statement."""
        if not task_ids:
            return set()
        async with self.engine.begin() as conn:
            rows = await conn.execute(queries.RENEW, {"task_ids": task_ids, "worker_id": worker_id, "lease": lease})
            return {row.task_id for row in rows}

    async def finish(self, task: Task, outcome: TaskOutcome, on_finished: InTransaction) -> Task:
        """Record the outcome; raises LeaseLost when the task is no longer ours."""
        async with self.engine.begin() as conn:
            finished = await self._record(conn, task, outcome)
            if finished is None:
                raise LeaseLost(f"task {task.task_id} is no longer RUNNING for {task.worker_id}")
            await on_finished(conn, finished)
            # The workspace's next task may now start: wake every scheduler.
            await self.announce(conn)
            return finished

    async def reap(self, decide: Callable[[Task], TaskOutcome], on_finished: InTransaction) -> list[Task]:
        """End expired RUNNING tasks, each with the outcome ``decide`` picks, in one transaction."""
        reaped = []
        async with self.engine.begin() as conn:
            for row in (await conn.execute(queries.EXPIRED)).all():
                expired = from_row(row, Task)
                finished = await self._record(conn, expired, decide(expired))
                if finished is not None:
                    await on_finished(conn, finished)
                    reaped.append(finished)
            if reaped:
                await self.announce(conn)
        return reaped

    async def release(self, task: Task, on_released: InTransaction) -> None:
        """Back to PENDING, attempt uncounted; a no-op when the task is no longer ours."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(queries.RELEASE, {"task_id": task.task_id, "worker_id": task.worker_id})).first()
            if row is not None:
                await on_released(conn, from_row(row, Task))
                await self.announce(conn)

    @staticmethod
    async def _record(conn: AsyncConnection, task: Task, outcome: TaskOutcome) -> Task | None:
        row = (
            await conn.execute(
                queries.FINISH,
                {
                    "status": outcome.status.value,
                    "result": outcome.result,
                    "error": outcome.error,
                    "next_run_in": outcome.next_run_in,
                    "task_id": task.task_id,
                    "worker_id": task.worker_id,
                },
            )
        ).first()
        return from_row(row, Task) if row is not None else None

    async def wait_for_work(self, timeout: float) -> None:
        """Return on a NOTIFY or after ``timeout`` seconds, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        self._wakeup.clear()

    async def cancel_requested(self, task_id: str) -> bool:
        """The task's ``cancel_requested`` flag."""
        async with self.engine.connect() as conn:
            return bool((await conn.execute(queries.CANCEL_REQUESTED, {"task_id": task_id})).scalar())

    async def depth(self) -> int:
        """Tasks waiting to run."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(queries.DEPTH)).scalar_one())

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
