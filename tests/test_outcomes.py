"""A task's end is recorded in one place (``wvs_core/db/outcomes.py``), whoever ends it: the API's cancel of a
waiting task gets the event shape every end gets, runs the op's rule by the same actor, and counts the
workspace transition that rule makes, as the scheduler's ends do."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY

from tests.conftest import make_config
from tests.helpers import key


def init_failures() -> float:
    labels = {"from": "PROVISIONING", "to": "INIT_FAILED"}
    return REGISTRY.get_sample_value("wvs_workspace_state_transitions_total", labels) or 0.0


async def test_an_api_cancel_is_recorded_like_any_end(database, tmp_path, start_service) -> None:
    service = await start_service(make_config(database, tmp_path), planes=("api",))
    counted = init_failures()
    async with httpx.AsyncClient(base_url=service.api_url or "") as client:
        created = (await client.post("/v1/workspaces", json={"wsid": "end-once", "owner": "o"}, headers=key())).json()
        cancel = f"/v1/tasks/{created['init_task_id']}:cancel"
        assert (await client.post(cancel, headers={"X-Request-Id": "req-cancel"})).json()["status"] == "CANCELED"
        events = (await client.get("/v1/events", params={"wsid": "end-once", "limit": 100})).json()["items"]
    ended, init_failed = events[-2:]
    assert (ended["type"], init_failed["type"]) == ("task.canceled", "workspace.init_failed")
    assert ended["data"] == {
        "op": "init_workspace",
        "before": {"status": "PENDING"},
        "after": {"status": "CANCELED", "attempt": 0, "result": None, "cancel_requested": True},
        "error": None,
    }
    assert ended["request_id"] == "req-cancel"
    assert ended["actor"]["type"] == "api" and init_failed["actor"] == ended["actor"]
    assert init_failures() == counted + 1
