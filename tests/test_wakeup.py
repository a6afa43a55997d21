"""LISTEN/NOTIFY: an idle scheduler picks new work up at once, not at its next poll."""

from __future__ import annotations

import httpx

from tests.conftest import make_config
from tests.helpers import key, wait_task


async def test_idle_scheduler_wakes_on_notify(database, mount, start_service) -> None:
    # Polling every 60 s: only a wake-up can make these tasks start within seconds.
    config = make_config(database, mount, worker={"poll_interval": "60s"}, plugins={"quiesce": "none"})
    service = await start_service(config)
    async with httpx.AsyncClient(base_url=service.api_url or "") as client:
        for n in range(3):
            response = await client.post("/v1/workspaces", json={"wsid": f"wake-{n}", "owner": "o"}, headers=key())
            task = await wait_task(client, response.json()["init_task_id"], timeout=10)
            assert task["status"] == "SUCCEEDED"
        # A snapshot queued behind nothing, on a workspace that just became ACTIVE, also starts at once.
        accepted = (await client.post("/v1/workspaces/wake-0/snapshots", json={}, headers=key())).json()
        assert (await wait_task(client, accepted["task_id"], timeout=10))["status"] == "SUCCEEDED"
