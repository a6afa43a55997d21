"""One claimed task, from what its claim decided to its recorded outcome."""

from __future__ import annotations

import asyncio
import functools
import logging

from wvs_core import metrics
from wvs_core.db.runs import Claimed, Ending, LeaseLost, TaskRuns
from wvs_core.logs import log_context
from wvs_core.models import ExecutionResult, Task, TaskOutcome
from wvs_core.ops import ClaimDecision
from wvs_core.plugins import PluginRegistry
from wvs_core.scheduler.executors import CallFailed, ExecutorPool, executor_request
from wvs_core.scheduler.finishing import Finisher
from wvs_core.scheduler.judging import Judge

log = logging.getLogger(__name__)


class Runner:
    """Runs the tasks one scheduler claimed: the op's claim decision or an executor call, judged, recorded.

    ``stop`` cuts a run's executor call short (lease lost, shutting down). It cancels only the call, never a
    run that is recording its outcome, so no transaction (and no row lock) is ever cut off half-way.
    """

    def __init__(
        self, registry: PluginRegistry, runs: TaskRuns, finisher: Finisher, judge: Judge, executors: ExecutorPool
    ) -> None:
        self.registry = registry
        self.runs = runs
        self.finisher = finisher
        self.judge = judge
        self.executors = executors
        self._calls: dict[str, asyncio.Task[ExecutionResult]] = {}  # executor calls in flight, by task id

    def stop(self, task_id: str) -> None:
        """Cancel the task's executor call, if one is in flight: the op stops and cleans up, nothing is
        recorded (the task is released or reaped instead)."""
        if (call := self._calls.get(task_id)) is not None:
            call.cancel()

    def settle(self, task: Task, decision: ClaimDecision) -> Ending | None:
        """How ``task`` ends without an executor call — no loaded plugin provides its op, or its claim rule
        finished (``ClaimDecision.done``) or refused it — or None when it is to run (``TaskRuns.claim`` records
        such endings in the claiming transaction)."""
        op = self.registry.ops.get(task.op)
        if op is None:
            message = f"no loaded plugin provides op {task.op!r}"
            return Ending(task, self.judge.failure(task, "UNKNOWN_OP", message, permanent=True))
        if decision.reject_code is not None:
            return Ending(task, self.judge.rejected(task, decision.reject_code, decision.reject_message))
        if decision.result is not None:
            return Ending(task, self.judge.success(task, op, decision.result), decision.result)
        return None

    @staticmethod
    def settled(claimed: Claimed) -> None:
        """Log a task that ended in its claiming transaction (``Claimed.ended``), as a run's start and end are."""
        task, ended = claimed.task, claimed.ended
        with log_context(request_id=task.request_id, task_id=task.task_id, wsid=task.wsid, op=task.op):
            _started(task)
            if ended is not None:
                log.info("task %s", ended.status.lower(), extra={"attempt": ended.attempt})

    async def run(self, claimed: Claimed) -> None:
        """Run ``claimed`` and record its outcome; a failure to record is logged (the lease then expires)."""
        task = claimed.task
        with log_context(request_id=task.request_id, task_id=task.task_id, wsid=task.wsid, op=task.op):
            _started(task)
            ran = await self._run(task, claimed.decision)
            if ran is None:
                log.info("run stopped before its end (lease lost or shutting down); nothing recorded")
                return
            result, outcome = ran
            try:
                finished = await self.finisher.finish(Ending(task, outcome, result))
            except LeaseLost:
                log.warning("task %s was reaped while it ran here; its outcome is dropped", task.task_id)
                return
            except Exception:
                log.exception("could not record the outcome of task %s; its lease will expire", task.task_id)
                return
            log.info("task %s", finished.status.lower(), extra={"attempt": finished.attempt})

    async def _run(self, task: Task, decision: ClaimDecision) -> tuple[ExecutionResult | None, TaskOutcome] | None:
        """The executor's answer (when it was called, or the claim's own result) and the outcome; None when
        the run was stopped."""
        if (ending := self.settle(task, decision)) is not None:
            return ending.result, ending.outcome
        op = self.registry.ops[task.op]
        cancel_requested = functools.partial(self.runs.cancel_requested, task.task_id)
        request = executor_request(task, op, decision.facts)
        call = asyncio.create_task(self.executors.call(request, task.timeout_seconds, cancel_requested))
        self._calls[task.task_id] = call
        try:
            result = await call
        except CallFailed as failed:
            return None, self.judge.failure(task, failed.reason, str(failed), failed.code)
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
            return None
        finally:
            self._calls.pop(task.task_id, None)
        return result, self.judge.answer(task, op, result)


def _started(task: Task) -> None:
    log.info("task started", extra={"attempt": task.attempt})
    if task.started_at is not None:
        metrics.LOCK_WAIT.observe(max(0.0, (task.started_at - task.next_run_at).total_seconds()))
