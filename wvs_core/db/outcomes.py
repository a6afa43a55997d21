"""A task's change of status, recorded in one place: its event, the op's DB-side rule, the metrics.

The scheduler (a claim, a run's outcome, a release), the reaper (an expired lease) and the API (a cancel of a
task that is not running) all record through ``TaskRecorder``, inside the transaction that writes the task
row, so a change, its events and the op's consequences commit together. ``Recorded.count`` adds the metrics
once that transaction committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy.ext.asyncio import AsyncConnection

from wvs_core import metrics
from wvs_core.agentview import TAMPERED
from wvs_core.db.events import DeferredEvents, record
from wvs_core.db.transaction import SqlWorkspaceTransaction
from wvs_core.events import EventType, NewEvent, task_event_type
from wvs_core.models import ExecutionResult, Task, TaskStatus
from wvs_core.ops import PAGED_RESULT, ClaimDecision, TaskOp, summarised_result

if TYPE_CHECKING:
    from wvs_core.plugins import PluginRegistry

log = logging.getLogger(__name__)


@attrs.frozen
class Recorded:
    """An end of a task as recorded, and the workspace states its op's rule moved through."""

    task: Task
    before: TaskStatus  # RUNNING: a run ended; PENDING or FAILED: canceled while waiting
    workspace_changes: list[tuple[str, str]]  # (from, to)
    op: TaskOp | None = None  # the task's op, when a loaded plugin provides it

    def count(self) -> None:
        """Add it to the metrics, the op's own (``TaskOp.count_outcome``) included; call once the transaction
        committed."""
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
        if self.op is not None:
            try:
                self.op.count_outcome(task)
            except Exception:  # a plugin's metric must not undo what committed: the end is recorded
                log.exception("op %s failed to count the end of task %s", task.op, task.task_id)


class TaskRecorder:
    """Records task changes by ``actor`` with the DB-side rules of the ops ``registry`` loaded."""

    def __init__(self, registry: PluginRegistry) -> None:
        self.registry = registry

    async def claimed(
        self, events: DeferredEvents, tasks: Sequence[Task], actor: dict[str, Any]
    ) -> list[ClaimDecision]:
        """``task.started`` for each of ``tasks`` (deferred in ``events``: they go with the next events recorded,
        before them), then each op's ``on_claimed`` rule: what each run is to do (proceed when no loaded plugin
        provides the op; the run then fails it), in the order given."""
        started = []
        for task in tasks:
            data = {"after": {"status": TaskStatus.RUNNING, "attempt": task.attempt}}
            started.append(NewEvent.of_task(EventType.TASK_STARTED, task, actor, data))
        events.defer(started)
        decisions = []
        for task in tasks:
            op = self.registry.ops.get(task.op)
            decision = (
                ClaimDecision.proceed()
                if op is None
                else await op.on_claimed(self._transaction(events, task, actor), task)
            )
            decisions.append(decision)
        return decisions

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
    ) -> Recorded:
        """``task`` went from ``before`` (PENDING or FAILED: a cancel) to CANCELED, not by a run: its event (by
        the request ``request_id``, by default the task's own) and the op's ``on_canceled`` rule."""
        (recorded,) = await self._ended(DeferredEvents(conn), [(task, None)], before, actor, request_id)
        return recorded

    async def runs_ended(
        self, events: DeferredEvents, runs: Sequence[tuple[Task, ExecutionResult | None]], actor: dict[str, Any]
    ) -> list[Recorded]:
        """Runs ended: each task went from RUNNING to SUCCEEDED, FAILED, DEAD or CANCELED, with the executor's
        answer when there was one. Their events (one insert, after those ``events`` deferred), then each op's
        rule; in the order given."""
        return await self._ended(events, runs, TaskStatus.RUNNING, actor, None)

    async def _ended(
        self,
        deferred: DeferredEvents,
        ends: Sequence[tuple[Task, ExecutionResult | None]],
        before: TaskStatus,
        actor: dict[str, Any],
        request_id: str | None,
    ) -> list[Recorded]:
        """The events of each end — ``workspace.tampered`` too when the agent view was found tampered with; a
        result's ``paged_result`` list left out (``summarised_result``) — then the op's rule (``on_succeeded``
        with the executor's result, ``on_dead`` or ``on_canceled``), which may record the op's own events."""
        events = []
        for task, _result in ends:
            shown, page = summarised_result(self.registry.ops.get(task.op), task.task_id, task.result)
            after = {"status": task.status, "attempt": task.attempt, "result": shown}
            if page is not None:
                after[PAGED_RESULT] = page
            data = {
                "before": {"status": before},
                "after": {**after, "cancel_requested": task.cancel_requested},
                "error": task.error,
            }
            event = NewEvent.of_task(task_event_type(task.status), task, actor, data)
            events.append(attrs.evolve(event, request_id=request_id or task.request_id))
            if (task.error or {}).get("reason") == TAMPERED:
                events.append(NewEvent.of_task(EventType.WORKSPACE_TAMPERED, task, actor, {"error": task.error}))
        await deferred.record(events)
        recorded = []
        for task, result in ends:
            tx = self._transaction(deferred, task, actor)
            op = self.registry.ops.get(task.op)
            if op is not None:
                if task.status == TaskStatus.SUCCEEDED and result is not None:
                    await op.on_succeeded(tx, task, result)
                elif task.status == TaskStatus.DEAD:
                    await op.on_dead(tx, task)
                elif task.status == TaskStatus.CANCELED:
                    await op.on_canceled(tx, task)
            recorded.append(Recorded(task, before, tx.state_changes, op))
        return recorded

    def _transaction(self, events: DeferredEvents, task: Task, actor: dict[str, Any]) -> SqlWorkspaceTransaction:
        op = self.registry.ops.get(task.op)
        declared = op.event_types if op is not None else ()
        return SqlWorkspaceTransaction(events.conn, task, self.registry.snapshot_references, actor, declared, events)
