"""A scheduler begins its next claim while the one before commits, when that one took a full batch that ended in
its claim — and never holds more claims open than that, runs more tasks than its slots, or leaves a claim behind
when it is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.plugins.failing_ops import OpOverrides
from tests.queue_conformance import add_task, add_workspaces
from wvs_core.config import DatabaseConfig, PluginsConfig, WorkerConfig
from wvs_core.db.engine import create_engine
from wvs_core.db.runs import Claimed, Ending
from wvs_core.models import ExecutionResult, Task, TaskOutcome, TaskStatus
from wvs_core.ops import ClaimDecision, ExecutionContext, TaskOp, WorkspaceTransaction
from wvs_core.plugins import PluginRegistry
from wvs_core.scheduler import Scheduler
from wvs_pgqueue.queue import PostgresQueue

DONE = ExecutionResult(success=True, results={})


class DoneAtClaim(TaskOp):
    """Ends in its claim: its claim rule answers ``done``."""

    name = "done_at_claim"

    async def on_claimed(self, tx: WorkspaceTransaction, task: Task) -> ClaimDecision:
        return ClaimDecision.done(DONE)

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        return DONE


class HeldDone(DoneAtClaim):
    """Ends in its claim, whose ``on_succeeded`` rule waits for ``gate``: the claim stays open, uncommitted."""

    name = "held_done"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.holding = asyncio.Event()

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
        self.holding.set()
        await self.gate.wait()


class PoisonedDone(DoneAtClaim):
    """Ends in its claim, but its ``on_succeeded`` rule raises for the tasks of workspace ``poisoned``."""

    name = "poisoned_done"
    poisoned = "pipe-1"

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
        if task.wsid == self.poisoned:
            raise RuntimeError("an op's rule failed")


class HeldClaim(DoneAtClaim):
    """Needs a run; its claim rule waits for ``gate``: the claim stays open before it knows which tasks run."""

    name = "held_claim"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.holding = asyncio.Event()

    async def on_claimed(self, tx: WorkspaceTransaction, task: Task) -> ClaimDecision:
        self.holding.set()
        await self.gate.wait()
        return ClaimDecision.proceed()


class Runs(DoneAtClaim):
    """Needs a run (the default claim rule; the test stands in for the executor)."""

    name = "runs"

    async def on_claimed(self, tx: WorkspaceTransaction, task: Task) -> ClaimDecision:
        return ClaimDecision.proceed()


WORKSPACES = [f"pipe-{n}" for n in range(10)]


@pytest.fixture
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(DatabaseConfig(dsn=database, pool_size=4))
    await add_workspaces(engine, WORKSPACES)
    try:
        yield engine
    finally:
        await engine.dispose()


async def statuses(engine: AsyncEngine, task_ids: Iterable[str]) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.text("SELECT task_id, status FROM wvs.tasks"))
        by_id = {row.task_id: row.status for row in rows}
    return [by_id[task_id] for task_id in task_ids]


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if await check():
            return
        await asyncio.sleep(0.01)
    assert await check(), what


def claims_in_flight() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and getattr(task.get_coro(), "__qualname__", "") == "Scheduler._claim"
    ]


@contextlib.asynccontextmanager
async def scheduling(
    engine: AsyncEngine, concurrency: int, *ops: TaskOp, poll_interval: float = 0.05, idle_backoff: float = 5.0
) -> AsyncIterator[Scheduler]:
    registry = PluginRegistry.load(PluginsConfig(notifiers=[]), extra=[OpOverrides(*ops)])
    queue = PostgresQueue(engine, {})
    await queue.start()
    config = WorkerConfig(concurrency=concurrency, poll_interval=poll_interval, idle_backoff=idle_backoff)
    scheduler = Scheduler(config, registry, queue, "pipe")
    stop = asyncio.Event()
    running = asyncio.create_task(scheduler.run(stop))
    try:
        yield scheduler
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await queue.close()


async def test_the_next_claim_begins_while_a_claim_that_ended_all_its_tasks_commits_and_no_third(engine) -> None:
    held = HeldDone()
    queue = PostgresQueue(engine, {})
    first = await add_task(engine, queue, "pipe-0", held.name)
    second = await add_task(engine, queue, "pipe-1", DoneAtClaim.name)
    third = await add_task(engine, queue, "pipe-2", DoneAtClaim.name)

    async with scheduling(engine, 1, held, DoneAtClaim()):
        try:
            await asyncio.wait_for(held.holding.wait(), 10)  # the first claim took its task and is recording it

            async def second_committed() -> bool:
                return (await statuses(engine, [second]))[0] == "SUCCEEDED"

            await until(second_committed, "a second claim took and ended the next task while the first stayed open")
            await asyncio.sleep(0.3)
            assert await statuses(engine, [first, third]) == ["PENDING", "PENDING"], (
                "the first claim is uncommitted, and no third claim begins while it is open"
            )
        finally:
            held.gate.set()

        async def all_ended() -> bool:
            return await statuses(engine, [first, second, third]) == ["SUCCEEDED"] * 3

        await until(all_ended, "once the first commits, every task ends")


async def test_overlapping_claims_never_run_more_tasks_than_the_slots(engine) -> None:
    queue = PostgresQueue(engine, {})
    created = [
        await add_task(engine, queue, WORKSPACES[n % len(WORKSPACES)], Runs.name if n % 3 == 0 else DoneAtClaim.name)
        for n in range(60)
    ]
    in_flight, most = 0, 0

    async with scheduling(engine, 2, Runs(), DoneAtClaim()) as scheduler:
        finish = scheduler.runner.finisher.finish

        async def run(claimed: Claimed) -> None:  # a run that takes a while and succeeds, counted
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            try:
                await asyncio.sleep(0.02)
                await finish(Ending(claimed.task, TaskOutcome(TaskStatus.SUCCEEDED, result={})))
            finally:
                in_flight -= 1

        scheduler.runner.run = run  # type: ignore[method-assign]

        async def all_ended() -> bool:
            return set(await statuses(engine, created)) == {"SUCCEEDED"}

        await until(all_ended, "every task ended", seconds=30)
    assert most == 2, f"at most the 2 slots' runs at once (and both used): {most}"


async def test_endings_that_fail_to_record_in_their_claim_are_run_and_recorded_each_alone(engine) -> None:
    poisoned = PoisonedDone()
    queue = PostgresQueue(engine, {})
    created = [await add_task(engine, queue, wsid, poisoned.name) for wsid in WORKSPACES[:4]]

    async with scheduling(engine, 4, poisoned):

        async def the_others_ended() -> bool:
            now = await statuses(engine, created)
            return [status for n, status in enumerate(now) if n != 1] == ["SUCCEEDED"] * 3

        await until(the_others_ended, "the tasks whose rule holds end, though one rule failed in their claim")
        assert (await statuses(engine, created))[1] == "RUNNING", "the failing one's lease expires; the reaper ends it"


async def test_endings_that_fail_to_record_after_the_batch_was_reported_whole_are_claimed_to_run_at_once(
    engine,
) -> None:
    """The claim after the failed one comes back empty (the failed one still locked the task), and no NOTIFY
    follows a rollback: the scheduler claims again at once all the same, not after its poll interval."""
    poisoned = PoisonedDone()
    queue = PostgresQueue(engine, {})
    async with scheduling(engine, 1, poisoned, poll_interval=5.0):
        await asyncio.sleep(1.0)  # idle, waiting for work
        task_id = await add_task(engine, queue, poisoned.poisoned, poisoned.name)
        began = time.monotonic()

        async def claimed_to_run() -> bool:
            return (await statuses(engine, [task_id]))[0] == "RUNNING"

        await until(claimed_to_run, "the task whose ending failed to record is claimed to run")
        assert time.monotonic() - began < 2.0, "claimed to run at once, not after the 5 s poll interval"


async def test_a_cancelled_scheduler_leaves_no_claim_behind_to_start_runs(engine) -> None:
    held = HeldClaim()
    queue = PostgresQueue(engine, {})
    await queue.start()
    registry = PluginRegistry.load(PluginsConfig(notifiers=[]), extra=[OpOverrides(held)])
    scheduler = Scheduler(WorkerConfig(concurrency=1, poll_interval=0.05), registry, queue, "pipe-cancel")
    started: list[str] = []

    async def run(claimed: Claimed) -> None:  # stands in for the executor call
        started.append(claimed.task.task_id)

    scheduler.runner.run = run  # type: ignore[method-assign]
    task_id = await add_task(engine, queue, "pipe-0", held.name)
    running = asyncio.create_task(scheduler.run(asyncio.Event()))
    try:
        await asyncio.wait_for(held.holding.wait(), 10)  # the claim is open, in its claim rule
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(running, 10)
        left = claims_in_flight()
        held.gate.set()  # a claim still alive would now commit the task and start its run
        await asyncio.sleep(0.5)
        assert (left, started, await statuses(engine, [task_id])) == ([], [], ["PENDING"]), (
            "the cancelled scheduler's claim rolled back: no claim left, no run, the task still PENDING"
        )
    finally:
        held.gate.set()
        for claim in claims_in_flight():
            claim.cancel()
        await queue.close()


async def test_an_idle_scheduler_waits_with_its_next_claim_begun_and_leaves_none_behind(engine) -> None:
    """Its wake-up costs one round trip: the claim's BEGIN was sent while it waited. That transaction holds no
    snapshot, transaction id or lock meanwhile, and none is left once the scheduler stops."""
    waiting = sa.text(
        "SELECT backend_xid IS NULL AND backend_xmin IS NULL AS holds_nothing FROM pg_stat_activity "
        "WHERE datname = current_database() AND state LIKE 'idle in transaction%'"
    )

    async def begun_ahead() -> list[bool]:
        async with engine.connect() as conn:
            return [row.holds_nothing for row in await conn.execute(waiting)]

    async def one_begun_ahead() -> bool:
        return await begun_ahead() == [True]

    queue = PostgresQueue(engine, {})
    async with scheduling(engine, 2, DoneAtClaim(), poll_interval=30.0) as scheduler:
        await until(one_begun_ahead, "waiting for work, the scheduler holds its next claim's transaction")
        task_id = await add_task(engine, queue, "pipe-0", DoneAtClaim.name)

        async def ended() -> bool:
            return await statuses(engine, [task_id]) == ["SUCCEEDED"]

        await until(ended, "woken by the NOTIFY long before its 30 s poll, it claimed through that transaction")
        await until(one_begun_ahead, "and waits with the next one begun")
    assert await begun_ahead() == [], "stopped, it rolled that transaction back and gave its connection back"
    assert scheduler.runs  # still referenced: nothing was cleaned up by the garbage collector instead


@pytest.mark.parametrize("ended", ["its session", "every session"])
async def test_a_claim_begun_ahead_whose_session_the_server_ended_is_begun_afresh(engine, caplog, ended) -> None:
    """A script that kills ``idle in transaction`` sessions, a pooler's timeout, a restart (every session ends):
    the next claim finds the transaction it began ahead gone and begins another — no failed claim, no back-off."""
    queue = PostgresQueue(engine, {})
    # Waiting for work for a while: not a claim between its statements (the listener's first wake-up claims once).
    waiting = "state = 'idle in transaction' AND state_change < clock_timestamp() - interval '0.3 s'"
    sessions = {"its session": waiting, "every session": "pid <> pg_backend_pid()"}[ended]
    activity = "FROM pg_stat_activity WHERE datname = current_database() AND "
    async with scheduling(engine, 2, DoneAtClaim(), poll_interval=30.0, idle_backoff=30.0):

        async def count(what: str) -> int:
            async with engine.connect() as conn:
                return int((await conn.execute(sa.text(what))).scalar_one())

        async def begun_ahead() -> bool:
            return await count(f"SELECT count(*) {activity}{waiting}") == 1

        async def killed() -> bool:
            return await count(f"SELECT count(pg_terminate_backend(pid)) {activity}{sessions}") > 0

        await until(begun_ahead, "waiting for work, it holds its next claim's transaction")
        assert await killed(), f"{ended} ended"
        await asyncio.sleep(0.2)  # the connections' ends have seen it
        task_id = await add_task(engine, queue, "pipe-0", DoneAtClaim.name)

        async def claimed() -> bool:
            return await statuses(engine, [task_id]) == ["SUCCEEDED"]

        await until(claimed, "claimed on the NOTIFY, well before a 30 s back-off or poll would have let it")
    assert "claim failed" not in caplog.text
