"""``to_json``: what the SDK read, as the JSON WVS sent (what ``wvsctl --json`` prints)."""

from __future__ import annotations

import asyncio

from tests.helpers import create_workspace
from wvs_client import Client, to_json


async def test_a_model_read_from_wvs_is_the_json_wvs_sent(wvs) -> None:
    created = await create_workspace(wvs, "as-json")
    task_id = (await wvs.get("/v1/tasks", params={"wsid": "as-json"})).json()["items"][0]["task_id"]

    def read() -> list[object]:
        with Client(str(wvs.base_url)) as client:
            return [
                client.get_workspace("as-json"),
                client.get_task(task_id),
                client.list_tasks(wsid="as-json"),
                client.list_events(wsid="as-json"),
                client.list_audit("as-json"),
                client.get_retention("as-json"),
            ]

    workspace, task, tasks, events, audit, retention = [to_json(model) for model in await asyncio.to_thread(read)]
    assert workspace == created
    assert task == (await wvs.get(f"/v1/tasks/{task_id}")).json()
    assert tasks == (await wvs.get("/v1/tasks", params={"wsid": "as-json"})).json()
    assert events == (await wvs.get("/v1/events", params={"wsid": "as-json"})).json()
    assert audit == (await wvs.get("/v1/workspaces/as-json/audit")).json()
    assert retention == (await wvs.get("/v1/workspaces/as-json/retention")).json()
