"""A workspace's head — its oldest unfinished task, kept on its row for the claim — is right after every task
transition, whoever makes it (the API, a scheduler, the reaper), and fsck reports and repairs a wrong one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import default_fsck, workspace_heads
from tests.queue_conformance import add_workspaces
from wvs_core.config import DatabaseConfig, PluginsConfig
from wvs_core.db.engine import create_engine
from wvs_core.db.outcomes import TaskRecorder
from wvs_core.db.runs import Ending, TaskRuns
from wvs_core.db.store import Store, Submission, TaskSpec
from wvs_core.ids import uuid7
from wvs_core.layout import VolumeLayout
from wvs_core.models import Task, TaskOutcome, TaskStatus
from wvs_core.plugins import PluginRegistry
from wvs_core.scope import EVERYTHING
from wvs_pgqueue.queue import PostgresQueue

LEASE = 60.0
ERROR = {"code": "WVS_EXECUTOR_ERROR", "reason": "HEADS", "message": "failed", "attempt": 1}
SUCCEEDED = TaskOutcome(TaskStatus.SUCCEEDED, result={})
RETRY_LATER = TaskOutcome(TaskStatus.FAILED, error=ERROR, next_run_in=3600)
RETRY_NOW = TaskOutcome(TaskStatus.FAILED, error=ERROR, next_run_in=0)
DEAD = TaskOutcome(TaskStatus.DEAD, error=ERROR)
CANCELED = TaskOutcome(TaskStatus.CANCELED, error={"code": "WVS_CANCELED", "reason": "CANCELED", "message": "-"})


class Tasks:
    """Drives tasks through core as the API and a scheduler do; after every step, each workspace's stored
    head must equal the one computed from scratch from its tasks."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        registry = PluginRegistry.load(PluginsConfig())
        queue = PostgresQueue(engine, {})
        self.store = Store(engine, queue)
        self.recorder = TaskRecorder(registry)
        self.runs = TaskRuns(queue, registry, "heads-scheduler")

    async def submit(self, wsid: str = "heads") -> str:
        submission = Submission(uuid7(), "-", uuid7(), {"type": "test"})
        accepted = await self.store.submit_task(wsid, TaskSpec("heads", {}, 5, 300), submission, scope=EVERYTHING)
        await self.check()
        return accepted.task.task_id

    async def claim(self, lease: float = LEASE) -> list[Task]:
        claimed = [one.task for one in await self.runs.claim(lease, 5)]
        await self.check()
        return claimed

    async def end(self, *endings: tuple[Task, TaskOutcome]) -> None:
        finished = await self.runs.finish([Ending(task, outcome) for task, outcome in endings])
        assert None not in finished
        await self.check()

    async def cancel(self, task_id: str) -> None:
        await self.store.cancel_task(task_id, uuid7(), {"type": "test"}, self.recorder, scope=EVERYTHING)
        await self.check()

    async def release(self, task: Task) -> None:
        await self.runs.release(task)
        await self.check()

    async def reap(self, outcome: TaskOutcome) -> None:
        assert await self.runs.reap(lambda _task: outcome)
        await self.check()

    async def check(self) -> None:
        async with self.engine.connect() as conn:
            stored, computed = await workspace_heads(conn)
        assert stored == computed

    async def heads(self) -> dict[str, tuple[str | None, str]]:
        """Each workspace's head task and whether it is ``running``, ``runnable`` now, ``waiting`` for its
        retry, or ``none``."""
        async with self.engine.connect() as conn:
            stored, _ = await workspace_heads(conn)
        now = datetime.now(UTC)
        return {wsid: (task_id, _state(task_id, run_at, now)) for wsid, (task_id, _, run_at) in stored.items()}


def _state(task_id: str | None, run_at: datetime | None, now: datetime) -> str:
    if task_id is None:
        return "none"
    if run_at is None:
        return "running"
    return "runnable" if run_at <= now else "waiting"


Expected = dict[str, tuple[str | None, str]]


async def submitted_to_an_idle_workspace(t: Tasks) -> Expected:
    a = await t.submit()
    return {"heads": (a, "runnable")}


async def submitted_behind_the_head(t: Tasks) -> Expected:
    a = await t.submit()
    await t.submit()
    return {"heads": (a, "runnable")}


async def claimed(t: Tasks) -> Expected:
    a = await t.submit()
    await t.submit()
    await t.claim()
    return {"heads": (a, "running")}


async def succeeded(t: Tasks) -> Expected:
    await t.submit()
    b = await t.submit()
    (a,) = await t.claim()
    await t.end((a, SUCCEEDED))
    return {"heads": (b, "runnable")}


async def succeeded_as_the_last_task(t: Tasks) -> Expected:
    await t.submit()
    (a,) = await t.claim()
    await t.end((a, SUCCEEDED))
    return {"heads": (None, "none")}


async def failed_awaiting_its_retry(t: Tasks) -> Expected:
    await t.submit()
    await t.submit()
    (a,) = await t.claim()
    await t.end((a, RETRY_LATER))
    return {"heads": (a.task_id, "waiting")}


async def failed_then_claimed_for_its_retry(t: Tasks) -> Expected:
    await t.submit()
    await t.submit()
    (a,) = await t.claim()
    await t.end((a, RETRY_NOW))
    (again,) = await t.claim()
    assert (again.task_id, again.attempt) == (a.task_id, 2)
    return {"heads": (a.task_id, "running")}


