"""A scheduler's claim loop: fill free slots with claimed tasks, keep their leases, reap the dead's, drain."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from typing import Any

import grpc

from wvs_core import metrics
from wvs_core.config import WorkerConfig
from wvs_core.db.engine import database_unavailable
from wvs_core.db.runs import Decided, TaskRuns
from wvs_core.ids import uuid7
from wvs_core.models import Task
from wvs_core.plugins import PluginRegistry
from wvs_core.queue import TaskQueue
from wvs_core.rpc.client import ExecutorClient
from wvs_core.scheduler.executors import ExecutorPool
from wvs_core.scheduler.finishing import Finisher
from wvs_core.scheduler.judging import Judge
from wvs_core.scheduler.running import Runner

log = logging.getLogger(__name__)


class Scheduler:
    """One scheduler instance: up to ``concurrency`` tasks at once, never two of one workspace."""

    def __init__(
        self,
        config: WorkerConfig,
        registry: PluginRegistry,
        queue: TaskQueue,
        worker_id: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.config = config
        self.queue = queue
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid7()[-12:]}"
        self.runs = TaskRuns(queue, registry, self.worker_id)
        self.executors = ExecutorPool(config.executor_addrs, credentials, min(config.poll_interval, 1.0))
        self.judge = Judge(config.retry_base, config.retry_max)
        self.runner = Runner(registry, self.runs, Finisher(self.runs), self.judge, self.executors)
        self._jobs: dict[str, tuple[Task, asyncio.Task[None]]] = {}  # running here, by task id
        self._committing: asyncio.Task[bool] | None = None  # the last claim begun, maybe still committing
        self._settling = True  # False for the claim after one whose endings failed to record

    def executors_for(self, wsid: str) -> list[ExecutorClient]:
        """The executors in the order ``wsid`` tries them (``ExecutorPool.executors_for``)."""
        return self.executors.executors_for(wsid)

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run tasks until ``stop`` is set; then stop claiming, let running tasks finish within
        the shutdown timeout, and give the rest back to the queue."""
        stopping = asyncio.create_task(stop.wait())
        upkeep = asyncio.create_task(self._upkeep(), name="wvs-scheduler-upkeep")
        try:
            while not stop.is_set():
                if await self._fill():
                    continue  # every task claimed ended at once, its slot free again: more may be waiting
                running = {job for _, job in self._jobs.values()}
                waiters: set[asyncio.Future[Any]] = {stopping, *running}
                if len(running) < self.config.concurrency:
                    await self._begin_next_claim()
                    waiters.add(asyncio.create_task(self.queue.wait_for_work(self.config.poll_interval)))
                _done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for waiter in pending - running - {stopping}:
                    waiter.cancel()
            if self._committing is not None:
                await self._committing  # its runs start before the drain
            await self.runs.close()  # no more claims: the one begun ahead is not kept through the drain
            await self._drain()
        finally:
            stopping.cancel()
            upkeep.cancel()
            if self._committing is not None:
                await _cancelled(self._committing)  # cancelled mid-way: no claim outlives the scheduler
            await self.runs.close()
            await self.executors.close()

    async def _begin_next_claim(self) -> None:
        """Waiting for work with slots free, begin the claim that work will need (``TaskRuns.begin_next_claim``):
        it then waits at most ``poll_interval``. Should the database not take it, the claim begins its own and
        reports why it cannot."""
        try:
            await self.runs.begin_next_claim()
        except Exception:
            log.debug("could not begin the next claim ahead", exc_info=True)

    async def _drain(self) -> None:
        jobs = dict(self._jobs)
        if not jobs:
            return
        log.info("shutting down: waiting up to %.0fs for %d task(s)", self.config.shutdown_timeout, len(jobs))
        await asyncio.wait([job for _, job in jobs.values()], timeout=self.config.shutdown_timeout)
        for task, job in jobs.values():
            if job.done():
                continue
            self.runner.stop(task.task_id)  # the executor's op stops and cleans up
            await asyncio.gather(job, return_exceptions=True)
            try:
                await self.runs.release(task)
                log.info("released task %s back to the queue", task.task_id)
            except Exception:
                log.exception("could not release task %s; its lease will expire", task.task_id)

    async def _fill(self) -> bool:
        """Claim tasks into the free slots; True when the queue may hold more at once: the slots were all filled
        with tasks that end in their claim (``Runner.settle``), or the claim before failed to record such ends.

        Such a full batch takes no slot, so the next claim begins as soon as it is known, while this one commits
        (``TaskRuns.claim``'s ``decided``). At most one claim commits while the next one takes its tasks; any
        other claim is awaited whole, its runs started, before this returns. Cancelled, it cancels its claim."""
        free = self.config.concurrency - len(self._jobs)
        if free <= 0:
            return False
        loop = asyncio.get_running_loop()
        settled_whole: asyncio.Future[bool] = loop.create_future()  # True: a full batch, none of it to run

        def decided(taken: int, to_run: int) -> None:
            settled_whole.set_result(taken == free and to_run == 0)

        claim = asyncio.create_task(self._claim(free, decided))
        try:
            await asyncio.wait({settled_whole, claim}, return_when=asyncio.FIRST_COMPLETED)
            previous, self._committing = self._committing, claim
            more = previous is not None and await previous  # it asks for another claim at once (say, it failed)
            if settled_whole.done() and settled_whole.result():
                return True
            return await claim or more
        except asyncio.CancelledError:
            await _cancelled(claim)  # cancelling the scheduler rolls its claim back, as it did inline
            raise

    async def _claim(self, free: int, decided: Decided) -> bool:
        """Claim up to ``free`` tasks and start the runs of those that need one; True when the queue may hold
        more at once (a full batch ended in its claim, or ending tasks in their claim failed).

        When recording those endings fails (an op's rule raised; not the database being unavailable), the claim
        rolled back, and the next claim takes its tasks to run instead: each then runs and records alone, where
        a failure costs that task alone its outcome (``Finisher``)."""
        settle = self.runner.settle if self._settling else None
        self._settling = True
        try:
            claimed = await self.runs.claim(self.config.lease, free, settle, decided)
        except Exception as error:
            if settle is not None and not database_unavailable(error):
                log.warning("ending tasks in their claim failed; claiming them to run instead", exc_info=True)
                self._settling = False
                return True
            log.exception("claim failed; backing off %.1fs", self.config.idle_backoff)
            await asyncio.sleep(self.config.idle_backoff)
            return False
        if len(claimed) < free:
            metrics.DEQUEUE_EMPTY.inc()  # the queue ran dry before the slots were filled
        for one in claimed:
            if one.ended is not None:
                self.runner.settled(one)
                continue
            task = one.task
            job = asyncio.create_task(self.runner.run(one), name=f"wvs-task-{task.task_id}")
            self._jobs[task.task_id] = (task, job)
            job.add_done_callback(functools.partial(self._forget, task.task_id))
        return len(claimed) == free and all(one.ended is not None for one in claimed)

    def _forget(self, task_id: str, _job: asyncio.Task[None]) -> None:
        self._jobs.pop(task_id, None)

    async def _upkeep(self) -> None:
        """Every third of a lease: renew ours, drop runs whose lease was lost, reap dead schedulers' tasks."""
        while True:
            await asyncio.sleep(self.config.lease / 3)
            try:
                await self._renew()
                for reaped in await self.runs.reap(self.judge.lease_expired):
                    log.warning("reaped task %s: its scheduler stopped renewing the lease", reaped.task_id)
                metrics.QUEUE_DEPTH.set(await self.runs.depth())
            except Exception:
                log.warning("lease upkeep failed", exc_info=True)

    async def _renew(self) -> None:
        asked = dict(self._jobs)  # tasks claimed while the renewal is in flight are not in it
        held = await self.runs.renew(list(asked), self.config.lease)
        for task_id, (_task, job) in asked.items():
            if task_id not in held and not job.done():
                log.warning("lost the lease of task %s; stopping its run", task_id)
                self.runner.stop(task_id)


async def _cancelled(task: asyncio.Task[bool]) -> None:
    """Cancel ``task`` unless it is done, and wait for it to end."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
