"""A scheduler's transactions on the task table: claim, renew, end, release, reap.

The queue plugin picks the rows a claim takes and wakes schedulers; the rest is core's (``wvs_core.db.tasks``).
Each method is one transaction that writes the task rows — a claim, a finish and a reap take several at once —
and records the changes with the ops' rules (``wvs_core.db.outcomes``), so a state change, its events and its
consequences commit together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs

from wvs_core.db import tasks
from wvs_core.db.driver import DriverTransaction
from wvs_core.db.events import DeferredEvents
from wvs_core.db.outcomes import Recorded, TaskRecorder
from wvs_core.db.transaction import SCHEDULER_ACTOR
from wvs_core.models import ExecutionResult, Task, TaskOutcome
from wvs_core.ops import ClaimDecision
from wvs_core.queue import TaskQueue

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from wvs_core.plugins import PluginRegistry


class LeaseLost(Exception):
    """The task is no longer RUNNING for this scheduler (its lease expired and it was reaped)."""


@attrs.frozen
class Ending:
    """How a run here ended: the ``outcome`` to record, and the executor's answer (for the op's
    ``on_succeeded``) when there was one."""

    task: Task
    outcome: TaskOutcome
    result: ExecutionResult | None = None


@attrs.frozen
class Claimed:
    """A task claimed here, and what its op's ``on_claimed`` rule decided the run is to do: ``task`` as started
    (RUNNING here); ``ended``, the task as recorded when it ended in the claiming transaction, needing no run
    (see ``TaskRuns.claim``), else None."""

    task: Task
    decision: ClaimDecision
    ended: Task | None = None


Settle = Callable[[Task, ClaimDecision], Ending | None]
"""How a task just claimed ends without a run — its op's claim rule finished or refused it — or None: it is to
run (the scheduler's ``Runner.settle``)."""

Decided = Callable[[int, int], None]
"""Told, once a claim knows its tasks and before it writes them, how many it took and how many of those are to
run (the rest end in the claim)."""


class TaskRuns:
    """The runs of one scheduler, ``worker_id``, over ``queue`` (and its engine), with the rules of the ops
    ``registry`` loaded. Events are by ``{"type": "scheduler", "worker_id": …}``."""

    def __init__(self, queue: TaskQueue, registry: PluginRegistry, worker_id: str) -> None:
        self.queue = queue
        self.recorder = TaskRecorder(registry)
        self.worker_id = worker_id
        self.actor = {**SCHEDULER_ACTOR, "worker_id": worker_id}
        self._next_claim: DriverTransaction | None = None  # begun ahead (``begin_next_claim``)

    async def begin_next_claim(self) -> None:
        """Begin the next claim's transaction now, while the scheduler waits for work: a wake-up then costs the
        claim one round trip, its statement's, instead of two (``DriverTransaction``). Nothing when one is
        begun already. Raises what the database raises."""
        if self._next_claim is None:
            self._next_claim = await DriverTransaction.begin(self.queue.engine)

    async def close(self) -> None:
        """Roll back the claim transaction begun ahead, if any, giving its connection back."""
        transaction, self._next_claim = self._next_claim, None
        if transaction is not None:
            await transaction.close()

    async def claim(
        self, lease: float, limit: int, settle: Settle | None = None, decided: Decided | None = None
    ) -> list[Claimed]:
        """Up to ``limit`` tasks the queue picks, now RUNNING here with a ``lease`` (seconds), oldest first, in
        one transaction; an empty list when none can run.

        With ``settle``, a task it gives an ending for (its op's claim rule finished or refused it) ends in the
        same transaction, recorded like any run's end, with one wake-up for all (``Claimed.ended``): no run, no
        second transaction, and its row written once, straight to its outcome. Should recording those endings
        fail, the whole claim rolls back.

        ``decided`` is called when the claim has taken tasks and knows which of them are to run, before it
        writes them (``Decided``): a caller may begin its next claim then, while this one commits. The tasks
        are locked until this one ends, so the next takes others, each behind its own workspace's head."""
        transaction, self._next_claim = self._next_claim, None
        if transaction is not None and transaction.dropped:
            await transaction.close()  # the server ended its session while it waited (a restart, a session killer)
            transaction = None
        if transaction is None:
            transaction = await DriverTransaction.begin(self.queue.engine)
        async with transaction:
            claimed = await tasks.claim(transaction, self.queue.choice(), limit, self.worker_id, lease)
            if not claimed:
                return []
            conn = transaction.conn
            events = DeferredEvents(conn)  # the task.started events go with the ends' (or alone, at the end)
            decisions = await self.recorder.claimed(events, claimed, self.actor)
            endings = {
                task.task_id: ending
                for task, decision in zip(claimed, decisions, strict=True)
                if settle is not None and (ending := settle(task, decision)) is not None
            }
            if decided is not None:
                decided(len(claimed), len(claimed) - len(endings))
            started = await tasks.start(conn, claimed, {task_id: ending.outcome for task_id, ending in endings.items()})
            runs = [(started[task_id], ending.result) for task_id, ending in endings.items()]
            settled = {one.task.task_id: one for one in await self.recorder.runs_ended(events, runs, self.actor)}
            await events.flush()
            if settled:
                await self.queue.announce(conn)  # the workspaces' next tasks may now start
        for recorded in settled.values():
            recorded.count()
        return [
            Claimed(task, decision, settled[task.task_id].task if task.task_id in settled else None)
            for task, decision in zip(claimed, decisions, strict=True)
        ]

    async def renew(self, task_ids: list[str], lease: float) -> set[str]:
        """Extend the leases of ``task_ids``; returns the ids still held here (the others were lost)."""
        if not task_ids:
            return set()
        async with self.queue.engine.begin() as conn:
            return await tasks.renew(conn, self.worker_id, task_ids, lease)

    async def finish(self, endings: Sequence[Ending]) -> list[Task | None]:
        """Record how runs here ended, in one transaction with one wake-up; returns each task as recorded, in
        the order given — None where the task is no longer RUNNING here (its lease was lost and it was reaped)."""
        async with self.queue.engine.begin() as conn:
            recorded = await self._end(conn, [(ending.task, ending.outcome, ending.result) for ending in endings])
            if recorded:
                await self.queue.announce(conn)  # the workspaces' next tasks may now start
        for one in recorded.values():
            one.count()
        return [recorded[ending.task.task_id].task if ending.task.task_id in recorded else None for ending in endings]

    async def reap(self, decide: Callable[[Task], TaskOutcome]) -> list[Task]:
        """End RUNNING tasks whose lease expired (their scheduler died) with the outcome ``decide`` picks."""
        async with self.queue.engine.begin() as conn:
            reaped = await self._end(conn, [(expired, decide(expired), None) for expired in await tasks.expired(conn)])
            if reaped:
                await self.queue.announce(conn)
        for recorded in reaped.values():
            recorded.count()
        return [recorded.task for recorded in reaped.values()]

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
        self, conn: AsyncConnection, ends: Sequence[tuple[Task, TaskOutcome, ExecutionResult | None]]
    ) -> dict[str, Recorded]:
        """End the runs still RUNNING for their worker and record them; by task id."""
        if not ends:
            return {}
        ended = await tasks.end(conn, [(task, outcome) for task, outcome, _ in ends])
        runs = [(ended[task.task_id], result) for task, _, result in ends if task.task_id in ended]
        recorded = await self.recorder.runs_ended(DeferredEvents(conn), runs, self.actor)
        return {one.task.task_id: one for one in recorded}
