"""``wvsctl obs`` against a real VictoriaMetrics scraping a real WVS: the figures it prints are the
outcomes of the tasks this test ran."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner, Result

from tests.metrics_stack import run_workload, wait_scraped
from wvs_core.cli.wvsctl import cli


async def obs(metrics_url: str, command: str, *args: str) -> Result:
    """``wvsctl obs COMMAND`` over the last 10 minutes (unless ``args`` say otherwise)."""
    argv = ["obs", command, "--metrics-url", metrics_url, "--window", "10m", *args]
    return await asyncio.to_thread(CliRunner().invoke, cli, argv)


async def test_obs_reports_what_the_service_did(observed: dict[str, str], mount: Path) -> None:
    await run_workload(observed["api"], mount, "observed")  # 3 snapshots succeed, 1 goes DEAD
    await asyncio.to_thread(wait_scraped, observed["metrics"])

    summary = await obs(observed["metrics"], "summary", "--json")
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

    table = await obs(observed["metrics"], "latency")
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split()[:5] == ["OP", "SUCCEEDED", "FAILED", "DEAD", "CANCELED"]
    assert any(row.split()[:6] == ["snapshot_create", "3", "0", "1", "0", "0.75"] for row in rows)
    quiesce = await obs(observed["metrics"], "quiesce")
    assert "timeout_rate      0.25" in quiesce.stdout
    queue = await obs(observed["metrics"], "queue", "--json")
    assert json.loads(queue.stdout)["depth"] == 0


async def test_obs_failures_name_the_cause(observed: dict[str, str]) -> None:
    unreachable = await obs("http://127.0.0.1:9", "summary")
    assert unreachable.exit_code != 0 and "WVS_UNREACHABLE" in unreachable.output
    refused = await obs(observed["api"], "queue")  # WVS's API is no query API
    assert refused.exit_code != 0 and "WVS_METRICS_QUERY" in refused.output
    bad_window = await obs(observed["metrics"], "queue", "--window", "1y")
    assert bad_window.exit_code == 2 and "--window" in bad_window.output
