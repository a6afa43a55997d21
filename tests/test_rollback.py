"""set_current (rollback) and snapshot_drop end to end on JuiceFS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path

import httpx

from tests.conftest import make_config
from tests.helpers import (
    create_workspace,
    in_flight,
    key,
    populate_tree,
    snapshot_is_complete,
    snapshots_dir,
    tree_signature,
    wait_task,
)
from wvs_controlfile import QuiesceResponder


async def snapshot(wvs, wsid: str, message: str = "") -> str:
    accepted = (await wvs.post(f"/v1/workspaces/{wsid}/snapshots", json={"message": message}, headers=key())).json()
    task = await wait_task(wvs, accepted["task_id"])
    assert task["status"] == "SUCCEEDED", task
    return str(accepted["snapshot_id"])


async def set_current(wvs, wsid: str, snapshot_id: str) -> dict:  # type: ignore[type-arg]
    response = await wvs.post(f"/v1/workspaces/{wsid}/current:set", json={"snapshot_id": snapshot_id}, headers=key())
    assert response.status_code == 202, response.text
    return await wait_task(wvs, response.json()["task_id"])


async def test_rollback_restores_the_tree_exactly_and_keeps_the_replaced_one(wvs) -> None:
    await create_workspace(wvs, "roll")
    root: Path = wvs.mount_path / "roll"
    populate_tree(root / "current")
    expected = tree_signature(root / "current")
    with QuiesceResponder(root).running_in_thread():
        snapshot_id = await snapshot(wvs, "roll", "before the mess")
        before = (await wvs.get("/v1/workspaces/roll/current")).json()
        # The agent goes on: new files, changed files, deleted files.
        (root / "current" / "later.txt").write_text("written after the snapshot")
        (root / "current" / "src" / "pkg" / "main.py").write_text("broken")
        (root / "current" / "run.sh").unlink()
        replaced = (root / "current").resolve()
        lost_work = tree_signature(root / "current")
        task = await set_current(wvs, "roll", snapshot_id)
    assert task["status"] == "SUCCEEDED", task
    assert task["result"]["noop"] is False
    assert task["result"]["previous_live_path"] == str(replaced)
    assert "previous_live_path" not in task["params"], "a fact of the claim, never stored as an empty param"
    assert tree_signature(root / "current") == expected
    assert not (root / "current" / "later.txt").exists()
    assert not os.readlink(root / "current").startswith("/")

    # Nothing is lost: the replaced tree left the agent view and is an ordinary snapshot now.
    kept_id = task["params"]["kept_snapshot_id"]
    assert task["result"]["kept_snapshot_id"] == kept_id
    assert not replaced.exists(), "no orphan live tree"
    kept_tree = snapshots_dir(wvs.mount_path, "roll") / kept_id
    assert task["result"]["kept_fs_path"] == str(kept_tree)
    assert (kept_tree / "later.txt").read_text() == "written after the snapshot", "no user data is ever deleted"
    assert snapshot_is_complete(wvs.mount_path, "roll", kept_id)
    metadata = json.loads((kept_tree.parent / f"{kept_id}.json").read_text())
    assert metadata["labels"] == {"auto": "before-rollback"} and task["task_id"] in metadata["message"]
    listed = (await wvs.get("/v1/workspaces/roll/snapshots")).json()["items"]
    kept_row = next(s for s in listed if s["snapshot_id"] == kept_id)
    assert kept_row["labels"] == {"auto": "before-rollback"}
    assert kept_row["message"] == metadata["message"] and kept_row["fs_path"] == str(kept_tree)
    events = (await wvs.get("/v1/events", params={"wsid": "roll", "limit": 100})).json()["items"]
    created = [e for e in events if e["type"] == "snapshot.created" and e["data"]["after"]["snapshot_id"] == kept_id]
    assert len(created) == 1 and created[0]["task_id"] == task["task_id"]

    after = (await wvs.get("/v1/workspaces/roll/current")).json()
    assert after["current_snapshot_id"] == snapshot_id
    assert after["current_path"] == task["result"]["current_path"] == str((root / "current").resolve())
    assert after["current_path"] != before["current_path"]
    assert (await wvs.get("/v1/workspaces/roll")).json()["current_path"] == after["current_path"]
    assert in_flight(wvs.mount_path, root.name) == []

    # Setting the current snapshot again: a no-op success, nothing cloned.
    lives = sorted(p.name for p in (root / "live").iterdir())
    again = await set_current(wvs, "roll", snapshot_id)
    assert again["status"] == "SUCCEEDED" and again["result"]["noop"] is True
    assert sorted(p.name for p in (root / "live").iterdir()) == lives

    # Rolling back to the kept snapshot brings the lost work back, byte for byte (and keeps what it replaces).
    with QuiesceResponder(root).running_in_thread():
        back = await set_current(wvs, "roll", kept_id)
    assert back["status"] == "SUCCEEDED", back
    assert tree_signature(root / "current") == lost_work
    assert (root / "current" / "later.txt").read_text() == "written after the snapshot"
    assert snapshot_is_complete(wvs.mount_path, "roll", back["result"]["kept_snapshot_id"])
    assert sorted(p.name for p in (root / "live").iterdir()) == [Path(back["result"]["current_path"]).name]


async def test_the_kept_tree_is_out_of_the_agents_reach(wvs) -> None:
    """What a rollback keeps is a snapshot like any other: a descriptor the agent held open in the replaced tree,
    a hard link it made to one of its files from elsewhere in its view, a directory descriptor it kept — none
    of them writes into the kept snapshot after the rollback (SPEC §13), nor into what a restore of it gives."""
    await create_workspace(wvs, "reach")
    root: Path = wvs.mount_path / "reach"
    (root / "current" / "f.txt").write_text("v1")
    (root / "current" / "d").mkdir()
    with QuiesceResponder(root).running_in_thread():
        first = await snapshot(wvs, "reach")
        (root / "current" / "f.txt").write_text("v2, the work a rollback must keep")
        held = os.open(root / "current" / "f.txt", os.O_WRONLY)  # held across the rollback
        directory = os.open(root / "current" / "d", os.O_RDONLY | os.O_DIRECTORY)
        os.link(root / "current" / "f.txt", root / "stash-link")
        try:
            task = await set_current(wvs, "reach", first)
            assert task["status"] == "SUCCEEDED", task
            kept = snapshots_dir(wvs.mount_path, "reach") / task["result"]["kept_snapshot_id"]
            kept_before = tree_signature(kept)
            os.write(held, b"TAMPERED through a descriptor")
            linked = os.open(root / "stash-link", os.O_WRONLY | os.O_APPEND)
            os.write(linked, b"TAMPERED through a hard link")
            os.close(linked)
            with contextlib.suppress(FileNotFoundError):  # the replaced tree is gone: its directories too
                os.close(os.open("planted", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=directory))
        finally:
            os.close(held)
            os.close(directory)
        assert tree_signature(kept) == kept_before, "the kept snapshot changed after it was sealed"
        assert (kept / "f.txt").read_text() == "v2, the work a rollback must keep"
        assert not (kept / "d" / "planted").exists()
        restored = await set_current(wvs, "reach", task["result"]["kept_snapshot_id"])
        assert restored["status"] == "SUCCEEDED", restored
    assert (root / "current" / "f.txt").read_text() == "v2, the work a rollback must keep"


async def test_set_current_is_quiesced_and_fails_closed(database, mount, start_service) -> None:
    config = make_config(database, mount, executor={"quiesce_timeout": "1s"}, worker={"retry_base": "60s"})
    service = await start_service(config)
    async with httpx.AsyncClient(base_url=service.api_url or "") as client:
        await create_workspace(client, "roll-closed")
        root = mount / "roll-closed"
        freezes: list[str] = []
        with QuiesceResponder(root, on_freeze=lambda: freezes.append("frozen")).running_in_thread():
            first = await snapshot(client, "roll-closed")
            (root / "current" / "x").write_text("x")
            second = await snapshot(client, "roll-closed")
            assert (await set_current(client, "roll-closed", first))["status"] == "SUCCEEDED"
        assert len(freezes) == 3, "both snapshots and the rollback froze the agent"
        current_before = (root / "current").resolve()
        lives_before = sorted((root / "live").iterdir())
        # No agent any more: the rollback must not happen.
        response = await client.post(
            "/v1/workspaces/roll-closed/current:set", json={"snapshot_id": second}, headers=key()
        )
        task = await wait_task(client, response.json()["task_id"], until={"FAILED", "DEAD"})
    assert task["error"]["reason"] == "QUIESCE_TIMEOUT"
    assert (root / "current").resolve() == current_before
    assert sorted((root / "live").iterdir()) == lives_before, "fail-closed: no tree was cloned"
    assert json.loads((root / ".wvs" / "control.json").read_text())["state"] == "REQUEST_RESUME"


async def test_drop_removes_the_snapshot_and_refuses_what_is_in_use(wvs) -> None:
    await create_workspace(wvs, "dropper")
    root: Path = wvs.mount_path / "dropper"
    with QuiesceResponder(root).running_in_thread():
        keep = await snapshot(wvs, "dropper", "keep")
        gone = await snapshot(wvs, "dropper", "gone")
        assert (await set_current(wvs, "dropper", keep))["status"] == "SUCCEEDED"

    in_use = await wvs.delete(f"/v1/workspaces/dropper/snapshots/{keep}", headers=key())
    assert in_use.status_code == 409 and in_use.json()["error"]["code"] == "WVS_CONFLICT_SNAPSHOT_IN_USE"

    response = await wvs.delete(f"/v1/workspaces/dropper/snapshots/{gone}", headers=key())
    assert response.status_code == 202 and response.json()["status"] == "PENDING"
    task = await wait_task(wvs, response.json()["task_id"])
    assert task["status"] == "SUCCEEDED"
    items = (await wvs.get("/v1/workspaces/dropper/snapshots")).json()["items"]
    assert [s["snapshot_id"] for s in items if s["labels"] != {"auto": "before-rollback"}] == [keep]
    assert len(items) == 2, "and the tree the rollback replaced"
    assert not (snapshots_dir(root.parent, root.name) / gone).exists()
    assert not (snapshots_dir(root.parent, root.name) / f"{gone}.json").exists()
    assert snapshot_is_complete(root.parent, root.name, keep)

    again = await wvs.delete(f"/v1/workspaces/dropper/snapshots/{gone}", headers=key())
    assert again.status_code == 404 and again.json()["error"]["code"] == "WVS_NOT_FOUND"
    unknown = await wvs.post("/v1/workspaces/dropper/current:set", json={"snapshot_id": gone}, headers=key())
    assert unknown.status_code == 404


async def test_drop_racing_set_current_never_leaves_current_on_a_deleted_tree(wvs) -> None:
    await create_workspace(wvs, "racer")
    root: Path = wvs.mount_path / "racer"
    with QuiesceResponder(root).running_in_thread():
        snapshots = [await snapshot(wvs, "racer", f"s{n}") for n in range(4)]
        for round_number in range(12):
            target = snapshots[round_number % len(snapshots)]
            victim = snapshots[(round_number + 1) % len(snapshots)]
            results = await asyncio.gather(
                wvs.post("/v1/workspaces/racer/current:set", json={"snapshot_id": target}, headers=key()),
                wvs.delete(f"/v1/workspaces/racer/snapshots/{target}", headers=key()),
                wvs.delete(f"/v1/workspaces/racer/snapshots/{victim}", headers=key()),
            )
            tasks = [await wait_task(wvs, r.json()["task_id"]) for r in results if r.status_code == 202]
            for response in results:
                assert response.status_code in (202, 404, 409), response.text
            current = (await wvs.get("/v1/workspaces/racer/current")).json()
            listed = {s["snapshot_id"] for s in (await wvs.get("/v1/workspaces/racer/snapshots")).json()["items"]}
            if current["current_snapshot_id"] is not None:
                assert current["current_snapshot_id"] in listed, f"round {round_number}: current is a deleted snapshot"
            assert (root / "current").resolve() == Path(current["current_path"])
            assert (root / "current").resolve().is_dir()
            for snapshot_id in snapshots:
                on_disk = snapshot_is_complete(root.parent, root.name, snapshot_id)
                assert on_disk == (snapshot_id in listed), (
                    f"round {round_number}: {snapshot_id} listed={snapshot_id in listed}"
                )
            for task in tasks:
                assert task["status"] in ("SUCCEEDED", "DEAD"), task
            if victim not in listed:  # keep the game going: replace what was dropped
                snapshots[snapshots.index(victim)] = await snapshot(wvs, "racer", "refill")
            if target not in listed:
                snapshots[snapshots.index(target)] = await snapshot(wvs, "racer", "refill")
