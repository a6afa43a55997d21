"""Every state change is an event (SPEC §14), recorded through one door in the transaction that makes it:
each API, scheduler, reaper, cancel, disable and retry-init path is driven here and the exact sequence of
each workspace is checked, as ``GET /v1/events`` lists it and as a real webhook endpoint receives it
(signatures verified with the ``standardwebhooks`` reference library, in order per workspace)."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import httpx

from tests.conftest import make_config
from tests.helpers import create_workspace, key, wait_task
from tests.plugins.failing_ops import OpOverrides
from tests.webhook_receiver import Receiver
from wvs_controlfile import QuiesceResponder
from wvs_core.config import Config, DatabaseConfig
from wvs_core.db.engine import create_engine
from wvs_core.events import EventType
from wvs_core.models import ExecutionResult
from wvs_core.ops import ExecutionContext, OpFailed
from wvs_core.plugins import PluginRegistry
from wvs_core.scheduler import Scheduler
from wvs_ops.init_workspace import InitWorkspace
from wvs_pgqueue.queue import PostgresQueue

WHSEC = "whsec_" + base64.b64encode(os.urandom(32)).decode()
RAW_SECRET = "a plain string is its own bytes"

CREATED = ["workspace.created", "task.created", "task.started", "task.succeeded", "workspace.active"]
SNAPSHOT = ["task.created", "task.started", "task.succeeded", "snapshot.created"]
ROLLBACK = ["task.created", "task.started", "task.succeeded", "current.changed", "snapshot.created"]
DROP = ["task.created", "task.started", "snapshot.dropped", "task.succeeded"]


def types(events: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [event["type"] for event in events]


class FailsFirstInit(InitWorkspace):
    """init_workspace whose first task of ``ev-fail`` fails every attempt (a retryable failure)."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        if ctx.wsid == "ev-fail" and self.first.setdefault(ctx.wsid, ctx.task_id) == ctx.task_id:
            raise OpFailed("INJECTED", "the first init of ev-fail fails")
        return await super().execute(ctx)


def events_config(database: str, mount: Path, receiver: Receiver) -> Config:
    return make_config(
        database,
        mount,
        worker={"lease": "1s", "max_attempts": 2, "shutdown_timeout": "1s", "retry_base": "50ms"},
        executor={"quiesce_timeout": "20s"},
        events={"poll_interval": "200ms"},
        plugins={
            "settings": {
                "webhook": {
                    "retry_base": "100ms",
                    "endpoints": [
                        {"url": f"{receiver.url}/all", "secret": WHSEC, "name": "all"},
                        {
                            "url": f"{receiver.url}/dead",
                            "secret": RAW_SECRET,
                            "events": ["task.dead", "workspace.tampered"],
                        },
                    ],
                }
            }
        },
    )


async def event_log(client: httpx.AsyncClient, wsid: str | None = None) -> list[dict]:  # type: ignore[type-arg]
    """Every event (of ``wsid``), oldest first, read page by page with ``cursor``."""
    items: list[dict] = []  # type: ignore[type-arg]
    params: dict[str, str | int] = {"limit": 7, **({"wsid": wsid} if wsid else {})}
    while True:
        page = (await client.get("/v1/events", params=params)).json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


