"""``wvs agent``: refuses a directory that is no workspace root, prints a line per freeze and per resume, and
stops at once on SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import create_workspace, key, wait_task

WVS = str(Path(sys.executable).parent / "wvs")


async def next_line(stream: asyncio.StreamReader) -> str:
    return (await asyncio.wait_for(stream.readline(), timeout=20)).decode()


def test_a_directory_that_is_no_workspace_root_is_refused(tmp_path: Path) -> None:
    refused = subprocess.run([WVS, "agent", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "is not the root of an initialized workspace" in refused.stderr
    assert "no current (the link WVS switches) and no .wvs/control.json" in refused.stderr

    (tmp_path / "current").symlink_to("live/x")
    half = subprocess.run([WVS, "agent", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert half.returncode != 0 and "no .wvs/control.json" in half.stderr and "no current" not in half.stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_each_freeze_and_resume_is_a_line_and_a_signal_stops_it_at_once(wvs, stop_signal: int) -> None:
    await create_workspace(wvs, "cli-agent")
    agent = await asyncio.create_subprocess_exec(
        WVS, "agent", str(wvs.mount_path / "cli-agent"), stderr=asyncio.subprocess.PIPE
    )
    assert agent.stderr is not None
    try:
        assert "answering quiesce requests in" in await next_line(agent.stderr)
        accepted = (await wvs.post("/v1/workspaces/cli-agent/snapshots", json={}, headers=key())).json()
        assert (await wait_task(wvs, accepted["task_id"]))["status"] == "SUCCEEDED"
        frozen, resumed = await next_line(agent.stderr), await next_line(agent.stderr)
        assert f"frozen for task {accepted['task_id']}" in frozen
        assert f"resumed after task {accepted['task_id']}" in resumed

        started = time.monotonic()
        agent.send_signal(stop_signal)
        await asyncio.wait_for(agent.wait(), timeout=10)
        stopped_in = time.monotonic() - started
    finally:
        if agent.returncode is None:
            agent.kill()
            await agent.wait()
    assert stopped_in < 0.5, f"took {stopped_in:.2f}s to stop"
    assert agent.returncode == 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def test_a_view_that_vanishes_is_one_warning_then_an_exit_after_the_grace(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / ".wvs").mkdir(parents=True)
    (root / ".wvs" / "control.json").write_text('{"state": "RUNNING", "timestamp": null, "task_id": null}')
    (root / "current").symlink_to("live/x")
    agent = await asyncio.create_subprocess_exec(WVS, "agent", str(root), stderr=asyncio.subprocess.PIPE)
    assert agent.stderr is not None
    try:
        assert "answering quiesce requests in" in await next_line(agent.stderr)
        (root / ".wvs").rename(tmp_path / "away")  # a remount blip: gone, then back within the grace
        assert f"{root / '.wvs'} is gone" in await next_line(agent.stderr)
        (tmp_path / "away").rename(root / ".wvs")
        assert f"{root / '.wvs'} is back" in await next_line(agent.stderr)

        (root / ".wvs").rename(tmp_path / "away")
        gone_at = time.monotonic()
        assert f"{root / '.wvs'} is gone" in await next_line(agent.stderr)
        await asyncio.sleep(1)
        cpu_before, measured_from = cpu_seconds(agent.pid), time.monotonic()
        await asyncio.sleep(5)
        idle_cpu = (cpu_seconds(agent.pid) - cpu_before) / (time.monotonic() - measured_from)
        rest = (await asyncio.wait_for(agent.stderr.read(), timeout=30)).decode()
        await asyncio.wait_for(agent.wait(), timeout=10)
        gave_up_after = time.monotonic() - gone_at
    finally:
        if agent.returncode is None:
            agent.kill()
            await agent.wait()
    assert idle_cpu < 0.005, f"{idle_cpu:.1%} CPU while the view is gone"
    assert agent.returncode == 1
    gone_line = f"Error: {root / '.wvs'} has been gone for 10s: is the volume still mounted? Stopping."
    assert rest.splitlines() == [gone_line]
    assert 10 <= gave_up_after < 13
