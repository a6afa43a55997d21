"""``wvs up`` starts everything, serves a create+snapshot flow driven by wvsctl and ``wvs agent`` and the
whole smoke test (scripts/smoke-test.sh), and leaves no mount and no PostgreSQL behind when stopped."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import free_port
from wvs_juicefs.volume import fuse_unavailable_reason, is_mounted

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def wait_for_line(process: subprocess.Popen[str], pattern: str, timeout: float = 90) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    seen = []
    assert process.stderr is not None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    raise AssertionError(f"never saw {pattern!r}; output was:\n{''.join(seen)[-4000:]}")


def wvsctl(api_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "wvsctl"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "WVS_API_URL": api_url},
    )


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and str(data_dir) in cmdline:
            found.append(process)
    return found


def test_wvs_up_serves_and_cleans_up(tmp_path: Path) -> None:
    if (reason := fuse_unavailable_reason()) is not None and not os.environ.get("CI"):
        pytest.skip(f"JuiceFS needs FUSE: {reason}")
    data_dir = tmp_path / "wvs-data"
    port = free_port()
    up = subprocess.Popen(
        [str(BIN / "wvs"), "up", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    agent = None
    try:
        api_url = wait_for_line(up, r"API:\s+(http://\S+)").group(1)
        assert api_url == f"http://127.0.0.1:{port}"
        mount = Path(wait_for_line(up, r"mount:\s+(\S+)").group(1))
        assert mount == data_dir / "juicefs" / "mnt" and is_mounted(mount)

        created = wvsctl(api_url, "workspace", "create", "demo", "--owner", "me", "--wait", "--json")
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["task"]["status"] == "SUCCEEDED"
        workspace = json.loads(wvsctl(api_url, "workspace", "get", "demo", "--json").stdout)
        assert workspace["state"] == "ACTIVE" and workspace["root_path"] == str(mount / "demo")
        (mount / "demo" / "current" / "hello.txt").write_text("hello from the agent\n")

        agent = subprocess.Popen([str(BIN / "wvs"), "agent", str(mount / "demo")], stderr=subprocess.DEVNULL)
        snap = wvsctl(api_url, "snapshot", "create", "demo", "-m", "first", "--wait", "--json")
        assert snap.returncode == 0, snap.stderr
        snapshot_id = json.loads(snap.stdout)["snapshot_id"]
        assert (
            mount / ".wvs" / "snapshots" / "demo" / snapshot_id / "hello.txt"
        ).read_text() == "hello from the agent\n"
        listed = wvsctl(api_url, "snapshot", "list", "demo")
        assert snapshot_id in listed.stdout and "first" in listed.stdout

        smoke = subprocess.run(
            ["bash", str(ROOT / "scripts" / "smoke-test.sh")],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "WVS_API_URL": api_url, "WVS_BIN": str(BIN)},
        )
        assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
        assert smoke.stdout.strip().splitlines()[-1] == "=== ALL SMOKE TESTS PASSED ==="
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        up.send_signal(signal.SIGTERM)
        exit_code = up.wait(60)
    assert exit_code == 0
    assert not is_mounted(data_dir / "juicefs" / "mnt")
    deadline = time.monotonic() + 10
    while postgres_processes(data_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert postgres_processes(data_dir) == []
