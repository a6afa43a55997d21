"""The walking skeleton end to end through HTTP: create → ACTIVE → write → snapshot → identical tree."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.helpers import (
    create_workspace,
    in_flight,
    key,
    populate_tree,
    snapshots_dir,
    tree_signature,
    wait_task,
)
from wvs_controlfile import QuiesceResponder


async def test_create_workspace_lays_out_spec_tree(wvs) -> None:
    workspace = await create_workspace(wvs, "alpha-1", owner="team-a")
    root = wvs.mount_path / "alpha-1"
    assert workspace["root_path"] == str(root)
    assert workspace["owner"] == "team-a"
    assert (root / "current").is_symlink()
    assert not os.readlink(root / "current").startswith("/"), "current must be a relative link"
    assert (root / "current").resolve() == Path(workspace["current_path"])
    assert Path(workspace["current_path"]).parent == root / "live"
    assert snapshots_dir(wvs.mount_path, "alpha-1").is_dir()
    assert sorted(os.listdir(root)) == [".wvs", "current", "live"], "nothing of WVS's but current and .wvs"
    control = json.loads((root / ".wvs" / "control.json").read_text())
    assert control["state"] == "RUNNING"


async def test_snapshot_is_an_exact_copy_of_current(wvs) -> None:
    await create_workspace(wvs, "snap-exact")
    root = wvs.mount_path / "snap-exact"
    populate_tree(root / "current")
    expected = tree_signature(root / "current")

    with QuiesceResponder(root).running_in_thread():
        response = await wvs.post("/v1/workspaces/snap-exact/snapshots", json={"message": "first ✓"}, headers=key())
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert accepted["status"] == "PENDING"
        task = await wait_task(wvs, accepted["task_id"])
    assert task["status"] == "SUCCEEDED", task

    snapshot_dir = snapshots_dir(wvs.mount_path, "snap-exact") / accepted["snapshot_id"]
    assert task["result"]["fs_path"] == str(snapshot_dir)
    assert tree_signature(snapshot_dir) == expected, "WVS writes nothing inside a snapshot tree"
    metadata = json.loads(snapshot_dir.with_name(accepted["snapshot_id"] + ".json").read_text())
    assert metadata["snapshot_id"] == accepted["snapshot_id"]
    assert metadata["wsid"] == "snap-exact"
    assert metadata["message"] == "first ✓"
    assert in_flight(wvs.mount_path, "snap-exact") == []

    listed = (await wvs.get("/v1/workspaces/snap-exact/snapshots")).json()
    assert [item["snapshot_id"] for item in listed["items"]] == [accepted["snapshot_id"]]
    assert listed["items"][0]["fs_path"] == str(snapshot_dir)
    assert listed["items"][0]["message"] == "first ✓"
    assert listed["next_cursor"] is None

    # The agent may keep working: the snapshot does not change with current.
    (root / "current" / "later.txt").write_text("written after the snapshot\n")
    assert not (snapshot_dir / "later.txt").exists()
