"""Per-workspace FIFO under concurrency: 3 schedulers, 20 workspaces, several tasks each."""

from __future__ import annotations

import asyncio
import itertools

import attrs
import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import make_config
from tests.helpers import create_workspace, key, wait_task
from wvs_core.db.engine import async_dsn

WORKSPACES = 20
SNAPSHOTS_EACH = 4
SCHEDULERS = 3


async def task_rows(database: str) -> list[sa.Row]:
    engine = create_async_engine(async_dsn(database))
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                sa.text(
                    "SELECT t.task_id, t.wsid, t.status, t.attempt, t.created_at, t.started_at, t.ended_at, "
                    "  (SELECT a.actor->>'worker_id' FROM wvs.audit a "
                    "   WHERE a.task_id = t.task_id AND a.action = 'task.started' LIMIT 1) AS worker "
                    "FROM wvs.tasks t ORDER BY t.wsid, t.created_at, t.task_id"
                )
            )
            return list(result)
    finally:
        await engine.dispose()


async def test_one_task_at_a_time_per_workspace_in_creation_order(database, mount, start_service) -> None:
    base = make_config(database, mount, plugins={"quiesce": "none"}, worker={"concurrency": 4})
    executor = await start_service(base, planes=("executor",))
    worker_config = attrs.evolve(base, worker=attrs.evolve(base.worker, executor_addrs=[executor.executor_addr]))
    for _ in range(SCHEDULERS):
        await start_service(worker_config, planes=("worker",))
    api = await start_service(base, planes=("api",))

    async with httpx.AsyncClient(base_url=api.api_url or "", timeout=60) as client:
        wsids = [f"fifo-{n:02d}" for n in range(WORKSPACES)]
        await asyncio.gather(*(create_workspace(client, wsid) for wsid in wsids))

        async def snapshot(wsid: str) -> str:
            response = await client.post(f"/v1/workspaces/{wsid}/snapshots", json={}, headers=key())
            assert response.status_code == 202, response.text
            return str(response.json()["task_id"])

        task_ids = await asyncio.gather(*(snapshot(w) for w in wsids for _ in range(SNAPSHOTS_EACH)))
        for task_id in task_ids:
            assert (await wait_task(client, task_id, timeout=120))["status"] == "SUCCEEDED"

    rows = await task_rows(database)
    assert len(rows) == WORKSPACES * (1 + SNAPSHOTS_EACH)
    assert [row for row in rows if row.status != "SUCCEEDED" or row.attempt != 1] == []
    for wsid, group in itertools.groupby(rows, key=lambda row: row.wsid):
        tasks = list(group)  # creation order
        for earlier, later in itertools.pairwise(tasks):
            assert earlier.ended_at <= later.started_at, (
                f"{wsid}: {later.task_id} started before {earlier.task_id} ended"
            )
    overlapping = sum(
        1
        for a, b in itertools.combinations(rows, 2)
        if a.wsid != b.wsid and a.started_at < b.ended_at and b.started_at < a.ended_at
    )
    assert overlapping > 0, "different workspaces never ran in parallel"
    assert len({row.worker for row in rows}) == SCHEDULERS, "every scheduler should have claimed work"
