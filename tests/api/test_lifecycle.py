"""Workspace lifecycle rules through HTTP: retry-init only from INIT_FAILED, disable, and 410 afterwards."""

from __future__ import annotations

from tests.helpers import key


async def init_failed(api, wsid: str) -> str:  # type: ignore[no-untyped-def]
    """A workspace in INIT_FAILED (its init task canceled before any scheduler ran it)."""
    created = (await api.post("/v1/workspaces", json={"wsid": wsid, "owner": "o"}, headers=key())).json()
    assert (await api.post(f"/v1/tasks/{created['init_task_id']}:cancel")).json()["status"] == "CANCELED"
    return str(created["init_task_id"])


async def test_retry_init_only_from_init_failed(api) -> None:
    await api.post("/v1/workspaces", json={"wsid": "provisioning", "owner": "o"}, headers=key())
    early = await api.post("/v1/workspaces/provisioning/retry-init", headers=key())
    assert early.status_code == 412 and early.json()["error"]["code"] == "WVS_PRECONDITION_FAILED"

    await init_failed(api, "failed-init")
    headers = key()
    retried = await api.post("/v1/workspaces/failed-init/retry-init", headers=headers)
    assert retried.status_code == 202
    assert retried.json()["status"] == "PENDING"
    assert (await api.get("/v1/workspaces/failed-init")).json()["state"] == "PROVISIONING"
    replay = await api.post("/v1/workspaces/failed-init/retry-init", headers=headers)
    assert replay.status_code == 202 and replay.json() == retried.json()
    task = (await api.get(f"/v1/tasks/{retried.json()['task_id']}")).json()
    assert task["op"] == "init_workspace" and task["status"] == "PENDING"
    missing_key = await api.post("/v1/workspaces/failed-init/retry-init")
    assert missing_key.status_code == 400
    extra = await api.post("/v1/workspaces/failed-init/retry-init", json={"force": True}, headers=key())
    assert extra.status_code == 400


async def test_disable_is_refused_while_busy_then_everything_but_reads_is_gone(api) -> None:
    created = (await api.post("/v1/workspaces", json={"wsid": "to-disable", "owner": "o"}, headers=key())).json()
    busy = await api.delete("/v1/workspaces/to-disable")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "WVS_CONFLICT_LOCKED"
    await api.post(f"/v1/tasks/{created['init_task_id']}:cancel")

    disabled = await api.delete("/v1/workspaces/to-disable")
    assert disabled.status_code == 200
    assert disabled.json()["state"] == "DISABLED" and disabled.json()["wsid"] == "to-disable"
    assert (await api.delete("/v1/workspaces/to-disable")).status_code == 200

    for path in ("", "/snapshots", "/current", "/audit"):
        assert (await api.get(f"/v1/workspaces/to-disable{path}")).status_code == 200, path
    assert (await api.get("/v1/tasks", params={"wsid": "to-disable"})).status_code == 200
    assert (await api.get("/v1/workspaces/to-disable")).json()["state"] == "DISABLED"

    some_id = "01a21e96-ed6a-7531-a909-a04f53b8d655"
    writes = [
        api.post("/v1/workspaces/to-disable/snapshots", json={}, headers=key()),
        api.post("/v1/workspaces/to-disable/current:set", json={"snapshot_id": some_id}, headers=key()),
        api.delete(f"/v1/workspaces/to-disable/snapshots/{some_id}", headers=key()),
        api.post("/v1/workspaces/to-disable/retry-init", headers=key()),
    ]
    for write in writes:
        response = await write
        assert response.status_code == 410, response.text
        assert response.json()["error"]["code"] == "WVS_GONE"


async def test_audit_trail_of_a_workspace(api) -> None:
    task_id = await init_failed(api, "audited-ws")
    await api.delete("/v1/workspaces/audited-ws", headers={"X-Request-Id": "req-disable"})
    page = (await api.get("/v1/workspaces/audited-ws/audit", params={"limit": 2})).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = (await api.get("/v1/workspaces/audited-ws/audit", params={"cursor": page["next_cursor"]})).json()
    events = page["items"] + rest["items"]
    actions = [event["action"] for event in reversed(events)]
    assert actions == [
        "workspace.created",
        "task.created",
        "task.canceled",
        "workspace.init_failed",
        "workspace.disabled",
    ]
    newest = events[0]
    assert newest["request_id"] == "req-disable"
    assert newest["payload"] == {"before": {"state": "INIT_FAILED"}, "after": {"state": "DISABLED"}}
    assert newest["actor"]["type"] == "api"
    assert any(event["task_id"] == task_id for event in events)
