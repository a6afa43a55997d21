"""The event dispatcher against real HTTP endpoints: a kill -9 of its process mid-delivery loses nothing, a
slow endpoint never delays a task, a failing one is retried with backoff (then given up) and shows in the
metrics and in ``GET /v1/events``; the ``log`` notifier goes through it too."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.conftest import make_config
from tests.helpers import create_workspace, free_port, key, wait_task
from tests.webhook_receiver import Received, Receiver

BIN = Path(sys.executable).parent
SECRET = "whsec_" + "c2VjcmV0LWZvci10aGUtdGVzdHMtMzItYnl0ZXMhISE="


def metric(name: str, **labels: str) -> float:
    """A sample of this process's Prometheus registry (0 when absent)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def event_log(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Every event, oldest first."""
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = (await client.get("/v1/events", params={"after": after, "limit": 100, **params})).json()
        items += page["items"]
        if not page["items"]:
            return items
        after = page["items"][-1]["event_id"]


def first_seen_per_workspace(received: list[Received]) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for request in received:
        event = request.verify(SECRET)
        ids = seen.setdefault(event["wsid"], [])
        if event["event_id"] not in ids:
            ids.append(event["event_id"])
    return seen


async def test_kill_9_mid_delivery_loses_nothing_and_a_duplicate_keeps_its_webhook_id(
    database, mount, start_service, tmp_path
) -> None:
    release = threading.Event()
    hung: list[Received] = []

    def answer(received: Received) -> tuple[int, float]:
        if not hung:  # the first POST hangs until its sender is dead
            hung.append(received)
            release.wait(60)
        return 204, 0.0

    grpc_port = free_port()
    with Receiver(answer).running() as receiver:
        base = make_config(
            database,
            mount,
            executor={"grpc_addr": f"127.0.0.1:{grpc_port}"},
            plugins={"quiesce": "none"},
        )
        service = await start_service(base, planes=("api", "executor"))
        config_file = tmp_path / "worker.toml"
        config_file.write_text(
            f'[database]\ndsn = "{database}"\n'
            f'[worker]\nexecutor_addrs = ["127.0.0.1:{grpc_port}"]\nmetrics_addr = "127.0.0.1:{free_port()}"\n'
            f'poll_interval = "200ms"\n[events]\npoll_interval = "200ms"\n'
            f'[plugins]\nquiesce = "none"\n'
            f'[plugins.settings.webhook]\nretry_base = "100ms"\n'
            f'endpoints = [{{ url = "{receiver.url}/hook", secret = "{SECRET}", name = "hook" }}]\n'
        )
        env = {**os.environ, "WVS_CONFIG": str(config_file)}

        async def worker() -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                str(BIN / "wvs"), "worker", env=env, stderr=asyncio.subprocess.DEVNULL
            )

        doomed = await worker()
        survivor = None
        try:
            async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
                await create_workspace(client, "kill-one")
                await create_workspace(client, "kill-two")
                snapshot = (await client.post("/v1/workspaces/kill-two/snapshots", json={}, headers=key())).json()
                assert (await wait_task(client, snapshot["task_id"]))["status"] == "SUCCEEDED"
                await receiver.wait_for(lambda got: len(got) >= 3)  # one hangs; the other lane goes on
                doomed.send_signal(signal.SIGKILL)
                await doomed.wait()
                release.set()
                survivor = await worker()
                everything = await event_log(client)
                wanted = {event["event_id"] for event in everything}
                await receiver.wait_for(lambda got: wanted <= {int(r.webhook_id) for r in got})
        finally:
            for process in (doomed, survivor):
                if process is not None and process.returncode is None:
                    process.kill()
                    await process.wait()
    received = list(receiver.received)
    assert {int(r.webhook_id) for r in received} == wanted, "no event lost"
    again = [r for r in received if r.webhook_id == hung[0].webhook_id]
    assert len(again) >= 2, "the delivery cut short by the kill was made again"
    assert {r.body for r in again} == {hung[0].body}, "a duplicate is the same event, same webhook-id"
    for request in received:
        request.verify(SECRET)
    per_workspace = first_seen_per_workspace(received)
    for wsid in ("kill-one", "kill-two"):
        assert per_workspace[wsid] == [e["event_id"] for e in everything if e["wsid"] == wsid], wsid


async def test_a_slow_endpoint_never_delays_a_task(database, mount, start_service) -> None:
    with Receiver(lambda _received: (204, 20.0)).running() as receiver:
        config = make_config(
            database,
            mount,
            worker={"concurrency": 1},
            events={"poll_interval": "200ms"},
            plugins={
                "quiesce": "none",
                "settings": {"webhook": {"endpoints": [{"url": receiver.url, "secret": SECRET, "timeout": "60s"}]}},
            },
        )
        service = await start_service(config)
        async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
            started = time.monotonic()
            await create_workspace(client, "slow-hook")
            durations = []
            for _ in range(5):
                submitted = time.monotonic()
                accepted = (await client.post("/v1/workspaces/slow-hook/snapshots", json={}, headers=key())).json()
                assert (await wait_task(client, accepted["task_id"]))["status"] == "SUCCEEDED"
                durations.append(time.monotonic() - submitted)
            elapsed = time.monotonic() - started
        assert len(receiver.received) == 1, "the endpoint is still answering its first POST"
        assert max(durations) < 5 and elapsed < 15, (durations, elapsed)
        stopping = time.monotonic()
        await service.stop()
        assert time.monotonic() - stopping < 10, "a delivery in flight does not hold up a shutdown"


