"""The task engine under faults, one at a time: lease expiry after a scheduler's kill -9, timeouts, and
graceful shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import make_config
from tests.helpers import (
    assert_fsck_clean,
    create_workspace,
    free_port,
    in_flight,
    key,
    snapshot_is_complete,
    snapshots_dir,
    wait_task,
)
from tests.plugins.failing_ops import OpOverrides, SlowClaim, SlowSnapshot
from wvs_controlfile import QuiesceResponder
from wvs_core.db.engine import async_dsn

BIN = Path(sys.executable).parent


async def audit(database: str, task_id: str) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    engine = create_async_engine(async_dsn(database))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT action, payload FROM wvs.audit WHERE task_id = :t ORDER BY event_id"), {"t": task_id}
            )
            return [(row.action, row.payload) for row in rows]
    finally:
        await engine.dispose()


async def test_a_killed_schedulers_task_is_reaped_and_run_again(database, mount, start_service, tmp_path) -> None:
    grpc_port = free_port()
    base = make_config(
        database,
        mount,
        executor={"grpc_addr": f"127.0.0.1:{grpc_port}", "quiesce_timeout": "20s"},
        worker={"lease": "1s", "executor_addrs": [f"127.0.0.1:{grpc_port}"], "retry_base": "100ms"},
    )
    service = await start_service(base, planes=("api", "executor"))
    config_file = tmp_path / "worker.toml"
    config_file.write_text(
        f'[database]\ndsn = "{database}"\n[worker]\nlease = "1s"\nexecutor_addrs = ["127.0.0.1:{grpc_port}"]\n'
        f'metrics_addr = "127.0.0.1:{free_port()}"\n'
    )
    env = {**os.environ, "WVS_CONFIG": str(config_file)}
    doomed = await asyncio.create_subprocess_exec(
        str(BIN / "wvs"), "worker", env=env, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        async with httpx.AsyncClient(base_url=service.api_url or "") as client:
            await create_workspace(client, "orphaned")
            root = mount / "orphaned"
            accepted = (await client.post("/v1/workspaces/orphaned/snapshots", json={}, headers=key())).json()
            # No agent yet: the op waits for FROZEN inside the doomed scheduler's call.
            assert (await wait_task(client, accepted["task_id"], until={"RUNNING"}))["attempt"] == 1
            doomed.send_signal(signal.SIGKILL)
            await doomed.wait()
            await start_service(base, planes=("worker",))  # a healthy scheduler takes over once the lease expires
            with QuiesceResponder(root).running_in_thread():
                task = await wait_task(client, accepted["task_id"], timeout=30)
    finally:
        if doomed.returncode is None:
            doomed.kill()
            await doomed.wait()
    failures = [
        payload["error"]["reason"]
        for action, payload in await audit(database, task["task_id"])
        if action == "task.failed"
    ]
    assert failures == ["LEASE_EXPIRED"]
    assert task["status"] == "SUCCEEDED" and task["attempt"] == 2
    assert snapshot_is_complete(mount, "orphaned", accepted["snapshot_id"])
    await assert_fsck_clean(database, mount)


async def test_a_run_past_its_timeout_fails_with_executor_timeout(database, mount, start_service) -> None:
    slow = SlowSnapshot(seconds=30)
    config = make_config(
        database,
        mount,
        executor={"task_timeout": "2s", "quiesce_timeout": "1s"},
        worker={"retry_base": "60s"},
        plugins={"quiesce": "none"},
    )
    service = await start_service(config, extra_plugins=(OpOverrides(slow),))
    async with httpx.AsyncClient(base_url=service.api_url or "") as client:
        await create_workspace(client, "too-slow")
        accepted = (await client.post("/v1/workspaces/too-slow/snapshots", json={}, headers=key())).json()
        task = await wait_task(client, accepted["task_id"], until={"FAILED", "DEAD"}, timeout=15)
    assert task["status"] == "FAILED", "a timeout is retried per the backoff"
    assert task["error"]["code"] == "WVS_EXECUTOR_TIMEOUT" and task["error"]["reason"] == "EXECUTOR_TIMEOUT"
    assert task["timeout_seconds"] == 2
    elapsed = (datetime.fromisoformat(task["ended_at"]) - datetime.fromisoformat(task["started_at"])).total_seconds()
    assert 1.5 < elapsed < 6
    assert slow.cut_short == [accepted["task_id"]], "the executor's op was cancelled, not left running"
    assert not list(snapshots_dir(mount, "too-slow").iterdir())
    assert in_flight(mount, "too-slow") == []
    await assert_fsck_clean(database, mount)


async def test_graceful_shutdown_finishes_what_it_can_and_releases_the_rest(database, mount, start_service) -> None:
    quick, stuck = SlowSnapshot(seconds=1), SlowSnapshot(seconds=60)
    base = make_config(database, mount, plugins={"quiesce": "none"}, worker={"shutdown_timeout": "3s"})
    api = await start_service(base, planes=("api",))
    async with httpx.AsyncClient(base_url=api.api_url or "") as client:
        worker = await start_service(base, planes=("worker", "executor"), extra_plugins=(OpOverrides(quick),))
        await create_workspace(client, "finishes")
        finishing = (await client.post("/v1/workspaces/finishes/snapshots", json={}, headers=key())).json()
        await wait_task(client, finishing["task_id"], until={"RUNNING"})
        await worker.stop()  # SIGTERM's path: stop claiming, let the running task finish
        assert (await client.get(f"/v1/tasks/{finishing['task_id']}")).json()["status"] == "SUCCEEDED"
        assert quick.finished == [finishing["task_id"]]

        late = await client.post("/v1/workspaces/finishes/snapshots", json={}, headers=key())
        await asyncio.sleep(0.5)
        assert (await client.get(f"/v1/tasks/{late.json()['task_id']}")).json()["status"] == "PENDING", (
            "a stopped scheduler takes no new work"
        )

        worker = await start_service(base, planes=("worker", "executor"), extra_plugins=(OpOverrides(stuck),))
        await wait_task(client, late.json()["task_id"], until={"RUNNING"})
        await worker.stop()  # cannot finish within 3 s: released
        released = (await client.get(f"/v1/tasks/{late.json()['task_id']}")).json()
    assert released["status"] == "PENDING" and released["attempt"] == 0 and released["worker_id"] is None
    assert stuck.cut_short == [late.json()["task_id"]]
    assert "task.released" in [action for action, _ in await audit(database, late.json()["task_id"])]
    assert in_flight(mount, "finishes") == []
    await assert_fsck_clean(database, mount)


async def test_a_process_running_worker_and_executor_stops_its_executor_last(database, mount, start_service) -> None:
    """Stopping ``wvs up`` (or any process with both planes) while its scheduler is claiming a task: the call
    that follows still finds this process's executor serving, so the task succeeds instead of failing."""
    claim = SlowClaim(seconds=1)
    base = make_config(database, mount, plugins={"quiesce": "none"}, worker={"retry_base": "60s"})
    api = await start_service(base, planes=("api",))
    async with httpx.AsyncClient(base_url=api.api_url or "") as client:
        worker = await start_service(base, planes=("worker", "executor"), extra_plugins=(OpOverrides(claim),))
        await create_workspace(client, "stopping")
        accepted = (await client.post("/v1/workspaces/stopping/snapshots", json={}, headers=key())).json()
        await asyncio.wait_for(claim.claiming.wait(), 10)
        await worker.stop()  # lands while the claim is in flight
        task = (await client.get(f"/v1/tasks/{accepted['task_id']}")).json()
    assert task["status"] == "SUCCEEDED", task
    await assert_fsck_clean(database, mount)


async def test_connections_the_database_dropped_are_replaced(database, mount, start_service) -> None:
    """Pooled connections are not pinged before use: after the server drops them all (a restart, a failover),
    the API answers at most one request per process "retry", the scheduler backs off once, and work flows."""
    config = make_config(database, mount, plugins={"quiesce": "none"}, worker={"idle_backoff": "200ms"})
    service = await start_service(config)
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        await create_workspace(client, "dropped")
        engine = create_async_engine(async_dsn(database))
        try:
            async with engine.connect() as conn:
                cut = await conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
                assert cut.scalar_one() > 0, "the services held connections"
        finally:
            await engine.dispose()
        headers = key()
        answers = []
        for _ in range(3):
            answers.append(await client.post("/v1/workspaces/dropped/snapshots", json={}, headers=headers))
            if answers[-1].status_code == 202:
                break
        assert [answer.status_code for answer in answers][-1] == 202
        assert all(answer.json()["error"]["code"] == "WVS_INTERNAL" for answer in answers[:-1])
        assert len(answers) <= 2, "one request found the dropped connection; the pool then reconnected"
        task = await wait_task(client, answers[-1].json()["task_id"], timeout=20)
    assert task["status"] == "SUCCEEDED" and task["attempt"] == 1