async def dead(t: Tasks) -> Expected:
    await t.submit()
    b = await t.submit()
    (a,) = await t.claim()
    await t.end((a, DEAD))
    return {"heads": (b, "runnable")}


async def canceled_while_running(t: Tasks) -> Expected:
    await t.submit()
    b = await t.submit()
    (a,) = await t.claim()
    await t.cancel(a.task_id)  # only asks: the run ends it
    await t.end((a, CANCELED))
    return {"heads": (b, "runnable")}


async def the_pending_head_canceled_by_the_api(t: Tasks) -> Expected:
    a = await t.submit()
    b = await t.submit()
    await t.cancel(a)
    return {"heads": (b, "runnable")}


async def a_task_behind_the_head_canceled_by_the_api(t: Tasks) -> Expected:
    a = await t.submit()
    b = await t.submit()
    await t.cancel(b)
    return {"heads": (a, "runnable")}


async def the_head_awaiting_its_retry_canceled_by_the_api(t: Tasks) -> Expected:
    await t.submit()
    b = await t.submit()
    (a,) = await t.claim()
    await t.end((a, RETRY_LATER))
    await t.cancel(a.task_id)
    return {"heads": (b, "runnable")}


async def released_on_shutdown(t: Tasks) -> Expected:
    await t.submit()
    await t.submit()
    (a,) = await t.claim()
    await t.release(a)
    return {"heads": (a.task_id, "runnable")}


async def reaped_for_a_retry(t: Tasks) -> Expected:
    await t.submit()
    await t.submit()
    (a,) = await t.claim(lease=0.05)
    await asyncio.sleep(0.2)
    await t.reap(RETRY_LATER)
    return {"heads": (a.task_id, "waiting")}


async def reaped_out_of_attempts(t: Tasks) -> Expected:
    await t.submit()
    b = await t.submit()
    await t.claim(lease=0.05)
    await asyncio.sleep(0.2)
    await t.reap(DEAD)
    return {"heads": (b, "runnable")}


async def claimed_and_ended_together_across_workspaces(t: Tasks) -> Expected:
    await t.submit("heads")
    b = await t.submit("heads")
    await t.submit("heads-2")
    d = await t.submit("heads-2")
    first, second = await t.claim()
    await t.end((first, SUCCEEDED), (second, DEAD))
    return {"heads": (b, "runnable"), "heads-2": (d, "runnable")}


TRANSITIONS: list[Callable[[Tasks], Awaitable[Expected]]] = [
    submitted_to_an_idle_workspace,
    submitted_behind_the_head,
    claimed,
    succeeded,
    succeeded_as_the_last_task,
    failed_awaiting_its_retry,
    failed_then_claimed_for_its_retry,
    dead,
    canceled_while_running,
    the_pending_head_canceled_by_the_api,
    a_task_behind_the_head_canceled_by_the_api,
    the_head_awaiting_its_retry_canceled_by_the_api,
    released_on_shutdown,
    reaped_for_a_retry,
    reaped_out_of_attempts,
    claimed_and_ended_together_across_workspaces,
]


@pytest.fixture
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(DatabaseConfig(dsn=database, pool_size=3))
    await add_workspaces(engine, ["heads", "heads-2"])
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.mark.parametrize("transition", TRANSITIONS, ids=lambda transition: transition.__name__)
async def test_the_head_follows_every_transition(
    engine: AsyncEngine, transition: Callable[[Tasks], Awaitable[Expected]]
) -> None:
    tasks = Tasks(engine)
    expected = await transition(tasks)
    heads = await tasks.heads()
    assert {wsid: heads[wsid] for wsid in expected} == expected


async def test_fsck_reports_a_wrong_head_and_repairs_it(engine: AsyncEngine, tmp_path: Path) -> None:
    tasks = Tasks(engine)
    a = await tasks.submit()
    await tasks.submit()
    (running,) = await tasks.claim()
    b = await tasks.submit("heads-2")
    async with engine.begin() as conn:  # as a data-only restore with triggers off could leave them
        await conn.execute(sa.text("UPDATE wvs.workspaces SET head_run_at = now() WHERE wsid = 'heads'"))
        await conn.execute(sa.text("UPDATE wvs.workspaces SET head_task_id = NULL WHERE wsid = 'heads-2'"))
    VolumeLayout(tmp_path).ensure_area()  # a volume with no workspace trees: the heads are what matters here
    fsck = default_fsck(engine, tmp_path)

    report = await fsck.run("heads")
    assert report.skipped == ["heads"], "busy: its trees are not checked, but its head is"
    assert [(f.wsid, f.kind, f.repair, f.fixed) for f in report.findings] == [
        ("heads", "queue_head_wrong", "fix", False)
    ]
    assert a in report.findings[0].detail and "running" in report.findings[0].detail
    assert await tasks.runs.claim(LEASE, 5) == [], "a running workspace's head, though marked runnable, is not claimed"

    report = await fsck.run(fix=True)
    wrong = [(f.wsid, f.kind, f.fixed) for f in report.findings if f.kind == "queue_head_wrong"]
    assert wrong == [("heads", "queue_head_wrong", True), ("heads-2", "queue_head_wrong", True)]
    await tasks.check()
    assert [task.task_id for task in await tasks.claim()] == [b]
    assert running.task_id == a
