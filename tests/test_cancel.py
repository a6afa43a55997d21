"""Cancel: a PENDING task at once, a RUNNING one at its next safe point with nothing half-made left."""

from __future__ import annotations

import json

import httpx

from tests.conftest import make_config
from tests.helpers import (
    assert_fsck_clean,
    create_workspace,
    in_flight,
    key,
    snapshots_dir,
    wait_task,
)


async def test_cancel_running_and_pending(database, mount, start_service) -> None:
    # The agent never answers: the snapshot waits for FROZEN (a safe point) for up to 20 s.
    config = make_config(database, mount, executor={"quiesce_timeout": "20s"})
    service = await start_service(config)
    async with httpx.AsyncClient(base_url=service.api_url or "") as client:
        await create_workspace(client, "cancel-me")
        root = mount / "cancel-me"
        running = (await client.post("/v1/workspaces/cancel-me/snapshots", json={}, headers=key())).json()
        queued = (await client.post("/v1/workspaces/cancel-me/snapshots", json={}, headers=key())).json()
        await wait_task(client, running["task_id"], until={"RUNNING"})

        pending = await client.post(f"/v1/tasks/{queued['task_id']}:cancel")
        assert pending.status_code == 200
        assert pending.json() == {"task_id": queued["task_id"], "status": "CANCELED", "cancel_requested": True}

        requested = await client.post(f"/v1/tasks/{running['task_id']}:cancel")
        assert requested.status_code == 200
        assert requested.json()["status"] == "RUNNING" and requested.json()["cancel_requested"] is True
        task = await wait_task(client, running["task_id"], timeout=10)
        assert task["status"] == "CANCELED"
        assert task["error"]["reason"] == "CANCELED"

        again = await client.post(f"/v1/tasks/{running['task_id']}:cancel")
        assert again.status_code == 409 and again.json()["error"]["code"] == "WVS_CONFLICT_LOCKED"
        never_ran = (await client.get(f"/v1/tasks/{queued['task_id']}")).json()
        assert never_ran["status"] == "CANCELED" and never_ran["attempt"] == 0
        assert (await client.get("/v1/workspaces/cancel-me/snapshots")).json()["items"] == []

        # The workspace is free again: the next task runs.
        from wvs_controlfile import QuiesceResponder

        with QuiesceResponder(root).running_in_thread():
            after = (await client.post("/v1/workspaces/cancel-me/snapshots", json={}, headers=key())).json()
            assert (await wait_task(client, after["task_id"]))["status"] == "SUCCEEDED"
    snapshots = snapshots_dir(mount, "cancel-me")
    assert sorted(p.name for p in snapshots.iterdir()) == [after["snapshot_id"], after["snapshot_id"] + ".json"]
    assert in_flight(mount, "cancel-me") == [], "no half-made tree"
    assert json.loads((root / ".wvs" / "control.json").read_text())["state"] == "RUNNING"
    await assert_fsck_clean(database, mount)


async def test_cancel_of_a_pending_init_leaves_the_workspace_init_failed(database, tmp_path, start_service) -> None:
    service = await start_service(make_config(database, tmp_path), planes=("api",))
    async with httpx.AsyncClient(base_url=service.api_url or "") as client:
        created = (await client.post("/v1/workspaces", json={"wsid": "stop-init", "owner": "o"}, headers=key())).json()
        canceled = await client.post(f"/v1/tasks/{created['init_task_id']}:cancel")
        assert canceled.json()["status"] == "CANCELED"
        workspace = (await client.get("/v1/workspaces/stop-init")).json()
        assert workspace["state"] == "INIT_FAILED"
        retry = await client.post("/v1/workspaces/stop-init/retry-init", headers=key())
        assert retry.status_code == 202
