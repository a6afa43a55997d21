"""The observability stack under test: a fresh WVS process scraped every second by a real VictoriaMetrics,
plus the binaries of the compose `ga` profile (Debian packages victoria-metrics, prometheus-alertmanager;
`make test` installs them as root)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import create_workspace, free_port, key, wait_task
from wvs_controlfile import QuiesceResponder

ROOT = Path(__file__).resolve().parent.parent


def binary(name: str, package: str) -> str:
    """The path of ``name``; skips the test, saying how to install it, when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {package}; `make test` installs it as root)")
    return path


def wait_until(check: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    """Poll ``check`` (HTTP errors count as not yet) until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def running(*argv: str, cwd: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A background process, terminated (and waited for) on exit."""
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def query(url: str, promql: str, auth: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """The result vector of an instant query against ``url``'s Prometheus query API."""
    answer = httpx.get(f"{url}/api/v1/query", params={"query": promql}, auth=auth)
    answer.raise_for_status()
    body = answer.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


@contextmanager
def observed_wvs(database: str, mount: Path, tmp_path: Path) -> Iterator[dict[str, str]]:
    """WVS (all planes in one fresh process, max_attempts 1, quiesce timeout 1s) and a VictoriaMetrics
    scraping it every second; yields their URLs (``api``, ``metrics``)."""
    victoria_metrics = binary("victoria-metrics", "victoria-metrics")
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
        "scrape_configs:\n  - job_name: wvs\n    scrape_interval: 1s\n"
        f'    static_configs:\n      - targets: ["127.0.0.1:{metrics_port}"]\n'
    )
    urls = {"api": f"http://127.0.0.1:{api_port}", "metrics": f"http://127.0.0.1:{vm_port}"}
    vm_flags = (
        f"-storageDataPath={tmp_path / 'vm'}",
        f"-httpListenAddr=127.0.0.1:{vm_port}",
        f"-promscrape.config={scrape}",
        "-search.latencyOffset=0s",  # show samples as soon as they are scraped
        "-search.disableCache",
    )
    with (
        running(sys.executable, "-m", "tests.service_process", str(config), cwd=ROOT),
        running(victoria_metrics, *vm_flags),
    ):
        wait_until(lambda: httpx.get(f"{urls['api']}/readyz").status_code == 200, what="WVS")
        wait_until(lambda: httpx.get(f"{urls['metrics']}/health").status_code == 200, what="VictoriaMetrics")
        yield urls


async def run_workload(api_url: str, mount: Path, wsid: str) -> None:
    """One workspace, three snapshots that succeed, then one that goes DEAD (no agent: quiesce timeout).
    ``wait_scraped`` then waits until VictoriaMetrics has the DEAD run."""
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        await create_workspace(client, wsid)
        with QuiesceResponder(mount / wsid).running_in_thread():
            for _ in range(3):
                accepted = (await client.post(f"/v1/workspaces/{wsid}/snapshots", json={}, headers=key())).json()
                assert (await wait_task(client, accepted["task_id"]))["status"] == "SUCCEEDED"
        accepted = (await client.post(f"/v1/workspaces/{wsid}/snapshots", json={}, headers=key())).json()
        assert (await wait_task(client, accepted["task_id"]))["status"] == "DEAD"


def wait_scraped(metrics_url: str) -> None:
    """Until the workload's DEAD run is in VictoriaMetrics."""
    dead = 'sum(wvs_task_total{op="snapshot_create",status="DEAD"}) == 1'
    wait_until(lambda: bool(query(metrics_url, dead)), what="the scrape of the DEAD run")
