"""The scheduling plane: claim tasks, call an executor, record the outcome with the op's DB rules."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import zlib
from collections.abc import Mapping
from typing import Any

import grpc

from wvs_core import metrics
from wvs_core.config import WorkerConfig
from wvs_core.db.runs import LeaseLost, TaskRuns
from wvs_core.errors import ErrorCode
from wvs_core.ids import uuid7
from wvs_core.logs import log_context
from wvs_core.models import ExecutionRequest, ExecutionResult, Task, TaskOutcome, TaskStatus
from wvs_core.ops import ClaimDecision, TaskOp
from wvs_core.plugins import PluginRegistry
from wvs_core.queue import TaskQueue
from wvs_core.rpc.client import ExecutorClient, ExecutorUnavailable

log = logging.getLogger(__name__)

CANCELED = "CANCELED"


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before retry number ``attempt`` + 1: ``min(base · 2^(attempt-1), cap)``."""
    return float(min(base * 2 ** max(attempt - 1, 0), cap))


def executor_request(task: Task, op: TaskOp, facts: Mapping[str, str]) -> ExecutionRequest:
    """The gRPC request for ``task``: its params, with the claim's ``facts`` added."""
    params = {**task.params, **facts}
    return ExecutionRequest(
        task_id=task.task_id, wsid=task.wsid, op=op.wire_name, params=params, request_id=task.request_id or ""
    )


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
        self.registry = registry
        self.queue = queue
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid7()[-12:]}"
        self.runs = TaskRuns(queue, registry, self.worker_id)
        self.executors = [ExecutorClient(addr, credentials) for addr in config.executor_addrs]
        self._jobs: dict[str, tuple[Task, asyncio.Task[None]]] = {}  # running here, by task id
        # The executor calls of those jobs: stopping a run cancels only its call, never a job that is
        # recording an outcome, so no transaction (and no row lock) is ever cut off half-way.
        self._calls: dict[str, asyncio.Task[tuple[ExecutionResult | None, TaskOutcome]]] = {}

    def executors_for(self, wsid: str) -> list[ExecutorClient]:
        """Executors in the order a workspace tries them: stable per workspace (rendezvous hashing), so a
        workspace sticks to one executor and moves only when that one is down."""
        return sorted(self.executors, key=lambda c: zlib.crc32(f"{wsid}|{c.addr}".encode()), reverse=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run tasks until ``stop`` is set; then stop claiming, let running tasks finish within
        the shutdown timeout, and give the rest back to the queue."""
        stopping = asyncio.create_task(stop.wait())
        upkeep = asyncio.create_task(self._upkeep(), name="wvs-scheduler-upkeep")
        try:
            while not stop.is_set():
                await self._fill()
                running = {job for _, job in self._jobs.values()}
                waiters: set[asyncio.Future[Any]] = {stopping, *running}
                if len(running) < self.config.concurrency:
                    waiters.add(asyncio.create_task(self.queue.wait_for_work(self.config.poll_interval)))
                _done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for waiter in pending - running - {stopping}:
                    waiter.cancel()
            await self._drain()
        finally:
            stopping.cancel()
            upkeep.cancel()
            for client in self.executors:
                await client.close()

    async def _drain(self) -> None:
        jobs = dict(self._jobs)
        if not jobs:
            return
        log.info("shutting down: waiting up to %.0fs for %d task(s)", self.config.shutdown_timeout, len(jobs))
        await asyncio.wait([job for _, job in jobs.values()], timeout=self.config.shutdown_timeout)
        for task, job in jobs.values():
            if job.done():
                continue
            self._stop_call(task.task_id)  # the executor's op stops and cleans up
            await asyncio.gather(job, return_exceptions=True)
            try:
                await self.runs.release(task)
                log.info("released task %s back to the queue", task.task_id)
            except Exception:
                log.exception("could not release task %s; its lease will expire", task.task_id)

    async def _fill(self) -> None:
        while len(self._jobs) < self.config.concurrency:
            try:
                claimed = await self.runs.claim(self.config.lease)
            except Exception:
                log.exception("claim failed; backing off %.1fs", self.config.idle_backoff)
                await asyncio.sleep(self.config.idle_backoff)
                return
            if claimed is None:
                metrics.DEQUEUE_EMPTY.inc()
                return
            task = claimed.task
            job = asyncio.create_task(self._run_task(task, claimed.decision), name=f"wvs-task-{task.task_id}")
            self._jobs[task.task_id] = (task, job)
            job.add_done_callback(functools.partial(self._forget, task.task_id))

    def _forget(self, task_id: str, _job: asyncio.Task[None]) -> None:
        self._jobs.pop(task_id, None)

    async def _upkeep(self) -> None:
        """Every third of a lease: renew ours, drop runs whose lease was lost, reap dead schedulers' tasks."""
        while True:
            await asyncio.sleep(self.config.lease / 3)
            try:
                await self._renew()
                for reaped in await self.runs.reap(self._lease_expired):
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
                self._stop_call(task_id)

    def _stop_call(self, task_id: str) -> None:
        if (call := self._calls.get(task_id)) is not None:
            call.cancel()

    def _lease_expired(self, task: Task) -> TaskOutcome:
        return self._failure(task, "LEASE_EXPIRED", f"scheduler {task.worker_id} stopped renewing its lease")

    async def _run_task(self, task: Task, decision: ClaimDecision) -> None:
        with log_context(request_id=task.request_id, task_id=task.task_id, wsid=task.wsid, op=task.op):
            log.info("task started", extra={"attempt": task.attempt})
            if task.started_at is not None:
                metrics.LOCK_WAIT.observe(max(0.0, (task.started_at - task.next_run_at).total_seconds()))
            op = self.registry.ops.get(task.op)
            result: ExecutionResult | None = None
            if op is None:
                message = f"no loaded plugin provides op {task.op!r}"
                outcome = self._failure(task, "UNKNOWN_OP", message, permanent=True)
            elif decision.reject_code is not None:
                outcome = self._rejected(task, decision.reject_code, decision.reject_message)
            elif decision.result is not None:
                result = decision.result
                outcome = self._success(result)
            else:
                call = asyncio.create_task(self._execute(task, op, decision.facts))
                self._calls[task.task_id] = call
                try:
                    result, outcome = await call
                except asyncio.CancelledError:
                    if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                        raise
                    log.info("run stopped before its end (lease lost or shutting down); nothing recorded")
                    return
                finally:
                    self._calls.pop(task.task_id, None)
            try:
                finished = await self.runs.finish(task, outcome, result)
            except LeaseLost:
                log.warning("task %s was reaped while it ran here; its outcome is dropped", task.task_id)
                return
            except Exception:
                log.exception("could not record the outcome of task %s; its lease will expire", task.task_id)
                return
            log.info("task %s", finished.status.lower(), extra={"attempt": finished.attempt})

    async def _execute(
        self, task: Task, op: TaskOp, facts: Mapping[str, str]
    ) -> tuple[ExecutionResult | None, TaskOutcome]:
        """Call the workspace's executor, failing over to the next when one is down; bounded end to end by
        the task's timeout."""
        deadline = time.monotonic() + task.timeout_seconds
        unavailable: list[str] = []
        for executor in self.executors_for(task.wsid):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            watcher = asyncio.create_task(self._forward_cancel(task, executor))
            try:
                result = await executor.execute(executor_request(task, op, facts), timeout=remaining)
            except TimeoutError as error:
                return None, self._failure(task, "EXECUTOR_TIMEOUT", str(error), ErrorCode.EXECUTOR_TIMEOUT)
            except ExecutorUnavailable as error:
                if error.reachable:
                    return None, self._failure(task, "EXECUTOR_ERROR", str(error))
                log.warning("executor %s is down; trying the next one", executor.addr)
                unavailable.append(str(error))
                continue
            finally:
                watcher.cancel()
            return result, self._judge(task, result)
        if not unavailable:
            message = f"no executor answered within {task.timeout_seconds}s"
            return None, self._failure(task, "EXECUTOR_TIMEOUT", message, ErrorCode.EXECUTOR_TIMEOUT)
        return None, self._failure(task, "EXECUTOR_UNAVAILABLE", "; ".join(unavailable))

    def _judge(self, task: Task, result: ExecutionResult) -> TaskOutcome:
        if result.success:
            return self._success(result)
        if result.error_code == CANCELED:
            error = {"code": "WVS_CANCELED", "reason": CANCELED, "message": "canceled at a safe point"}
            return TaskOutcome(TaskStatus.CANCELED, error=error)
        reason = result.error_code or "EXECUTOR_ERROR"
        return self._failure(task, reason, result.error_message, permanent=not result.retryable)

    async def _forward_cancel(self, task: Task, executor: ExecutorClient) -> None:
        """While the executor works, pass a cancel request on to it (it stops at its next safe point)."""
        while True:
            await asyncio.sleep(min(self.config.poll_interval, 1.0))
            try:
                # Not found yet: the op may still be waiting to start on the executor; ask again.
                if await self.runs.cancel_requested(task.task_id) and await executor.cancel(task.task_id):
                    return
            except Exception:
                log.warning("could not forward a cancel request", exc_info=True)

    @staticmethod
    def _success(result: ExecutionResult) -> TaskOutcome:
        return TaskOutcome(TaskStatus.SUCCEEDED, result={**result.results, "noop": result.noop})

    @staticmethod
    def _rejected(task: Task, code: ErrorCode, message: str) -> TaskOutcome:
        return TaskOutcome(
            TaskStatus.DEAD,
            error={"code": code.value, "reason": "REJECTED", "message": message, "attempt": task.attempt},
        )

    def _failure(
        self,
        task: Task,
        reason: str,
        message: str,
        code: ErrorCode = ErrorCode.EXECUTOR_ERROR,
        *,
        permanent: bool = False,
    ) -> TaskOutcome:
        """FAILED with a backoff, or DEAD when ``permanent`` or out of attempts."""
        error = {"code": code.value, "reason": reason, "message": message, "attempt": task.attempt}
        if permanent or task.attempt >= task.max_attempts:
            return TaskOutcome(TaskStatus.DEAD, error=error)
        delay = backoff(task.attempt, self.config.retry_base, self.config.retry_max)
        return TaskOutcome(TaskStatus.FAILED, error=error, next_run_in=delay)
