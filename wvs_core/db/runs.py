"""A scheduler's transactions on the task table: claim, renew, end, release, reap.

The queue plugin picks the row a claim takes and wakes schedulers; the rest is core's (``wvs_core.db.tasks``).
Each method is one transaction that writes the task row and records the change with the op's rules
(``wvs_core.db.outcomes``), so a state change, its events and its consequences commit together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from wvs_core.db import tasks
from wvs_core.db.outcomes import Recorded, TaskRecorder
from wvs_core.db.transaction import SCHEDULER_ACTOR
from wvs_core.models import ExecutionResult, Task, TaskOutcome, TaskStatus
from wvs_core.ops import ClaimDecision
from wvs_core.queue import TaskQueue

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from wvs_core.plugins import PluginRegistry


class LeaseLost(Exception):
    """The task is no longer RUNNING for this scheduler (its lease expired and it was reaped)."""


@attrs.frozen
class Claimed:
    """A task now RUNNING here, and what its op's ``on_claimed`` rule decided the run is to do."""

    task: Task
    decision: ClaimDecision


class TaskRuns:
    """The runs of one scheduler, ``worker_id``, over ``queue`` (and its engine), with the rules of the ops
    ``registry`` loaded. Events are by ``{"type": "scheduler", "worker_id": …}``."""

    def __init__(self, queue: TaskQueue, registry: PluginRegistry, worker_id: str) -> None:
        self.queue = queue
        self.recorder = TaskRecorder(registry)
        self.worker_id = worker_id
        self.actor = {**SCHEDULER_ACTOR, "worker_id": worker_id}

    async def claim(self, lease: float) -> Claimed | None:
        """The task the queue picks, now RUNNING here with a ``lease`` (seconds); None when none can run."""
        async with self.queue.engine.begin() as conn:
            task_id = await self.queue.claim(conn)
            if task_id is None:
                return None
            task = await tasks.start(conn, task_id, self.worker_id, lease)
            if task is None:
                raise RuntimeError(f"queue {self.queue.name!r} picked task {task_id}, which is not runnable")
            return Claimed(task, await self.recorder.claimed(conn, task, self.actor))

    async def renew(self, task_ids: list[str], lease: float) -> set[str]:
        """Extend the leases of ``task_ids``; returns the ids still held here (the others were lost)."""
        if not task_ids:
            return set()
        async with self.queue.engine.begin() as conn:
            return await tasks.renew(conn, self.worker_id, task_ids, lease)

    async def finish(self, task: Task, outcome: TaskOutcome, result: ExecutionResult | None = None) -> Task:
        """Record ``outcome`` of a task RUNNING here (``result``: the executor's answer, for the op's
        ``on_succeeded``). Raises LeaseLost when it no longer is."""
        async with self.queue.engine.begin() as conn:
            recorded = await self._end(conn, task, outcome, result)
            if recorded is None:
                raise LeaseLost(f"task {task.task_id} is no longer RUNNING for {task.worker_id}")
            await self.queue.announce(conn)  # the workspace's next task may now start
        recorded.count()
        return recorded.task

    async def reap(self, decide: Callable[[Task], TaskOutcome]) -> list[Task]:
        """End RUNNING tasks whose lease expired (their scheduler died) with the outcome ``decide`` picks."""
        reaped = []
        async with self.queue.engine.begin() as conn:
            for expired in await tasks.expired(conn):
                if (recorded := await self._end(conn, expired, decide(expired), None)) is not None:
                    reaped.append(recorded)
            if reaped:
                await self.queue.announce(conn)
        for recorded in reaped:
            recorded.count()
        return [recorded.task for recorded in reaped]

    async def release(self, task: Task) -> None:
        """Give a task RUNNING here back to the queue as PENDING, its attempt uncounted (graceful shutdown);
        nothing when it is no longer ours."""
        async with self.queue.engine.begin() as conn:
            released = await tasks.release(conn, task)
            if released is not None:
                await self.recorder.released(conn, released, self.actor)
                await self.queue.announce(conn)

    async def cancel_requested(self, task_id: str) -> bool:
        """True once someone asked to cancel the task."""
        async with self.queue.engine.connect() as conn:
            return await tasks.cancel_requested(conn, task_id)

    async def depth(self) -> int:
        """Tasks waiting to run (PENDING, or FAILED awaiting a retry)."""
        async with self.queue.engine.connect() as conn:
            return await tasks.depth(conn)

    async def _end(
        self, conn: AsyncConnection, task: Task, outcome: TaskOutcome, result: ExecutionResult | None
    ) -> Recorded | None:
        ended = await tasks.end(conn, task, outcome)
        if ended is None:
            return None
        return await self.recorder.ended(conn, ended, TaskStatus.RUNNING, self.actor, result=result)
