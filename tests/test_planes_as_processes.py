"""A real deployment's shape: ``wvs migrate``, then ``wvs executor``, two ``wvs worker`` and ``wvs api``
as separate processes sharing one config file; a snapshot flows through all of them, each serves its
metrics, and one request id can be followed through the logs of all three planes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import free_port, key, snapshots_dir
from wvs_controlfile import QuiesceResponder

BIN = Path(sys.executable).parent
REQUEST_ID = "follow-me-0042"


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became ready")


def wait_task(client: httpx.Client, task_id: str, timeout: float = 30) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = client.get(f"/v1/tasks/{task_id}").json()
        if task["status"] in {"SUCCEEDED", "DEAD", "CANCELED"}:
            return dict(task)
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


def test_separate_processes(postgres, mount: Path, tmp_path: Path) -> None:
    postgres.psql("CREATE DATABASE planes;")
    api_port, grpc_port, executor_metrics, worker_metrics = free_port(), free_port(), free_port(), free_port()
    config = tmp_path / "wvs.toml"
    config.write_text(
        f"""
        [database]
        dsn = "{postgres.dsn("planes")}"
        [api]
        listen_addr = "127.0.0.1:{api_port}"
        metrics_addr = "127.0.0.1:{free_port()}"
        [worker]
        executor_addrs = ["127.0.0.1:{grpc_port}"]
        poll_interval = "200ms"
        [executor]
        grpc_addr = "127.0.0.1:{grpc_port}"
        metrics_addr = "127.0.0.1:{executor_metrics}"
        mount_path = "{mount}"
        """
    )
    env = {**os.environ, "WVS_CONFIG": str(config)}
    migrated = subprocess.run([str(BIN / "wvs"), "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    logs = {name: tmp_path / f"{name}.log" for name in ("executor", "worker-1", "worker-2", "api")}
    ports = {"worker-1": worker_metrics, "worker-2": free_port()}

    def start(name: str) -> subprocess.Popen[bytes]:
        plane = name.split("-")[0]
        extra = {"WVS_METRICS_ADDR": f"127.0.0.1:{ports[name]}"} if plane == "worker" else {}
        with open(logs[name], "wb") as log_file:
            return subprocess.Popen([str(BIN / "wvs"), plane], env={**env, **extra}, stderr=log_file)

    processes = [start(name) for name in logs]
    try:
        url = f"http://127.0.0.1:{api_port}"
        wait_ready(url)
        with httpx.Client(base_url=url, timeout=30) as client:
            created = client.post("/v1/workspaces", json={"wsid": "planes-ws", "owner": "o"}, headers=key()).json()
            assert wait_task(client, created["init_task_id"])["status"] == "SUCCEEDED"
            (mount / "planes-ws" / "current" / "f.txt").write_text("across processes")
            with QuiesceResponder(mount / "planes-ws").running_in_thread():
                headers = {**key(), "X-Request-Id": REQUEST_ID}
                accepted = client.post("/v1/workspaces/planes-ws/snapshots", json={}, headers=headers).json()
                assert wait_task(client, accepted["task_id"])["status"] == "SUCCEEDED"
        executor_scrape = httpx.get(f"http://127.0.0.1:{executor_metrics}/metrics").text
        assert 'wvs_clone_duration_seconds_count{op="snapshot_create"} 1.0' in executor_scrape
        worker_scrape = httpx.get(f"http://127.0.0.1:{worker_metrics}/metrics").text
        assert "wvs_dequeue_empty_total" in worker_scrape and "wvs_task_queue_depth" in worker_scrape
        snapshot = snapshots_dir(mount, "planes-ws") / accepted["snapshot_id"]
        assert (snapshot / "f.txt").read_text() == "across processes"
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(30) for process in processes]
        postgres.psql("DROP DATABASE planes WITH (FORCE);")
    assert codes == [0, 0, 0, 0], "every plane shuts down cleanly on SIGTERM"
    lines = {name: [json.loads(line) for line in path.read_text().splitlines()] for name, path in logs.items()}
    followed = {
        name for name, entries in lines.items() if any(e.get("request_id") == "follow-me-0042" for e in entries)
    }
    assert {"api", "executor"} <= followed and followed & {"worker-1", "worker-2"}, followed
    executor_line = next(e for e in lines["executor"] if e.get("request_id") == REQUEST_ID)
    assert executor_line["task_id"] == accepted["task_id"] and executor_line["wsid"] == "planes-ws"
    assert executor_line["op"] == "snapshot_create"
