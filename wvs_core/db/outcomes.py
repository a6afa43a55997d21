"""A task's change of status, recorded in one place: its event, the op's DB-side rule, the metrics.

The scheduler (a claim, a run's outcome, a release), the reaper (an expired lease) and the API (a cancel of a
task that is not running) all record through ``TaskRecorder``, inside the transaction that writes the task
row, so a change, its events and the op's consequences commit together. ``Recorded.count`` adds the metrics
once that transaction committed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy.ext.asyncio import AsyncConnection

from wvs_core import metrics
from wvs_core.agentview import TAMPERED
from wvs_core.db.events import record
from wvs_core.db.transaction import SqlWorkspaceTransaction
from wvs_core.events import EventType, NewEvent, task_event_type
from wvs_core.models import ExecutionResult, Task, TaskStatus
from wvs_core.ops import ClaimDecision

if TYPE_CHECKING:
    from wvs_core.plugins import PluginRegistry


@attrs.frozen
class Recorded:
    """An end of a task as recorded, and the workspace states its op's rule moved through."""

    task: Task
    before: TaskStatus  # RUNNING: a run ended; PENDING or FAILED: canceled while waiting
    workspace_changes: list[tuple[str, str]]  # (from, to)

    def count(self) -> None:
        """Add it to the metrics; call once the transaction committed."""
        for before, after in self.workspace_changes:
            metrics.WORKSPACE_TRANSITIONS.labels(before, after).inc()
        task = self.task
        if self.before != TaskStatus.RUNNING:
            return  # no run ended
        metrics.TASKS.labels(task.op, task.status.value).inc()
        if task.status == TaskStatus.FAILED:
            metrics.RETRIES.labels(task.op).inc()
        if task.started_at and task.ended_at:
            metrics.TASK_DURATION.labels(task.op).observe((task.ended_at - task.started_at).total_seconds())


class TaskRecorder:
    """Records task changes by ``actor`` with the DB-side rules of the ops ``registry`` loaded."""

    def __init__(self, registry: PluginRegistry) -> None:
        self.registry = registry

    async def claimed(self, conn: AsyncConnection, task: Task, actor: dict[str, Any]) -> ClaimDecision:
        """``task.started``, then the op's ``on_claimed`` rule: what the run is to do (proceed when no loaded
        plugin provides the op; the run then fails it)."""
        data = {"after": {"status": TaskStatus.RUNNING, "attempt": task.attempt}}
        await record(conn, NewEvent.of_task(EventType.TASK_STARTED, task, actor, data))
        op = self.registry.ops.get(task.op)
        if op is None:
            return ClaimDecision.proceed()
        return await op.on_claimed(self._transaction(conn, task, actor), task)

    async def released(self, conn: AsyncConnection, task: Task, actor: dict[str, Any]) -> None:
        """``task.released``: a RUNNING task went back to PENDING, its attempt uncounted (graceful shutdown)."""
        data = {"before": {"status": TaskStatus.RUNNING}, "after": {"status": task.status, "attempt": task.attempt}}
        await record(conn, NewEvent.of_task(EventType.TASK_RELEASED, task, actor, data))

    async def ended(
        self,
        conn: AsyncConnection,
        task: Task,
        before: TaskStatus,
        actor: dict[str, Any],
        *,
        request_id: str | None = None,
        result: ExecutionResult | None = None,
    ) -> Recorded:
        """``task`` went from ``before`` to SUCCEEDED, FAILED, DEAD or CANCELED: its event (by the request
        ``request_id``, by default the task's own), ``workspace.tampered`` when the agent view was found
        tampered with, and the op's rule (``on_succeeded`` with the executor's ``result``, ``on_dead`` or
        ``on_canceled``)."""
        data = {
            "before": {"status": before},
            "after": {
                "status": task.status,
                "attempt": task.attempt,
                "result": task.result,
                "cancel_requested": task.cancel_requested,
            },
            "error": task.error,
        }
        event = NewEvent.of_task(task_event_type(task.status), task, actor, data)
        await record(conn, attrs.evolve(event, request_id=request_id or task.request_id))
        if (task.error or {}).get("reason") == TAMPERED:
            await record(conn, NewEvent.of_task(EventType.WORKSPACE_TAMPERED, task, actor, {"error": task.error}))
        tx = self._transaction(conn, task, actor)
        op = self.registry.ops.get(task.op)
        if op is not None:
            if task.status == TaskStatus.SUCCEEDED and result is not None:
                await op.on_succeeded(tx, task, result)
            elif task.status == TaskStatus.DEAD:
                await op.on_dead(tx, task)
            elif task.status == TaskStatus.CANCELED:
                await op.on_canceled(tx, task)
        return Recorded(task, before, tx.state_changes)

    def _transaction(self, conn: AsyncConnection, task: Task, actor: dict[str, Any]) -> SqlWorkspaceTransaction:
        return SqlWorkspaceTransaction(conn, task, self.registry.snapshot_references, actor)