async def test_a_failing_endpoint_is_retried_with_backoff_then_given_up_visibly(
    database, tmp_path, start_service
) -> None:
    failing = threading.Event()
    failing.set()
    receiver = Receiver(lambda received: (500 if received.path == "/never" or failing.is_set() else 204, 0.0))
    with receiver.running():
        endpoints = [
            {"url": f"{receiver.url}/flaky", "secret": SECRET, "name": "flaky"},
            {"url": f"{receiver.url}/never", "secret": SECRET, "name": "never", "retry_period": "1s"},
        ]
        config = make_config(
            database,
            tmp_path,
            storage="localfs",
            events={"poll_interval": "200ms"},
            plugins={
                "quiesce": "none",
                "settings": {"webhook": {"retry_base": "200ms", "retry_max": "1s", "endpoints": endpoints}},
            },
        )
        before = {
            outcome: metric("wvs_event_deliveries_total", subscription="flaky", outcome=outcome)
            for outcome in ("retried", "delivered")
        }
        rejected_before = metric("wvs_webhook_deliveries_total", outcome="rejected")
        given_up_before = metric("wvs_event_deliveries_total", subscription="never", outcome="failed")
        service = await start_service(config)
        async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
            created = await client.post("/v1/workspaces", json={"wsid": "flaky-hook", "owner": "o"}, headers=key())
            assert created.status_code == 202

            async def first_event() -> dict[str, Any]:
                return (await event_log(client))[0]

            for _ in range(100):
                state = {d["subscription"]: d for d in (await first_event())["deliveries"]}
                if state.get("flaky", {}).get("attempts", 0) >= 3:
                    break
                await asyncio.sleep(0.1)
            flaky = state["flaky"]
            assert flaky["state"] == "retrying" and flaky["last_error"].endswith("answered HTTP 500"), flaky
            assert flaky["next_attempt_at"] is not None
            assert metric("wvs_event_delivery_lag_seconds", subscription="flaky") > 0
            failing.clear()

            for _ in range(100):
                state = {d["subscription"]: d for d in (await first_event())["deliveries"]}
                if state["flaky"]["state"] == "delivered" and state["never"]["state"] == "failed":
                    break
                await asyncio.sleep(0.1)
            assert state["flaky"]["state"] == "delivered" and state["flaky"]["attempts"] >= 4, state
            assert state["never"]["state"] == "failed" and state["never"]["last_error"].endswith("HTTP 500"), state
            await receiver.wait_for(lambda got: {int(r.webhook_id) for r in got if r.path == "/flaky"} >= {1, 2})

    attempts = [r.at for r in receiver.received if r.path == "/flaky" and r.webhook_id == "1"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert len(gaps) >= 3
    for number, gap in enumerate(gaps[:3], start=1):
        expected = min(0.2 * 2 ** (number - 1), 1.0)
        assert expected - 0.05 <= gap <= expected + 1.0, (number, gaps)
    assert metric("wvs_event_deliveries_total", subscription="flaky", outcome="retried") - before["retried"] >= 3
    assert metric("wvs_event_deliveries_total", subscription="flaky", outcome="delivered") > before["delivered"]
    assert metric("wvs_webhook_deliveries_total", outcome="rejected") - rejected_before >= 3
    assert metric("wvs_event_deliveries_total", subscription="never", outcome="failed") > given_up_before


async def test_the_log_notifier_hears_every_event_through_the_dispatcher(
    database, tmp_path, start_service, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(
        database,
        tmp_path,
        storage="localfs",
        events={"poll_interval": "200ms"},
        plugins={"notifiers": ["log"], "quiesce": "none"},
    )
    service = await start_service(config)
    with caplog.at_level(logging.INFO, logger="wvs.events"):
        async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
            headers = {**key(), "X-Request-Id": "logged-1"}
            created = await client.post("/v1/workspaces", json={"wsid": "logged", "owner": "o"}, headers=headers)
            assert (await wait_task(client, created.json()["init_task_id"]))["status"] == "SUCCEEDED"
            for _ in range(100):
                if len([r for r in caplog.records if r.name == "wvs.events"]) >= 5:
                    break
                await asyncio.sleep(0.1)
    lines = [r for r in caplog.records if r.name == "wvs.events"]
    assert [r.getMessage() for r in lines] == [
        "workspace.created",
        "task.created",
        "task.started",
        "task.succeeded",
        "workspace.active",
    ]
    assert all(r.wsid == "logged" for r in lines)  # type: ignore[attr-defined]
    assert lines[1].request_id == "logged-1" and lines[1].data["op"] == "init_workspace"  # type: ignore[attr-defined]
