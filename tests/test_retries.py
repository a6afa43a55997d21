"""Retries with the SPEC backoff, DEAD after max_attempts, and init_workspace DEAD → INIT_FAILED."""

from __future__ import annotations

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import make_config
from tests.helpers import create_workspace, key, snapshot_is_complete, wait_task
from tests.plugins.failing_ops import BrokenInit, FlakySnapshot, OpOverrides
from wvs_core.db.engine import async_dsn
from wvs_core.scheduler.judging import backoff


async def audit_times(database: str, task_id: str) -> list[tuple[str, float]]:
    engine = create_async_engine(async_dsn(database))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT action, extract(epoch FROM ts) FROM wvs.audit WHERE task_id = :t ORDER BY event_id"),
                {"t": task_id},
            )
            return [(action, float(ts)) for action, ts in rows]
    finally:
        await engine.dispose()


def test_backoff_formula() -> None:
    assert [backoff(n, 5, 300) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]


async def test_failures_back_off_then_go_dead(database, mount, start_service) -> None:
    config = make_config(database, mount, worker={"retry_base": "100ms"}, plugins={"quiesce": "none"})
    flaky = FlakySnapshot(failures=99)
    service = await start_service(config, extra_plugins=(OpOverrides(flaky),))
    async with httpx.AsyncClient(base_url=service.api_url or "") as client:
        await create_workspace(client, "always-fails")
        response = await client.post("/v1/workspaces/always-fails/snapshots", json={}, headers=key())
        task_id = response.json()["task_id"]
        first = await wait_task(client, task_id, until={"FAILED", "DEAD"})
        assert first["status"] == "FAILED" and first["attempt"] == 1
        assert first["error"]["reason"] == "INJECTED" and first["error"]["code"] == "WVS_EXECUTOR_ERROR"
        task = await wait_task(client, task_id, timeout=30)
    assert task["status"] == "DEAD"
    assert task["attempt"] == task["max_attempts"] == 5
    assert flaky.runs[task_id] == 5

    events = await audit_times(database, task_id)
    actions = [action for action, _ in events]
    assert actions == ["task.created"] + ["task.started", "task.failed"] * 4 + ["task.started", "task.dead"]
    failed_at = [ts for action, ts in events if action == "task.failed"]
    restarted_at = [ts for action, ts in events if action == "task.started"][1:]
    for attempt, (failed, restarted) in enumerate(zip(failed_at, restarted_at, strict=True), start=1):
        waited = restarted - failed
        assert waited >= backoff(attempt, 0.1, 300) - 0.01, (attempt, waited)
        assert waited < backoff(attempt, 0.1, 300) + 1.5, (attempt, waited)


async def test_a_retry_that_succeeds_finishes_the_job(database, mount, start_service) -> None:
    config = make_config(database, mount, worker={"retry_base": "50ms"}, plugins={"quiesce": "none"})
    flaky = FlakySnapshot(failures=2)
    service = await start_service(config, extra_plugins=(OpOverrides(flaky),))
    async with httpx.AsyncClient(base_url=service.api_url or "") as client:
        await create_workspace(client, "third-time")
        accepted = (await client.post("/v1/workspaces/third-time/snapshots", json={}, headers=key())).json()
        task = await wait_task(client, accepted["task_id"])
        assert task["status"] == "SUCCEEDED" and task["attempt"] == 3
        assert task["error"] is None
        snapshots = (await client.get("/v1/workspaces/third-time/snapshots")).json()["items"]
        assert [s["snapshot_id"] for s in snapshots] == [accepted["snapshot_id"]]
    assert snapshot_is_complete(mount, "third-time", accepted["snapshot_id"])


async def test_init_going_dead_marks_the_workspace_init_failed(database, mount, start_service) -> None:
    config = make_config(database, mount, worker={"retry_base": "50ms", "max_attempts": 2})
    service = await start_service(config, extra_plugins=(OpOverrides(BrokenInit()),))
    async with httpx.AsyncClient(base_url=service.api_url or "") as client:
        response = await client.post("/v1/workspaces", json={"wsid": "never-born", "owner": "a"}, headers=key())
        task = await wait_task(client, response.json()["init_task_id"])
        assert task["status"] == "DEAD" and task["attempt"] == 2
        workspace = (await client.get("/v1/workspaces/never-born")).json()
    assert workspace["state"] == "INIT_FAILED"
