"""Recording how runs ended, several to a transaction when they end close together (group commit)."""

from __future__ import annotations

import asyncio
import logging

from wvs_core.db.runs import Ending, LeaseLost, TaskRuns
from wvs_core.models import Task

log = logging.getLogger(__name__)


class Finisher:
    """Records the outcomes of one scheduler's runs through ``runs``.

    An outcome handed in while no recording is under way is recorded at once (with any others handed in
    during the same turn of the event loop); those handed in meanwhile wait for it, then go together in the
    next transaction, with one wake-up for all. So an idle scheduler adds no latency, and a busy one
    commits once per batch instead of once per task. At most one outcome per running task waits, so a batch
    never exceeds the scheduler's concurrency.
    """

    def __init__(self, runs: TaskRuns) -> None:
        self.runs = runs
        self._waiting: list[tuple[Ending, asyncio.Future[Task]]] = []
        self._recording: asyncio.Task[None] | None = None

    async def finish(self, ending: Ending) -> Task:
        """Record ``ending``; returns the task as recorded. Raises LeaseLost when the task is no longer RUNNING
        here, or what recording it raised."""
        future: asyncio.Future[Task] = asyncio.get_running_loop().create_future()
        self._waiting.append((ending, future))
        if self._recording is None:
            self._recording = asyncio.create_task(self._record_waiting(), name="wvs-finisher")
        return await future

    async def _record_waiting(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._record(batch)
        finally:
            self._recording = None

    async def _record(self, batch: list[tuple[Ending, asyncio.Future[Task]]]) -> None:
        try:
            finished = await self.runs.finish([ending for ending, _ in batch])
        except Exception as error:
            if len(batch) > 1:  # one outcome's failing rule must not cost the others theirs: each on its own
                log.warning("recording %d outcomes together failed; recording each alone", len(batch), exc_info=True)
                for one in batch:
                    await self._record([one])
            elif not batch[0][1].done():
                batch[0][1].set_exception(error)
            return
        for (ending, future), task in zip(batch, finished, strict=True):
            if future.done():
                continue  # its run stopped waiting
            if task is None:
                worker = ending.task.worker_id
                future.set_exception(LeaseLost(f"task {ending.task.task_id} is no longer RUNNING for {worker}"))
            else:
                future.set_result(task)
