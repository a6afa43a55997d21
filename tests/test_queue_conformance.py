"""The shipped ``postgres`` queue through the queue conformance suite, and what its claim costs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.queue_conformance import QueueConformance, add_workspaces
from wvs_core.config import DatabaseConfig, PluginsConfig
from wvs_core.db.engine import create_engine
from wvs_core.db.runs import Ending, TaskRuns
from wvs_core.db.store import Store, Submission, TaskSpec
from wvs_core.ids import uuid7
from wvs_core.models import TaskOutcome, TaskStatus
from wvs_core.plugins import PluginRegistry
from wvs_core.queue import TaskQueue
from wvs_core.scope import EVERYTHING
from wvs_pgqueue import queries
from wvs_pgqueue.queue import PostgresQueue

PER_WORKSPACE = 100  # PENDING tasks queued behind each busy workspace's RUNNING one
IDLE = 10  # workspaces whose head can run


class TestPostgresQueue(QueueConformance):
    def make_queue(self, engine: AsyncEngine) -> TaskQueue:
        return PostgresQueue(engine, {})


@pytest.fixture
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(DatabaseConfig(dsn=database, pool_size=2))
    try:
        yield engine
    finally:
        await engine.dispose()


async def add_busy_workspaces(conn: AsyncConnection, first: int, last: int) -> None:
    """Workspaces ``busy-<first>`` … ``busy-<last>``, each running a task with PER_WORKSPACE queued behind it.
    Seeded with the heads trigger off (as a bulk load would), then each head computed once."""
    await conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
    await conn.execute(
        sa.text(
            "INSERT INTO wvs.workspaces (wsid, root_path, owner, state) "
            "SELECT 'busy-' || w, '/busy/' || w, 'o', 'ACTIVE' "
            "FROM generate_series(CAST(:first AS int), CAST(:last AS int)) w"
        ),
        {"first": first, "last": last},
    )
    await conn.execute(
        sa.text(
            "INSERT INTO wvs.tasks (task_id, wsid, op, status, created_at, next_run_at) "
            "SELECT format('busy-%s-%s', w, k), 'busy-' || w, 'op', CASE k WHEN 0 THEN 'RUNNING' ELSE 'PENDING' END, "
            "       timestamptz '2026-01-01Z' + make_interval(secs => k), timestamptz '2026-01-01Z' "
            "FROM generate_series(CAST(:first AS int), CAST(:last AS int)) w, generate_series(0, CAST(:each AS int)) k"
        ),
        {"first": first, "last": last, "each": PER_WORKSPACE},
    )
    await conn.execute(sa.text("SET LOCAL session_replication_role = DEFAULT"))
    await conn.execute(sa.text("SELECT wvs.refresh_workspace_head(wsid) FROM wvs.workspaces WHERE wsid LIKE 'busy-%'"))


async def claim_cost(engine: AsyncEngine) -> tuple[int, list[str]]:
    """Shared buffers (hit + read) the claim of 4 tasks touches, and the tasks it takes; rolled back."""
    async with engine.connect() as conn:
        await conn.execute(sa.text("ANALYZE wvs.workspaces, wvs.tasks"))
        await conn.commit()
        async with conn.begin() as transaction:
            explained = sa.text(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {queries.CLAIM.text}")
            plan: Any = (await conn.execute(explained, {"limit": 4})).scalar_one()
            await transaction.rollback()
        async with conn.begin() as transaction:
            claimed = list((await conn.execute(queries.CLAIM, {"limit": 4})).scalars())
            await transaction.rollback()
    top = plan[0]["Plan"]
    return top["Shared Hit Blocks"] + top["Shared Read Blocks"], claimed


async def test_a_claim_reads_heads_never_the_backlogs_behind_them(engine: AsyncEngine) -> None:
    """20 busy workspaces with 2,000 queued tasks, then 2,000 with 200,000: the claim touches the same few
    buffers (the index of runnable heads, then each head's workspace and task row), not the backlog."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO wvs.workspaces (wsid, root_path, owner, state) "
                "SELECT 'idle-' || w, '/idle/' || w, 'o', 'ACTIVE' FROM generate_series(1, :idle) w"
            ),
            {"idle": IDLE},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO wvs.tasks (task_id, wsid, op, created_at) "
                "SELECT 'idle-' || w, 'idle-' || w, 'op', timestamptz '2026-01-02Z' + make_interval(secs => w) "
                "FROM generate_series(1, :idle) w"
            ),
            {"idle": IDLE},
        )
        await add_busy_workspaces(conn, 1, 20)
    small, claimed = await claim_cost(engine)
    assert claimed == ["idle-1", "idle-2", "idle-3", "idle-4"], "the oldest runnable heads"

    async with engine.begin() as conn:
        await add_busy_workspaces(conn, 21, 2000)
    big, claimed = await claim_cost(engine)
    assert claimed == ["idle-1", "idle-2", "idle-3", "idle-4"]

    assert small <= 40, f"a claim of 4 touched {small} buffers"
    # A hundred times the backlog may deepen the task table's primary key by a level: one page per task taken.
    assert big <= small + 4, f"the claim touched {small} buffers over 2,000 queued tasks, {big} over 200,000"


async def test_a_submit_claim_and_finish_prepare_their_statements_once(engine: AsyncEngine, monkeypatch) -> None:
    """Every statement of the hot path has one text, so asyncpg's statement cache (through SQLAlchemy's
    dialect) serves it from the second time on: no Parse round trip per claim."""
    prepared: list[tuple[int, str]] = []  # (connection, statement text)
    prepare = asyncpg.connection.Connection.prepare

    async def counted(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        prepared.append((id(self), query))
        return await prepare(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "prepare", counted)
    await add_workspaces(engine, ["prepared"])
    queue = PostgresQueue(engine, {})
    store, runs = Store(engine, queue), TaskRuns(queue, PluginRegistry.load(PluginsConfig()), "prepared")
    for _cycle in range(3):
        submission = Submission(uuid7(), "-", uuid7(), {"type": "test"})
        await store.submit_task("prepared", TaskSpec("op", {}, 5, 300), submission, scope=EVERYTHING)
        (claimed,) = await runs.claim(60, 4)
        await runs.renew([claimed.task.task_id], 60)
        await runs.finish([Ending(claimed.task, TaskOutcome(TaskStatus.SUCCEEDED, result={}))])
    # Whichever pooled connection runs a statement (the wake-up after an accept may take a second one), it
    # prepares it once.
    again = [query for query in set(prepared) if prepared.count(query) > 1]
    assert again == [], f"prepared again on the same connection: {again}"