async def test_every_path_emits_its_events_in_order_and_a_webhook_gets_them_signed(
    database, mount, start_service
) -> None:
    init = FailsFirstInit()
    with Receiver().running() as receiver:
        config = events_config(database, mount, receiver)
        api = await start_service(config, planes=("api",))
        first_worker = await start_service(config, planes=("worker", "executor"), extra_plugins=(OpOverrides(init),))
        async with httpx.AsyncClient(base_url=api.api_url or "", timeout=30) as client:
            # The API's and the scheduler's paths, success first.
            created = await client.post(
                "/v1/workspaces", json={"wsid": "ev-main", "owner": "o"}, headers={**key(), "X-Request-Id": "req-1"}
            )
            assert (await wait_task(client, created.json()["init_task_id"]))["status"] == "SUCCEEDED"
            root = mount / "ev-main"
            with QuiesceResponder(root).running_in_thread():
                snap_a = (await client.post("/v1/workspaces/ev-main/snapshots", json={}, headers=key())).json()
                await wait_task(client, snap_a["task_id"])
                snap_b = (await client.post("/v1/workspaces/ev-main/snapshots", json={}, headers=key())).json()
                await wait_task(client, snap_b["task_id"])
                body = {"snapshot_id": snap_a["snapshot_id"]}
                rollback = await client.post("/v1/workspaces/ev-main/current:set", json=body, headers=key())
                assert (await wait_task(client, rollback.json()["task_id"]))["status"] == "SUCCEEDED"
                drop = await client.delete(f"/v1/workspaces/ev-main/snapshots/{snap_b['snapshot_id']}", headers=key())
                assert (await wait_task(client, drop.json()["task_id"]))["status"] == "SUCCEEDED"
            # No agent answers now: a snapshot waits for FROZEN; the next one waits behind it, canceled.
            stuck = (await client.post("/v1/workspaces/ev-main/snapshots", json={}, headers=key())).json()
            await wait_task(client, stuck["task_id"], until={"RUNNING"})
            queued = (await client.post("/v1/workspaces/ev-main/snapshots", json={}, headers=key())).json()
            assert (await client.post(f"/v1/tasks/{queued['task_id']}:cancel")).json()["status"] == "CANCELED"

            # Retries, DEAD, INIT_FAILED, then retry-init.
            failing = (
                await client.post("/v1/workspaces", json={"wsid": "ev-fail", "owner": "o"}, headers=key())
            ).json()
            assert (await wait_task(client, failing["init_task_id"]))["status"] == "DEAD"
            retried = await client.post("/v1/workspaces/ev-fail/retry-init", headers=key())
            assert (await wait_task(client, retried.json()["task_id"]))["status"] == "SUCCEEDED"

            # An agent that plants a link where `current` belongs.
            await create_workspace(client, "ev-tamper")
            (mount / "ev-tamper" / "current").unlink()
            (mount / "ev-tamper" / "current").symlink_to("/etc")
            tampered = (await client.post("/v1/workspaces/ev-tamper/snapshots", json={}, headers=key())).json()
            assert (await wait_task(client, tampered["task_id"]))["error"]["reason"] == "WORKSPACE_TAMPERED"

            # A graceful shutdown releases the stuck snapshot; a scheduler that dies after claiming it is reaped.
            await first_worker.stop()
            assert (await client.get(f"/v1/tasks/{stuck['task_id']}")).json()["status"] == "PENDING"
            registry = PluginRegistry.load(config.plugins)
            engine = create_engine(DatabaseConfig(dsn=database, pool_size=2))
            try:
                ghost = Scheduler(config.worker, registry, PostgresQueue(engine, {}), worker_id="ghost")
                claimed = await ghost.runs.claim(0.3, 1)
                assert [one.task.task_id for one in claimed] == [stuck["task_id"]]
                for executor in ghost.executors:
                    await executor.close()
            finally:
                await engine.dispose()
            await start_service(config, planes=("worker", "executor"), extra_plugins=(OpOverrides(init),))
            for _ in range(300):  # the ghost's lease expires, the new scheduler reaps and claims again
                rerun = (await client.get(f"/v1/tasks/{stuck['task_id']}")).json()
                if rerun["status"] == "RUNNING" and rerun["attempt"] == 2:
                    break
                await asyncio.sleep(0.05)
            assert rerun["status"] == "RUNNING" and rerun["attempt"] == 2, rerun
            assert (await client.post(f"/v1/tasks/{stuck['task_id']}:cancel")).json()["cancel_requested"]
            assert (await wait_task(client, stuck["task_id"]))["status"] == "CANCELED"
            assert (await client.delete("/v1/workspaces/ev-main")).json()["state"] == "DISABLED"

            logs = {wsid: await event_log(client, wsid) for wsid in ("ev-main", "ev-fail", "ev-tamper")}
            everything = await event_log(client)

            assert types(logs["ev-main"]) == [
                *CREATED,
                *SNAPSHOT,
                *SNAPSHOT,
                *ROLLBACK,
                *DROP,
                *("task.created", "task.started"),  # the stuck snapshot...
                *("task.created", "task.canceled"),  # ... and the one canceled while PENDING
                "task.released",  # graceful shutdown
                *("task.started", "task.failed"),  # claimed by a scheduler that died: reaped
                *("task.started", "task.canceled"),  # canceled at its safe point
                "workspace.disabled",
            ]
            assert types(logs["ev-fail"]) == [
                *("workspace.created", "task.created"),
                *("task.started", "task.failed", "task.started", "task.dead", "workspace.init_failed"),
                *("workspace.provisioning", "task.created", "task.started", "task.succeeded", "workspace.active"),
            ]
            assert types(logs["ev-tamper"]) == [
                *CREATED,
                "task.created",
                "task.started",
                "task.dead",
                "workspace.tampered",
            ]
            assert {e["event_id"] for log in logs.values() for e in log} == {e["event_id"] for e in everything}
            assert {e["type"] for e in everything} == set(EventType), "every event type was driven"
            ids = [e["event_id"] for e in everything]
            assert ids == sorted(ids) and len(set(ids)) == len(ids)

            main = logs["ev-main"]
            assert main[0]["request_id"] == main[1]["request_id"] == "req-1"
            assert main[0]["actor"]["type"] == "api" and main[2]["actor"]["type"] == "scheduler"
            assert main[1]["task_id"] == created.json()["init_task_id"] and main[1]["data"]["op"] == "init_workspace"
            assert main[-1]["data"] == {"before": {"state": "ACTIVE"}, "after": {"state": "DISABLED"}}
            reaped = next(e for e in main if e["type"] == "task.failed")
            assert reaped["data"]["error"]["reason"] == "LEASE_EXPIRED"
            changed = next(e for e in main if e["type"] == "current.changed")
            assert changed["data"]["after"]["current_snapshot_id"] == snap_a["snapshot_id"]
            dropped = next(e for e in main if e["type"] == "snapshot.dropped")
            assert dropped["data"]["after"]["snapshot_id"] == snap_b["snapshot_id"]

            # The webhook: every event, once at least, signed, in order per workspace.
            wanted = {e["event_id"] for e in everything}
            await receiver.wait_for(lambda got: wanted <= {int(r.webhook_id) for r in got if r.path == "/all"})
            dead_types = {"task.dead", "workspace.tampered"}
            expected_dead = {e["event_id"] for e in everything if e["type"] in dead_types}
            await receiver.wait_for(lambda got: expected_dead <= {int(r.webhook_id) for r in got if r.path == "/dead"})
            by_id = {e["event_id"]: e for e in everything}
            first_seen: dict[str, list[int]] = {}
            for received in list(receiver.received):
                secret = WHSEC if received.path == "/all" else RAW_SECRET.encode()
                event = received.verify(secret)
                assert received.webhook_id == str(event["event_id"])
                assert received.headers["content-type"] == "application/json"
                listed = {k: v for k, v in by_id[event["event_id"]].items() if k != "deliveries"}
                assert event == listed
                if received.path == "/dead":
                    assert event["type"] in dead_types
                elif event["event_id"] not in first_seen.setdefault(event["wsid"], []):
                    first_seen[event["wsid"]].append(event["event_id"])
            for wsid, log in logs.items():
                assert first_seen[wsid] == [e["event_id"] for e in log], f"{wsid}: delivered out of order"

            # GET /v1/events shows where each event stands with each endpoint.
            async def settled() -> bool:
                listed = await event_log(client)
                return all(d["state"] in ("delivered", "skipped") for e in listed for d in e["deliveries"])

            for _ in range(100):
                if await settled():
                    break
                await asyncio.sleep(0.1)
            listed = await event_log(client)
            for event in listed:
                states = {d["subscription"]: d for d in event["deliveries"]}
                assert states["all"]["state"] == "delivered" and states["all"]["attempts"] >= 1
                dead = next(d for name, d in states.items() if name.startswith("webhook:127.0.0.1-"))
                assert dead["state"] == ("delivered" if event["type"] in dead_types else "skipped"), event
