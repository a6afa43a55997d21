"""Outcomes that arrive together are recorded together: one transaction and one wake-up per batch, at once
when nothing else is being recorded; a lost lease, or a failure to record, is still each task's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.queue_conformance import add_task, add_workspaces
from wvs_core.config import DatabaseConfig, PluginsConfig
from wvs_core.db.engine import create_engine
from wvs_core.db.runs import Ending, LeaseLost, TaskRuns
from wvs_core.models import ExecutionResult, Task, TaskOutcome, TaskStatus
from wvs_core.ops import ClaimDecision
from wvs_core.plugins import PluginRegistry
from wvs_core.scheduler.finishing import Finisher
from wvs_pgqueue.queue import PostgresQueue

LEASE = 60.0
SUCCEEDED = TaskOutcome(TaskStatus.SUCCEEDED, result={})
DONE = ExecutionResult(success=True)  # what a claim rule answering ClaimDecision.done carries


class CountingQueue(PostgresQueue):
    """The postgres queue, counting its wake-ups."""

    announced = 0

    async def announce(self, connection: AsyncConnection) -> None:
        self.announced += 1
        await super().announce(connection)


class WatchedRuns(TaskRuns):
    """A scheduler's runs, keeping the batches it was asked to record; ``poisoned`` tasks fail to record."""

    def __init__(self, queue: CountingQueue) -> None:
        super().__init__(queue, PluginRegistry.load(PluginsConfig()), "finisher-test")
        self.batches: list[list[str]] = []
        self.poisoned: set[str] = set()

    async def finish(self, endings: Sequence[Ending]) -> list[Task | None]:
        self.batches.append([ending.task.task_id for ending in endings])
        if self.poisoned & set(self.batches[-1]):
            raise RuntimeError("an op's rule failed")
        return await super().finish(endings)


@pytest.fixture
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(DatabaseConfig(dsn=database, pool_size=3))
    await add_workspaces(engine, [f"fin-{n}" for n in range(4)])
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def runs(engine: AsyncEngine) -> WatchedRuns:
    return WatchedRuns(CountingQueue(engine, {}))


async def running(engine: AsyncEngine, runs: WatchedRuns, count: int) -> list[Task]:
    for n in range(count):
        await add_task(engine, runs.queue, f"fin-{n}")
    return [claimed.task for claimed in await runs.claim(LEASE, count)]


async def statuses(engine: AsyncEngine) -> dict[str, str]:
    async with engine.connect() as conn:
        return {row.task_id: row.status for row in await conn.execute(sa.text("SELECT task_id, status FROM wvs.tasks"))}


async def test_outcomes_arriving_together_share_one_transaction_and_one_wake_up(engine, runs) -> None:
    tasks = await running(engine, runs, 4)
    finisher = Finisher(runs)
    announced = runs.queue.announced
    (alone,) = await asyncio.gather(finisher.finish(Ending(tasks[0], SUCCEEDED)))
    assert alone.status == TaskStatus.SUCCEEDED and runs.batches == [[tasks[0].task_id]], "recorded at once"

    together = await asyncio.gather(*(finisher.finish(Ending(task, SUCCEEDED)) for task in tasks[1:]))
    assert [task.task_id for task in together] == [task.task_id for task in tasks[1:]]
    assert runs.batches[1:] == [[task.task_id for task in tasks[1:]]], "one transaction for the three"
    assert runs.queue.announced - announced == 2, "one wake-up per batch"
    assert set((await statuses(engine)).values()) == {"SUCCEEDED"}


async def test_a_lost_lease_is_that_tasks_alone(engine, runs) -> None:
    kept, lost = await running(engine, runs, 2)
    async with engine.begin() as conn:  # reaped meanwhile by a scheduler that thought this one dead
        await conn.execute(
            sa.text("UPDATE wvs.tasks SET status = 'FAILED', worker_id = NULL WHERE task_id = :t"), {"t": lost.task_id}
        )
    finisher = Finisher(runs)
    finished = await asyncio.gather(
        finisher.finish(Ending(kept, SUCCEEDED)), finisher.finish(Ending(lost, SUCCEEDED)), return_exceptions=True
    )
    assert runs.batches == [[kept.task_id, lost.task_id]]
    assert isinstance(finished[0], Task) and finished[0].status == TaskStatus.SUCCEEDED
    assert isinstance(finished[1], LeaseLost)
    assert await statuses(engine) == {kept.task_id: "SUCCEEDED", lost.task_id: "FAILED"}


