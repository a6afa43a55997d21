"""The queue conformance suite: what core relies on from any ``TaskQueue`` (docs/plugin-hooks.md).

Run a queue through it by subclassing ``QueueConformance`` in a test module and implementing ``make_queue``
(``tests/test_queue_conformance.py`` does it for ``postgres``). It needs a ``database`` fixture giving the
DSN of a fresh, migrated WVS database. The queue is driven as schedulers drive it: through core's
``TaskRuns``, which runs the queue's ``choice`` in the statement that starts the tasks, with several
claimers — each with a queue object of its own, as separate schedulers have — at once.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wvs_core.config import DatabaseConfig, PluginsConfig
from wvs_core.db import tasks
from wvs_core.db.engine import create_engine
from wvs_core.db.runs import Ending, TaskRuns
from wvs_core.db.store import Store, Submission, TaskSpec
from wvs_core.db.tables import workspaces
from wvs_core.ids import uuid7
from wvs_core.models import TaskOutcome, TaskStatus, WorkspaceState
from wvs_core.plugins import PluginRegistry
from wvs_core.queue import TaskQueue
from wvs_core.scope import EVERYTHING

LEASE = 60.0  # seconds; nothing here may expire
SUCCEEDED = TaskOutcome(TaskStatus.SUCCEEDED, result={})


async def add_workspaces(engine: AsyncEngine, wsids: list[str]) -> None:
    """ACTIVE workspaces, straight into the table."""
    rows = [{"wsid": wsid, "owner": "conformance", "root_path": f"/conformance/{wsid}"} for wsid in wsids]
    async with engine.begin() as conn:
        await conn.execute(workspaces.insert().values(state=WorkspaceState.ACTIVE), rows)


async def create_task(conn: AsyncConnection, queue: TaskQueue, wsid: str, op: str = "conformance") -> str:
    """In ``conn``'s transaction, a PENDING ``op`` task created as the API creates one (under the workspace's
    row lock) and announced."""
    await conn.execute(sa.text("SELECT 1 FROM wvs.workspaces WHERE wsid = :wsid FOR UPDATE"), {"wsid": wsid})
    task = await tasks.insert(
        conn,
        wsid,
        op,
        {},
        max_attempts=5,
        timeout_seconds=300,
        idempotency_key=uuid7(),
        request_hash="-",
        request_id=uuid7(),
        actor={"type": "test"},
    )
    await queue.announce(conn)
    return task.task_id


async def add_task(engine: AsyncEngine, queue: TaskQueue, wsid: str, op: str = "conformance") -> str:
    """An ``op`` task created and committed; returns its id."""
    async with engine.begin() as conn:
        return await create_task(conn, queue, wsid, op)


class QueueConformance:
    """Every check core relies on from a queue. Subclasses implement ``make_queue``."""

    claimers = 4
    announces = True  # False for a queue that only polls: its wake-up check is skipped

    def make_queue(self, engine: AsyncEngine) -> TaskQueue:
        """A new, unstarted queue over ``engine``."""
        raise NotImplementedError

    @pytest.fixture
    async def queue_engine(self, database: str) -> AsyncIterator[AsyncEngine]:
        engine = create_engine(DatabaseConfig(dsn=database, pool_size=2 * self.claimers))
        try:
            yield engine
        finally:
            await engine.dispose()

    @pytest.fixture
    async def runs(self, queue_engine: AsyncEngine) -> AsyncIterator[list[TaskRuns]]:
        """One started queue and its ``TaskRuns`` per claimer."""
        registry = PluginRegistry.load(PluginsConfig())
        queues = [self.make_queue(queue_engine) for _ in range(self.claimers)]
        for queue in queues:
            await queue.start()
        try:
            yield [TaskRuns(queue, registry, f"claimer-{n}") for n, queue in enumerate(queues)]
        finally:
            for queue in queues:
                await queue.close()

    async def test_each_task_is_claimed_once_under_concurrent_claimers(
        self, queue_engine: AsyncEngine, runs: list[TaskRuns]
    ) -> None:
        wsids = [f"once-{n:02d}" for n in range(40)]
        await add_workspaces(queue_engine, wsids)
        created = [await add_task(queue_engine, runs[0].queue, wsid) for wsid in wsids]

        async def claim_until_none(claimer: TaskRuns) -> list[str]:
            got = []
            while claimed := await claimer.claim(LEASE, random.randint(1, 3)):
                got += [one.task.task_id for one in claimed]
            return got

        claimed = [task_id for got in await asyncio.gather(*map(claim_until_none, runs)) for task_id in got]
        assert sorted(claimed) == sorted(created), "every task claimed exactly once"
        assert [await claimer.claim(LEASE, 5) for claimer in runs] == [[]] * len(runs)

    async def test_a_workspace_runs_one_task_at_a_time_in_creation_order(
        self, queue_engine: AsyncEngine, runs: list[TaskRuns]
    ) -> None:
        """Claimers take batches and end them together while submitters keep adding tasks to the same
        workspaces: no workspace ever runs two tasks at once, and each runs its tasks in creation order."""
        wsids = [f"fifo-{n}" for n in range(self.claimers // 2)]  # idle claimers keep trying busy workspaces
        await add_workspaces(queue_engine, wsids)
        submitters, each = 2, 4 * len(wsids)
        total = submitters * each
        submitted: list[str] = []
        running: dict[str, str] = {}
        overlaps: list[tuple[str, str]] = []
        started: dict[str, list[str]] = defaultdict(list)

        async def submit() -> None:
            for _ in range(each):  # interleaved, so creation order differs from one workspace to the next
                submitted.append(await add_task(queue_engine, runs[0].queue, random.choice(wsids)))
                await asyncio.sleep(random.uniform(0, 0.01))

        async def work(claimer: TaskRuns) -> None:
            while sum(len(ids) for ids in started.values()) < total:
                claimed = await claimer.claim(LEASE, random.randint(1, 3))
                if not claimed:
                    await asyncio.sleep(0.005)
                    continue
                for task in (one.task for one in claimed):
                    if task.wsid in running:
                        overlaps.append((running[task.wsid], task.task_id))
                    running[task.wsid] = task.task_id
                    started[task.wsid].append(task.task_id)
                await asyncio.sleep(random.uniform(0.002, 0.02))
                for one in claimed:
                    del running[one.task.wsid]  # before the outcomes commit: the rows are RUNNING until then
                finished = await claimer.finish([Ending(one.task, SUCCEEDED) for one in claimed])
                assert [task.status if task else None for task in finished] == [TaskStatus.SUCCEEDED] * len(claimed)

        await asyncio.wait_for(asyncio.gather(*(submit() for _ in range(submitters)), *map(work, runs)), 60)
        assert overlaps == [], "two tasks of one workspace ran at once"
        async with queue_engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT task_id, wsid, status, attempt, started_at, ended_at FROM wvs.tasks "
                        "ORDER BY wsid, created_at, task_id"
                    )
                )
            ).all()
        assert sorted(row.task_id for row in rows) == sorted(submitted)
        created = {wsid: [row.task_id for row in group] for wsid, group in itertools.groupby(rows, lambda r: r.wsid)}
        assert dict(started) == created, "a workspace's tasks ran out of creation order"
        assert {(row.status, row.attempt) for row in rows} == {("SUCCEEDED", 1)}
        for earlier, later in itertools.pairwise(rows):
            if earlier.wsid == later.wsid:
                assert earlier.ended_at <= later.started_at, (
                    f"{later.wsid}: a task started before the one before it ended"
                )

    async def test_a_claim_takes_up_to_its_limit_oldest_first_skipping_workspaces_held_elsewhere(
        self, queue_engine: AsyncEngine, runs: list[TaskRuns]
    ) -> None:
        wsids = [f"batch-{n}" for n in range(5)]
        await add_workspaces(queue_engine, wsids)
        heads = [await add_task(queue_engine, runs[0].queue, wsid) for wsid in wsids]
        seconds = [await add_task(queue_engine, runs[0].queue, wsid) for wsid in wsids]
        async with queue_engine.connect() as holder:
            async with holder.begin():  # as a submit to batch-1 does, for as long as it takes
                await holder.execute(sa.text("SELECT 1 FROM wvs.workspaces WHERE wsid = 'batch-1' FOR UPDATE"))
                first = await asyncio.wait_for(runs[0].claim(LEASE, 3), 10)
                assert [one.task.task_id for one in first] == [heads[0], heads[2], heads[3]], (
                    "the three oldest heads, skipping the held workspace without waiting for it"
                )
                rest = await asyncio.wait_for(runs[1].claim(LEASE, 10), 10)
                assert [one.task.task_id for one in rest] == [heads[4]], "one task per workspace, none held"
            released = await runs[0].claim(LEASE, 10)
        assert [one.task.task_id for one in released] == [heads[1]]
        await runs[0].finish([Ending(one.task, SUCCEEDED) for one in [*first, *released]])
        await runs[1].finish([Ending(one.task, SUCCEEDED) for one in rest])
        after = await runs[0].claim(LEASE, 10)
        assert sorted(one.task.task_id for one in after) == sorted(seconds)

    async def test_a_running_task_holds_its_workspace(self, queue_engine: AsyncEngine, runs: list[TaskRuns]) -> None:
        await add_workspaces(queue_engine, ["held-ws"])
        first = await add_task(queue_engine, runs[0].queue, "held-ws")
        second = await add_task(queue_engine, runs[0].queue, "held-ws")
        (claimed,) = await runs[0].claim(LEASE, 5)
        assert claimed.task.task_id == first
        assert [await claimer.claim(LEASE, 5) for claimer in runs] == [[]] * len(runs), "claimed beside a RUNNING task"
        await runs[0].finish([Ending(claimed.task, SUCCEEDED)])
        assert [one.task.task_id for one in await runs[1].claim(LEASE, 5)] == [second]

    async def test_a_failed_task_awaiting_its_retry_blocks_its_workspace(
        self, queue_engine: AsyncEngine, runs: list[TaskRuns]
    ) -> None:
        await add_workspaces(queue_engine, ["retry-ws", "other-ws"])
        claimer, queue = runs[0], runs[0].queue
        first = await add_task(queue_engine, queue, "retry-ws")
        second = await add_task(queue_engine, queue, "retry-ws")
        (claimed,) = await claimer.claim(LEASE, 5)
        assert claimed.task.task_id == first
        error = {"code": "WVS_EXECUTOR_ERROR", "reason": "CONFORMANCE", "message": "fails once", "attempt": 1}
        await claimer.finish([Ending(claimed.task, TaskOutcome(TaskStatus.FAILED, error=error, next_run_in=3600))])

        assert await claimer.claim(LEASE, 5) == [], "the newer task must wait behind the FAILED one"
        other = await add_task(queue_engine, queue, "other-ws")
        (claimed,) = await claimer.claim(LEASE, 5)
        assert claimed.task.task_id == other, "other workspaces are not held up"
        await claimer.finish([Ending(claimed.task, SUCCEEDED)])

        async with queue_engine.begin() as conn:  # its retry is due
            await conn.execute(sa.text("UPDATE wvs.tasks SET next_run_at = now() WHERE task_id = :t"), {"t": first})
        (claimed,) = await claimer.claim(LEASE, 5)
        assert (claimed.task.task_id, claimed.task.attempt) == (first, 2)
        await claimer.finish([Ending(claimed.task, SUCCEEDED)])
        assert [one.task.task_id for one in await claimer.claim(LEASE, 5)] == [second]

    async def test_an_enqueue_wakes_a_waiting_scheduler_once_it_commits(
        self, queue_engine: AsyncEngine, runs: list[TaskRuns]
    ) -> None:
        if not self.announces:
            pytest.skip("this queue only polls")
        await add_workspaces(queue_engine, ["wake-ws"])
        queue = runs[0].queue
        await quiet(queue_engine, queue)
        waiter = asyncio.create_task(queue.wait_for_work(30))
        await asyncio.sleep(0.2)
        assert not waiter.done(), "woken with nothing announced"
        async with queue_engine.begin() as conn:
            await create_task(conn, queue, "wake-ws")
            await asyncio.sleep(0.5)
            assert not waiter.done(), "woken before the task was committed"
        try:
            await asyncio.wait_for(waiter, 5)
        except TimeoutError:
            raise AssertionError("not woken within 5 s of the commit") from None

    async def test_a_task_the_api_accepts_wakes_a_waiting_scheduler(
        self, queue_engine: AsyncEngine, runs: list[TaskRuns]
    ) -> None:
        """The announcement written into the accepting statement (``wvs_core/db/accept.py``) wakes as well."""
        await add_workspaces(queue_engine, ["accept-ws"])
        queue = runs[0].queue
        store = Store(queue_engine, queue)
        if self.announces:
            await quiet(queue_engine, queue)
        waiter = asyncio.create_task(queue.wait_for_work(30))
        submission = Submission(uuid7(), "-", uuid7(), {"type": "test"})
        accepted = await store.submit_task(
            "accept-ws", TaskSpec("conformance", {}, 5, 300), submission, scope=EVERYTHING
        )
        await store.close()
        assert accepted.created
        if self.announces:
            await asyncio.wait_for(waiter, 5)
        else:
            waiter.cancel()
        assert [one.task.task_id for one in await runs[0].claim(LEASE, 5)] == [accepted.task.task_id]


async def quiet(engine: AsyncEngine, queue: TaskQueue) -> None:
    """Wait until ``queue`` hears announcements (its listener is up) and has none pending."""
    for _ in range(50):
        async with engine.begin() as conn:
            await queue.announce(conn)
        heard = time.monotonic()
        await queue.wait_for_work(5)
        assert time.monotonic() - heard < 5, "an announcement was not heard within 5 s"
        before = time.monotonic()
        await queue.wait_for_work(0.3)
        if time.monotonic() - before >= 0.25:
            return
    raise AssertionError("the queue keeps waking up with nothing announced")
