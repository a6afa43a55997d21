"""A real deployment's shape: ``wvs migrate``, then ``wvs executor``, two ``wvs worker`` and ``wvs api``
as separate processes sharing one config file; a snapshot flows through all of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import free_port, key
from wvs_controlfile import QuiesceResponder

BIN = Path(sys.executable).parent


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
    api_port, grpc_port = free_port(), free_port()
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
        metrics_addr = "127.0.0.1:{free_port()}"
        mount_path = "{mount}"
        """
    )
    env = {**os.environ, "WVS_CONFIG": str(config)}
    migrated = subprocess.run([str(BIN / "wvs"), "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    processes = [
        subprocess.Popen([str(BIN / "wvs"), "executor"], env=env, stderr=subprocess.DEVNULL),
        *(
            subprocess.Popen(
                [str(BIN / "wvs"), "worker"],
                env={**env, "WVS_METRICS_ADDR": f"127.0.0.1:{free_port()}"},
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ),
        subprocess.Popen([str(BIN / "wvs"), "api"], env=env, stderr=subprocess.DEVNULL),
    ]
    try:
        url = f"http://127.0.0.1:{api_port}"
        wait_ready(url)
        with httpx.Client(base_url=url, timeout=30) as client:
            created = client.post("/v1/workspaces", json={"wsid": "planes-ws", "owner": "o"}, headers=key()).json()
            assert wait_task(client, created["init_task_id"])["status"] == "SUCCEEDED"
            (mount / "planes-ws" / "current" / "f.txt").write_text("across processes")
            with QuiesceResponder(mount / "planes-ws").running_in_thread():
                accepted = client.post("/v1/workspaces/planes-ws/snapshots", json={}, headers=key()).json()
                assert wait_task(client, accepted["task_id"])["status"] == "SUCCEEDED"
        snapshot = mount / "planes-ws" / "snapshots" / accepted["snapshot_id"]
        assert (snapshot / "f.txt").read_text() == "across processes"
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(30) for process in processes]
        postgres.psql("DROP DATABASE planes WITH (FORCE);")
    assert codes == [0, 0, 0, 0], "every plane shuts down cleanly on SIGTERM"