async def test_a_batch_that_fails_to_record_is_recorded_task_by_task(engine, runs) -> None:
    tasks = await running(engine, runs, 3)
    runs.poisoned = {tasks[1].task_id}
    finisher = Finisher(runs)
    finished = await asyncio.gather(
        *(finisher.finish(Ending(task, SUCCEEDED)) for task in tasks), return_exceptions=True
    )
    assert runs.batches == [[task.task_id for task in tasks]] + [[task.task_id] for task in tasks]
    assert isinstance(finished[1], RuntimeError)
    assert [type(one) for one in (finished[0], finished[2])] == [Task, Task]
    assert await statuses(engine) == {
        tasks[0].task_id: "SUCCEEDED",
        tasks[1].task_id: "RUNNING",  # its lease expires and the reaper ends it
        tasks[2].task_id: "SUCCEEDED",
    }


async def test_tasks_needing_no_run_end_in_their_claim_with_one_wake_up(engine, runs) -> None:
    for n in range(4):
        await add_task(engine, runs.queue, f"fin-{n}")
    announced = runs.queue.announced

    def settle(task: Task, _decision: ClaimDecision) -> Ending | None:
        return Ending(task, SUCCEEDED, DONE) if task.wsid in ("fin-0", "fin-2") else None

    claimed = await runs.claim(LEASE, 4, settle)
    ended = {one.task.wsid: one.ended.status if one.ended else None for one in claimed}
    assert ended == {"fin-0": TaskStatus.SUCCEEDED, "fin-1": None, "fin-2": TaskStatus.SUCCEEDED, "fin-3": None}
    assert runs.batches == [], "no second transaction"
    assert runs.queue.announced == announced + 1, "one wake-up: the workspaces' next tasks may start"
    by_wsid = {one.task.wsid: one.task.task_id for one in claimed}
    now = await statuses(engine)
    assert [now[by_wsid[wsid]] for wsid in ("fin-0", "fin-1", "fin-2", "fin-3")] == [
        "SUCCEEDED",
        "RUNNING",
        "SUCCEEDED",
        "RUNNING",
    ]
    async with engine.connect() as conn:
        actions = await conn.execute(
            sa.text("SELECT action FROM wvs.audit WHERE task_id = :task_id ORDER BY event_id"),
            {"task_id": by_wsid["fin-0"]},
        )
        assert list(actions.scalars()) == ["task.started", "task.succeeded"]  # created straight into the table


async def test_a_claims_rows_are_written_as_they_started_or_as_they_ended(engine, runs) -> None:
    """One batch, two kinds of row: those to run are RUNNING here under the lease, an attempt counted; those
    whose claim ended them carry their outcome and their run's times, and hold no lease."""
    for n in range(4):
        await add_task(engine, runs.queue, f"fin-{n}")

    def settle(task: Task, _decision: ClaimDecision) -> Ending | None:
        return Ending(task, SUCCEEDED, DONE) if task.wsid in ("fin-1", "fin-3") else None

    claimed = await runs.claim(LEASE, 4, settle)
    async with engine.connect() as conn:
        rows = {
            row.wsid: row
            for row in await conn.execute(
                sa.text(
                    "SELECT wsid, status, attempt, worker_id, result, started_at, ended_at, "
                    "lease_expires_at - started_at AS lease FROM wvs.tasks"
                )
            )
        }
    for wsid in ("fin-0", "fin-2"):
        row = rows[wsid]
        assert (row.status, row.attempt, row.worker_id, row.ended_at) == ("RUNNING", 1, runs.worker_id, None)
        assert abs(row.lease.total_seconds() - LEASE) < 1
    for wsid in ("fin-1", "fin-3"):
        row = rows[wsid]
        assert (row.status, row.attempt, row.worker_id, row.lease) == ("SUCCEEDED", 1, None, None)
        assert row.result == DONE.results and row.started_at <= row.ended_at
    recorded = {one.task.wsid: one.ended for one in claimed if one.ended is not None}
    assert {wsid: (task.status, task.ended_at) for wsid, task in recorded.items()} == {
        wsid: (TaskStatus.SUCCEEDED, rows[wsid].ended_at) for wsid in ("fin-1", "fin-3")
    }, "the ended tasks handed back are the rows as written"


async def test_a_claim_whose_endings_fail_to_record_takes_nothing(engine, runs) -> None:
    for n in range(2):
        await add_task(engine, runs.queue, f"fin-{n}")

    def settle(task: Task, _decision: ClaimDecision) -> Ending | None:
        return Ending(task, SUCCEEDED, DONE)

    async def failing_rule(*_args: object) -> None:
        raise RuntimeError("an op's rule failed")

    runs.recorder.runs_ended = failing_rule  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="rule failed"):
        await runs.claim(LEASE, 2, settle)
    assert set((await statuses(engine)).values()) == {"PENDING"}, "rolled back: claimed again, they run instead"
