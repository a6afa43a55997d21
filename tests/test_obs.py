"""``wvsctl obs`` against a real VictoriaMetrics scraping a real WVS: the figures it prints are the
outcomes of the tasks this test ran."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.helpers import create_workspace, free_port, key, wait_task
from wvs_controlfile import QuiesceResponder
from wvs_core.cli.wvsctl import cli

VICTORIA_METRICS = shutil.which("victoria-metrics")
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    VICTORIA_METRICS is None,
    reason="victoria-metrics is not installed (Debian package victoria-metrics; make test installs it)",
)


def wait_until(check, timeout: float = 30, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def service(database: str, mount: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """WVS (all planes, fresh metrics) and a VictoriaMetrics scraping it every second."""
    api_port, metrics_port, vm_port = free_port(), free_port(), free_port()
    config = tmp_path / "wvs.toml"
    config.write_text(
        f'[database]\ndsn = "{database}"\n'
        f'[api]\nlisten_addr = "127.0.0.1:{api_port}"\nmetrics_addr = "127.0.0.1:{metrics_port}"\n'
        '[worker]\npoll_interval = "200ms"\nmax_attempts = 1\n'
        f'[executor]\ngrpc_addr = "127.0.0.1:{free_port()}"\nmount_path = "{mount}"\nquiesce_timeout = "1s"\n'
    )
    scrape = tmp_path / "scrape.yml"
    scrape.write_text(
        f"scrape_configs:\n  - job_name: wvs\n    scrape_interval: 1s\n"
        f'    static_configs:\n      - targets: ["127.0.0.1:{metrics_port}"]\n'
    )
    wvs = subprocess.Popen(
        [sys.executable, "-m", "tests.service_process", str(config)], cwd=ROOT, stderr=subprocess.DEVNULL
    )
    vm = subprocess.Popen(
        [
            str(VICTORIA_METRICS),
            f"-storageDataPath={tmp_path / 'vm'}",
            f"-httpListenAddr=127.0.0.1:{vm_port}",
            f"-promscrape.config={scrape}",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        urls = {"api": f"http://127.0.0.1:{api_port}", "metrics": f"http://127.0.0.1:{vm_port}"}
        wait_until(lambda: httpx.get(f"{urls['api']}/readyz").status_code == 200, what="WVS")
        wait_until(lambda: httpx.get(f"{urls['metrics']}/health").status_code == 200, what="VictoriaMetrics")
        yield urls
    finally:
        for process in (wvs, vm):
            process.terminate()
        for process in (wvs, vm):
            process.wait(timeout=30)


def scraped(metrics_url: str, query: str) -> float | None:
    result = httpx.get(f"{metrics_url}/api/v1/query", params={"query": query}).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def obs(metrics_url: str, command: str, *args: str) -> object:
    """``wvsctl obs COMMAND`` over the last 10 minutes (unless ``args`` say otherwise)."""
    argv = ["obs", command, "--metrics-url", metrics_url, "--window", "10m", *args]
    return await asyncio.to_thread(CliRunner().invoke, cli, argv)


async def test_obs_reports_what_the_service_did(service: dict[str, str], mount: Path) -> None:
    async with httpx.AsyncClient(base_url=service["api"], timeout=30) as client:
        await create_workspace(client, "observed")
        with QuiesceResponder(mount / "observed").running_in_thread():
            for _ in range(3):
                accepted = (await client.post("/v1/workspaces/observed/snapshots", json={}, headers=key())).json()
                assert (await wait_task(client, accepted["task_id"]))["status"] == "SUCCEEDED"
        # No agent any more: the freeze times out and, with max_attempts = 1, the task is DEAD.
        accepted = (await client.post("/v1/workspaces/observed/snapshots", json={}, headers=key())).json()
        assert (await wait_task(client, accepted["task_id"]))["status"] == "DEAD"
    dead = 'sum(wvs_task_total{op="snapshot_create",status="DEAD"})'
    await asyncio.to_thread(
        wait_until, lambda: scraped(service["metrics"], dead) == 1, 30, "the scrape of the DEAD run"
    )

    summary = await obs(service["metrics"], "summary", "--json")
    assert summary.exit_code == 0, summary.output
    report = json.loads(summary.stdout)
    tasks = {row["op"]: row for row in report["tasks"]}
    snapshots = tasks["snapshot_create"]
    assert (snapshots["succeeded"], snapshots["failed"], snapshots["dead"], snapshots["canceled"]) == (3, 0, 1, 0)
    assert snapshots["success_rate"] == 0.75
    assert 0 < snapshots["p50_seconds"] <= snapshots["p95_seconds"] < 10
    assert (tasks["init_workspace"]["succeeded"], tasks["init_workspace"]["success_rate"]) == (1, 1.0)
    assert report["queue"]["depth"] == 0 and isinstance(report["queue"]["peak"], int)
    assert report["quiesce"]["freezes"] == 3 and report["quiesce"]["timeouts"] == 1
    assert report["quiesce"]["timeout_rate"] == 0.25 and report["quiesce"]["wait_p95_seconds"] > 0

    table = await obs(service["metrics"], "latency")
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split()[:5] == ["OP", "SUCCEEDED", "FAILED", "DEAD", "CANCELED"]
    assert any(row.split()[:6] == ["snapshot_create", "3", "0", "1", "0", "0.75"] for row in rows)
    quiesce = await obs(service["metrics"], "quiesce")
    assert "timeout_rate      0.25" in quiesce.stdout
    queue = await obs(service["metrics"], "queue", "--json")
    assert json.loads(queue.stdout)["depth"] == 0


async def test_obs_failures_name_the_cause(service: dict[str, str]) -> None:
    unreachable = await obs("http://127.0.0.1:9", "summary")
    assert unreachable.exit_code != 0 and "WVS_UNREACHABLE" in unreachable.output
    refused = await obs(service["api"], "queue")  # WVS's API is no query API
    assert refused.exit_code != 0 and "WVS_METRICS_QUERY" in refused.output
    bad_window = await obs(service["metrics"], "queue", "--window", "1y")
    assert bad_window.exit_code == 2 and "--window" in bad_window.output
