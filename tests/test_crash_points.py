"""Executor crash safety, step by step: kill the executor (``os._exit``) after each step of each op, check
what must hold at any instant, restart (start-up recovery), re-run the op as the retry would, check the end
state. Runs the real ops on the real JuiceFS mount with the control.json handshake and an agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.crash_harness import CRASH_EXIT
from tests.helpers import in_flight, populate_tree, snapshot_is_complete, snapshots_dir, tree_signature
from wvs_controlfile import QuiesceResponder
from wvs_core.config import config_from_dict
from wvs_core.ids import uuid7
from wvs_core.models import ExecutionRequest, ExecutionResult
from wvs_core.plugins import PluginRegistry
from wvs_executor.runner import OpRunner

STEPS = {
    "INIT_WORKSPACE": ["directories", "prepared", "switched"],
    "SNAPSHOT_CREATE": ["cleaned", "frozen", "cloned", "resumed", "renamed", "sealed"],
    "SET_CURRENT": ["frozen", "cloned", "renamed", "switched", "kept", "replaced-removed"],
    "RESTORE_PATHS": ["staged", "frozen", "cloned", "renamed", "switched", "kept", "replaced-removed"],
    "SNAPSHOT_DROP": ["cleaned", "removed"],
}
OLD, NEW = "the snapshot's version\n" * 4096, "the agent's later version\n" * 4096  # several pages each
CASES = [(op, step) for op, steps in STEPS.items() for step in steps]


def runner_for(mount: Path) -> OpRunner:
    config = config_from_dict({"executor": {"mount_path": str(mount), "quiesce_timeout": "10s"}})
    return OpRunner(config, PluginRegistry.load(config.plugins))


async def run_op(mount: Path, wsid: str, op: str, params: dict[str, str], task_id: str) -> ExecutionResult:
    request = ExecutionRequest(task_id=task_id, wsid=wsid, op=op, params=params)
    result = await runner_for(mount).run(request)
    assert result.success, result
    return result


def crash(mount: Path, wsid: str, op: str, params: dict[str, str], task_id: str, step: str) -> None:
    spec = {
        "mount": str(mount),
        "storage": "juicefs",
        "wsid": wsid,
        "op": op,
        "params": params,
        "task_id": task_id,
        "crash_at": step,
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.crash_harness", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == CRASH_EXIT, f"the op did not reach {step}: {done.stdout}{done.stderr[-2000:]}"


def assert_instant_invariants(root: Path) -> None:
    """What must hold at any instant, crash or not: a metadata file (the completeness marker) never names
    a missing or different tree, and current never dangles."""
    snapshots = snapshots_dir(root.parent, root.name)
    if snapshots.is_dir():
        for marker in snapshots.glob("*.json"):
            metadata = json.loads(marker.read_text())
            assert metadata["snapshot_id"] == marker.stem
            assert (snapshots / marker.stem).is_dir(), "metadata of a tree that is not there"
    if (root / "current").is_symlink():
        assert (root / "current").resolve().is_dir(), "current dangles"


def assert_replaced_tree_somewhere(mount: Path, root: Path, live_id: str, kept_snapshot_id: str) -> None:
    """The tree a rollback replaces is, at any instant, still live or complete at the kept snapshot's name (both,
    between the clone and the removal) — never nowhere, never half."""
    live = root / "live" / live_id
    kept = snapshot_is_complete(mount, root.name, kept_snapshot_id)
    assert live.is_dir() or kept, "the replaced tree is gone"
    for tree in ([live] if live.is_dir() else []) + (
        [snapshots_dir(mount, root.name) / kept_snapshot_id] if kept else []
    ):
        assert (tree / "written-later.txt").exists()


def assert_recovered(root: Path) -> None:
    assert in_flight(root.parent, root.name) == []
    assert not [p for p in root.iterdir() if p.name.endswith(".wvs-tmp")]
    state = json.loads((root / ".wvs" / "control.json").read_text())["state"]
    assert state in ("RUNNING", "REQUEST_RESUME"), f"agent left {state}"


async def wait_running(root: Path) -> None:
    import asyncio

    for _ in range(200):
        if json.loads((root / ".wvs" / "control.json").read_text())["state"] == "RUNNING":
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the agent never got back to RUNNING")


@pytest.mark.parametrize(("op", "step"), CASES, ids=[f"{op.lower()}-after-{step}" for op, step in CASES])
async def test_crash_then_restart_then_retry(mount: Path, op: str, step: str) -> None:
    wsid = "crash-ws"
    root = mount / wsid
    live_id = uuid7()
    if op != "INIT_WORKSPACE":
        await run_op(mount, wsid, "INIT_WORKSPACE", {"live_id": live_id}, uuid7())
        populate_tree(root / "current")
        (root / "current" / "restored.txt").write_text(OLD)
    with QuiesceResponder(root).running_in_thread():
        expected = tree_signature(root / "current") if op != "INIT_WORKSPACE" else None
        first_snapshot = uuid7()
        if op in ("SET_CURRENT", "RESTORE_PATHS", "SNAPSHOT_DROP"):
            await run_op(mount, wsid, "SNAPSHOT_CREATE", {"snapshot_id": first_snapshot}, uuid7())
            (root / "current" / "written-later.txt").write_text("after the snapshot")
            (root / "current" / "restored.txt").write_text(NEW)
        params = {
            "INIT_WORKSPACE": {"live_id": live_id},
            "SNAPSHOT_CREATE": {"snapshot_id": uuid7(), "message": "crash"},
            # previous_live_path: what the scheduler adds at claim time from the workspace's current_path
            "SET_CURRENT": {
                "snapshot_id": first_snapshot,
                "new_live_id": uuid7(),
                "kept_snapshot_id": uuid7(),
                "previous_live_path": str(root / "live" / live_id),
            },
            "RESTORE_PATHS": {
                "snapshot_id": first_snapshot,
                "paths": ["restored.txt"],
                "new_live_id": uuid7(),
                "kept_snapshot_id": uuid7(),
                "previous_live_path": str(root / "live" / live_id),
            },
            "SNAPSHOT_DROP": {"snapshot_id": first_snapshot},
        }[op]
        task_id = uuid7()

        crash(mount, wsid, op, params, task_id, step)
        assert_instant_invariants(root)
        if op in ("SET_CURRENT", "RESTORE_PATHS"):
            assert_replaced_tree_somewhere(mount, root, live_id, params["kept_snapshot_id"])
        if op == "RESTORE_PATHS":
            assert (root / "current" / "restored.txt").read_text() in (OLD, NEW), "old or new, never a mix"

        recovered = await runner_for(mount).recover_all()  # the restarted executor
        assert recovered <= 1
        if root.exists() and (root / ".wvs" / "control.json").exists():
            await wait_running(root)
            assert_recovered(root)
        assert_instant_invariants(root)

        result = await run_op(mount, wsid, op, params, task_id)  # the retry
        assert_instant_invariants(root)
        assert_recovered(root)

    if op == "INIT_WORKSPACE":
        assert os.readlink(root / "current") == f"live/{live_id}"
    elif op == "SNAPSHOT_CREATE":
        assert tree_signature(snapshots_dir(mount, wsid) / params["snapshot_id"]) == expected
    elif op == "SET_CURRENT":
        assert os.readlink(root / "current") == f"live/{params['new_live_id']}"
        assert tree_signature(root / "current") == expected
        kept = params["kept_snapshot_id"]
        assert not (root / "live" / live_id).exists(), "no orphan live tree"
        assert snapshot_is_complete(mount, wsid, kept), "the replaced tree is kept as a snapshot"
        assert (snapshots_dir(mount, wsid) / kept / "written-later.txt").exists()
        assert result.results["kept_snapshot_id"] == kept, "and reported, even on a re-run"
        assert result.results["previous_live_path"] == str(root / "live" / live_id)
    elif op == "RESTORE_PATHS":
        assert os.readlink(root / "current") == f"live/{params['new_live_id']}"
        assert (root / "current" / "restored.txt").read_text() == OLD, "the snapshot's version is back"
        assert (root / "current" / "written-later.txt").exists(), "and only that path changed"
        kept = params["kept_snapshot_id"]
        assert not (root / "live" / live_id).exists(), "no orphan live tree"
        assert snapshot_is_complete(mount, wsid, kept), "the replaced tree is kept as a snapshot"
        assert (snapshots_dir(mount, wsid) / kept / "restored.txt").read_text() == NEW
        assert result.results["kept_snapshot_id"] == kept
    else:
        assert not (snapshots_dir(mount, wsid) / first_snapshot).exists()
        assert not (snapshots_dir(mount, wsid) / f"{first_snapshot}.json").exists()
