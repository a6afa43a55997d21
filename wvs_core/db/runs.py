"""A scheduler's transactions on the task table: claim, renew, end, release, reap.

The queue plugin picks the row a claim takes and wakes schedulers; the rest is core's (``wvs_core.db.tasks``).
Each method is one transaction, and its ``InTransaction`` callback runs inside it, so a state change, its
events and the op's DB rule commit together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from wvs_core.db import tasks
from wvs_core.models import Task, TaskOutcome
from wvs_core.queue import TaskQueue

InTransaction = Callable[[AsyncConnection, Task], Awaitable[None]]
"""A callback run inside the transaction, with the task row as it was just written."""


class LeaseLost(Exception):
    """The task is no longer RUNNING for this scheduler (its lease expired and it was reaped)."""


class TaskRuns:
    """The runs of one scheduler, ``worker_id``, over ``queue`` (and its engine)."""

    def __init__(self, queue: TaskQueue, worker_id: str) -> None:
        self.queue = queue
        self.worker_id = worker_id

    async def claim(self, lease: float, on_claimed: InTransaction) -> Task | None:
        """The task the queue picks, now RUNNING here with a ``lease`` (seconds); None when none can run."""
        async with self.queue.engine.begin() as conn:
            task_id = await self.queue.claim(conn)
            if task_id is None:
                return None
            task = await tasks.start(conn, task_id, self.worker_id, lease)
            if task is None:
                raise RuntimeError(f"queue {self.queue.name!r} picked task {task_id}, which is not runnable")
            await on_claimed(conn, task)
            return task

    async def renew(self, task_ids: list[str], lease: float) -> set[str]:
        """Extend the leases of ``task_ids``; returns the ids still held here (the others were lost)."""
        if not task_ids:
            return set()
        async with self.queue.engine.begin() as conn:
            return await tasks.renew(conn, self.worker_id, task_ids, lease)

    async def finish(self, task: Task, outcome: TaskOutcome, on_finished: InTransaction) -> Task:
        """Record ``outcome`` of a task RUNNING here. Raises LeaseLost when it no longer is."""
        async with self.queue.engine.begin() as conn:
            finished = await tasks.end(conn, task, outcome)
            if finished is None:
                raise LeaseLost(f"task {task.task_id} is no longer RUNNING for {task.worker_id}")
            await on_finished(conn, finished)
            await self.queue.announce(conn)  # the workspace's next task may now start
            return finished

    async def reap(self, decide: Callable[[Task], TaskOutcome], on_finished: InTransaction) -> list[Task]:
        """End RUNNING tasks whose lease expired (their scheduler died) with the outcome ``decide`` picks."""
        reaped = []
        async with self.queue.engine.begin() as conn:
            for expired in await tasks.expired(conn):
                finished = await tasks.end(conn, expired, decide(expired))
                if finished is not None:
                    await on_finished(conn, finished)
                    reaped.append(finished)
            if reaped:
                await self.queue.announce(conn)
        return reaped

    async def release(self, task: Task, on_released: InTransaction) -> None:
        """Give a task RUNNING here back to the queue as PENDING, its attempt uncounted (graceful shutdown);
        nothing when it is no longer ours."""
        async with self.queue.engine.begin() as conn:
            released = await tasks.release(conn, task)
            if released is not None:
                await on_released(conn, released)
                await self.queue.announce(conn)

    async def cancel_requested(self, task_id: str) -> bool:
        """True once someone asked to cancel the task."""
        async with self.queue.engine.connect() as conn:
            return await tasks.cancel_requested(conn, task_id)

    async def depth(self) -> int:
        """Tasks waiting to run (PENDING, or FAILED awaiting a retry)."""
        async with self.queue.engine.connect() as conn:
            return await tasks.depth(conn)
