"""Several executors: a workspace sticks to one, and fails over to another when that one is down."""

from __future__ import annotations

import attrs
import httpx

from tests.conftest import make_config
from tests.helpers import create_workspace, key, snapshot_is_complete, wait_task
from wvs_core.config import WorkerConfig
from wvs_core.scheduler import Scheduler


async def test_routing_is_stable_and_spreads_workspaces() -> None:
    """Sync tests of this suite may leave no event loop behind (asyncio.run), and the gRPC channels need one."""
    addrs = ["10.0.0.1:7070", "10.0.0.2:7070", "10.0.0.3:7070"]
    config = WorkerConfig(executor_addrs=addrs)
    first = Scheduler(config, None, None)  # type: ignore[arg-type]
    again = Scheduler(WorkerConfig(executor_addrs=list(reversed(addrs))), None, None)  # type: ignore[arg-type]
    orders = {wsid: [c.addr for c in first.executors_for(wsid)] for wsid in (f"ws-{n}" for n in range(60))}
    assert all(sorted(order) == sorted(addrs) for order in orders.values())
    assert all([c.addr for c in again.executors_for(wsid)] == order for wsid, order in orders.items())
    assert {order[0] for order in orders.values()} == set(addrs), "every executor gets workspaces"


async def test_fails_over_when_the_workspaces_executor_is_down(database, mount, start_service) -> None:
    base = make_config(database, mount, plugins={"quiesce": "none"})
    one = await start_service(base, planes=("executor",))
    two = await start_service(base, planes=("executor",))
    addrs = [one.executor_addr, two.executor_addr]
    worker = attrs.evolve(base.worker, executor_addrs=addrs)
    api = await start_service(attrs.evolve(base, worker=worker), planes=("api", "worker"))
    probe = Scheduler(worker, None, None)  # type: ignore[arg-type]
    wsid = next(f"fo-{n}" for n in range(100) if probe.executors_for(f"fo-{n}")[0].addr == one.executor_addr)
    async with httpx.AsyncClient(base_url=api.api_url or "") as client:
        await create_workspace(client, wsid)
        await one.stop()  # the workspace's own executor goes down
        accepted = (await client.post(f"/v1/workspaces/{wsid}/snapshots", json={}, headers=key())).json()
        task = await wait_task(client, accepted["task_id"], timeout=20)
        audit = (await client.get(f"/v1/workspaces/{wsid}/audit", params={"limit": 100})).json()["items"]
    failures = [event["payload"] for event in audit if event["action"] == "task.failed"]
    assert task["status"] == "SUCCEEDED" and task["attempt"] == 1, failures
    assert snapshot_is_complete(mount, wsid, accepted["snapshot_id"])
