"""Judging how a run ended: the ``TaskOutcome`` an answer, a refusal or a failure leads to.

A failure is retried after a backoff (FAILED) until the task is out of attempts, or at once DEAD when it is
permanent (``ExecutionResult.retryable`` False, an unknown op, a refusal at claim time).
"""

from __future__ import annotations

from wvs_core.errors import ErrorCode
from wvs_core.models import ExecutionResult, Task, TaskOutcome, TaskStatus
from wvs_core.ops import TaskOp

CANCELED = "CANCELED"  # the executor's error_code for an op that stopped at a safe point


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before retry number ``attempt`` + 1: ``min(base · 2^(attempt-1), cap)``."""
    return float(min(base * 2 ** max(attempt - 1, 0), cap))


class Judge:
    """Decides outcomes with the worker's retry settings: ``retry_base`` and ``retry_max``, in seconds."""

    def __init__(self, retry_base: float, retry_max: float) -> None:
        self.retry_base = retry_base
        self.retry_max = retry_max

    def answer(self, task: Task, op: TaskOp, result: ExecutionResult) -> TaskOutcome:
        """The outcome of the executor's answer: success, canceled at a safe point, or a failure."""
        if result.success:
            return self.success(task, op, result)
        if result.error_code == CANCELED:
            error = {"code": "WVS_CANCELED", "reason": CANCELED, "message": "canceled at a safe point"}
            return TaskOutcome(TaskStatus.CANCELED, error=error)
        reason = result.error_code or "EXECUTOR_ERROR"
        return self.failure(task, reason, result.error_message, permanent=not result.retryable)

    def success(self, task: Task, op: TaskOp, result: ExecutionResult) -> TaskOutcome:
        """SUCCEEDED with the op's ``task_result`` of the executor's results, and ``noop``; DEAD
        (``INVALID_RESULT``) when the op cannot read them."""
        try:
            stored = op.task_result(result.results)
        except ValueError as error:
            return self.failure(
                task, "INVALID_RESULT", f"the {op.name} op cannot read its results: {error}", permanent=True
            )
        return TaskOutcome(TaskStatus.SUCCEEDED, result={**stored, "noop": result.noop})

    @staticmethod
    def rejected(task: Task, code: ErrorCode, message: str) -> TaskOutcome:
        """DEAD: the op's claim rule refused the task (``ClaimDecision.reject``)."""
        return TaskOutcome(
            TaskStatus.DEAD,
            error={"code": code.value, "reason": "REJECTED", "message": message, "attempt": task.attempt},
        )

    def failure(
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
        delay = backoff(task.attempt, self.retry_base, self.retry_max)
        return TaskOutcome(TaskStatus.FAILED, error=error, next_run_in=delay)

    def lease_expired(self, task: Task) -> TaskOutcome:
        """The reaper's outcome for a run whose scheduler stopped renewing its lease: a failure, counted."""
        return self.failure(task, "LEASE_EXPIRED", f"scheduler {task.worker_id} stopped renewing its lease")
