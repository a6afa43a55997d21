"""wvs fsck: finds every kind of disagreement between the database and the disk, repairs the safe ones
with --fix, deletes possible user data only with --prune, and reports clean afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import create_async_engine

from tests.helpers import create_workspace, key, snapshots_dir, wait_task
from wvs_controlfile import QuiesceResponder
from wvs_core.cli.wvs import cli
from wvs_core.db.engine import async_dsn
from wvs_core.ids import uuid7


async def fsck(config_file: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["fsck", "--config", str(config_file), "--json", *args])
    return result.exit_code, json.loads(result.output)


async def test_fsck_finds_fixes_and_prunes(wvs, database: str, tmp_path: Path) -> None:
    mount: Path = wvs.mount_path
    config_file = tmp_path / "wvs.toml"
    config_file.write_text(f'[database]\ndsn = "{database}"\n[executor]\nmount_path = "{mount}"\n')
    await create_workspace(wvs, "checked")
    root = mount / "checked"
    (root / "current" / "f.txt").write_text("v1")
    snapshot_ids = []
    with QuiesceResponder(root).running_in_thread():
        for _ in range(3):
            accepted = (await wvs.post("/v1/workspaces/checked/snapshots", json={}, headers=key())).json()
            assert (await wait_task(wvs, accepted["task_id"]))["status"] == "SUCCEEDED"
            snapshot_ids.append(accepted["snapshot_id"])
        retired = (root / "current").resolve()  # the first live tree: the rollback keeps it as a snapshot
        rollback = await wvs.post(
            "/v1/workspaces/checked/current:set", json={"snapshot_id": snapshot_ids[0]}, headers=key()
        )
        assert (await wait_task(wvs, rollback.json()["task_id"]))["status"] == "SUCCEEDED"
    code, report = await fsck(config_file)
    assert code == 0 and report["clean"] and report["findings"] == [] and report["checked"] == ["checked"]

    # Damage, as crashes and hands would leave it.
    retired.mkdir()  # a tree the init task made current, back in the view
    snapshots = snapshots_dir(mount, "checked")
    (snapshots.parent.parent / "tmp" / "checked" / f"snapshot-{uuid7()}").mkdir()
    (snapshots.parent.parent / "tmp" / "checked" / f"live-{uuid7()}").mkdir()
    (root / ".current.wvs-tmp").symlink_to("live/nowhere")  # a switch of current cut short
    control = json.loads((root / ".wvs" / "control.json").read_text())
    (root / ".wvs" / "control.json").write_text(json.dumps({**control, "state": "FROZEN"}))
    shutil.rmtree(snapshots / snapshot_ids[1])  # the database still lists it
    unknown = uuid7()
    shutil.copytree(snapshots / snapshot_ids[2], snapshots / unknown, symlinks=True)
    metadata = json.loads((snapshots / f"{snapshot_ids[2]}.json").read_text())
    (snapshots / f"{unknown}.json").write_text(json.dumps({**metadata, "snapshot_id": unknown}))
    (snapshots / uuid7()).mkdir()  # half-made: no metadata file
    never_current = root / "live" / uuid7()
    never_current.mkdir()
    os.replace(root / "current", root / "current.bak")
    (root / "current").symlink_to(f"live/{retired.name}")  # someone switched current by hand
    os.remove(root / "current.bak")
    (mount / "not-in-the-db").mkdir()

    code, report = await fsck(config_file)
    kinds = sorted(f["kind"] for f in report["findings"])
    assert code == 1 and not report["clean"]
    assert kinds == sorted(
        ["crash_leftover"] * 4
        + [
            "snapshot_missing_on_disk",
            "snapshot_unknown_to_db",
            "incomplete_snapshot",
            "live_tree_never_current",
            "current_mismatch",
            "workspace_unknown_to_db",
        ]
    )
    assert not any(f["fixed"] for f in report["findings"])

    code, report = await fsck(config_file, "--fix")
    left = sorted(f["kind"] for f in report["findings"] if not f["fixed"])
    assert code == 1 and left == ["live_tree_never_current", "snapshot_unknown_to_db", "workspace_unknown_to_db"]
    assert (snapshots / unknown).is_dir() and never_current.is_dir(), "no data deleted without --prune"
    assert json.loads((root / ".wvs" / "control.json").read_text())["state"] == "REQUEST_RESUME"
    listed = [s["snapshot_id"] for s in (await wvs.get("/v1/workspaces/checked/snapshots")).json()["items"]]
    assert snapshot_ids[1] not in listed
    assert (await wvs.get("/v1/workspaces/checked/current")).json()["current_path"] == str(retired)

    code, report = await fsck(config_file, "--fix", "--prune", "checked")
    assert code == 0 and report["clean"]
    assert not (snapshots / unknown).exists() and not never_current.exists()
    (mount / "not-in-the-db").rmdir()
    code, report = await fsck(config_file)
    assert code == 0 and report["findings"] == []


async def test_fsck_where_no_volume_is_mounted_says_so_and_creates_nothing(database: str, tmp_path: Path) -> None:
    empty = tmp_path / "not-a-volume"
    empty.mkdir()
    config_file = tmp_path / "wvs.toml"
    config_file.write_text(f'[database]\ndsn = "{database}"\n[executor]\nmount_path = "{empty}"\n')
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["fsck", "--config", str(config_file), "--fix"])
    assert result.exit_code == 2, "could not start: not 1, an inconsistency"
    assert result.output.strip() == (
        f"Error: no WVS area at {empty}/.wvs: is the volume mounted at {empty}? "
        "Set executor.mount_path (EXECUTOR_MOUNT_PATH) to where it is"
    )
    assert list(empty.iterdir()) == []


async def test_fsck_without_its_database_is_one_line_naming_the_setting(mount: Path, tmp_path: Path) -> None:
    (mount / ".wvs").mkdir()  # a WVS volume, so the database is what is missing
    config_file = tmp_path / "wvs.toml"
    dsn = f"postgresql+asyncpg://postgres@/wvs?host={tmp_path / 'no-server-here'}"
    config_file.write_text(f'[database]\ndsn = "{dsn}"\n[executor]\nmount_path = "{mount}"\n')
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["fsck", "--config", str(config_file)])
    assert result.exit_code == 2, "could not start: not 1, an inconsistency"
    assert result.output.startswith("Error: cannot reach the database at database.dsn (WVS_DB_DSN)")
    assert "Traceback" not in result.output and len(result.output.splitlines()) == 1


async def test_fsck_of_a_workspace_that_does_not_exist_is_an_error(wvs, database: str, tmp_path: Path) -> None:
    config_file = tmp_path / "wvs.toml"
    config_file.write_text(f'[database]\ndsn = "{database}"\n[executor]\nmount_path = "{wvs.mount_path}"\n')
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["fsck", "--config", str(config_file), "nosuch"])
    assert result.exit_code == 2, "nothing checked: not 0 (clean), not 1 (an inconsistency)"
    assert result.output == f"Error: no workspace 'nosuch': neither in the database nor at {wvs.mount_path}\n"


async def test_fsck_never_removes_a_tree_a_rollback_kept(wvs, database: str, tmp_path: Path) -> None:
    """A keep cut short between its rename and its seal leaves the replaced tree in the snapshot area without
    metadata (and without a row until the task's re-run): fsck seals it with --fix and removes it never, not
    even with --prune."""
    mount: Path = wvs.mount_path
    config_file = tmp_path / "wvs.toml"
    config_file.write_text(f'[database]\ndsn = "{database}"\n[executor]\nmount_path = "{mount}"\n')
    await create_workspace(wvs, "keeper")
    root = mount / "keeper"
    (root / "current" / "work.txt").write_text("the work a rollback replaces")
    with QuiesceResponder(root).running_in_thread():
        accepted = (await wvs.post("/v1/workspaces/keeper/snapshots", json={}, headers=key())).json()
        assert (await wait_task(wvs, accepted["task_id"]))["status"] == "SUCCEEDED"
        rollback = await wvs.post(
            "/v1/workspaces/keeper/current:set", json={"snapshot_id": accepted["snapshot_id"]}, headers=key()
        )
        task = await wait_task(wvs, rollback.json()["task_id"])
    kept = task["result"]["kept_snapshot_id"]
    snapshots = snapshots_dir(mount, "keeper")
    metadata = json.loads((snapshots / f"{kept}.json").read_text())
    (snapshots / f"{kept}.json").unlink()  # as a kill -9 between the rename and the seal leaves it
    engine = create_async_engine(async_dsn(database))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM wvs.snapshots WHERE snapshot_id = :s"), {"s": kept})
    finally:
        await engine.dispose()

    code, report = await fsck(config_file, "--prune")
    assert code == 1
    assert [f["kind"] for f in report["findings"]] == ["kept_tree_unsealed"] and not report["findings"][0]["fixed"]
    assert (snapshots / kept / "work.txt").read_text() == "the work a rollback replaces", "never removed"
    code, report = await fsck(config_file, "--fix", "--prune")
    assert code == 0
    assert [(f["kind"], f["fixed"]) for f in report["findings"]] == [("kept_tree_unsealed", True)]
    sealed = json.loads((snapshots / f"{kept}.json").read_text())
    assert {k: sealed[k] for k in ("message", "labels")} == {k: metadata[k] for k in ("message", "labels")}
    code, report = await fsck(config_file, "--fix", "--prune")
    assert code == 1
    assert [(f["kind"], f["repair"]) for f in report["findings"]] == [("kept_tree_unrecorded", "manual")]
    assert (snapshots / kept / "work.txt").exists(), "a sealed kept tree without its row is left to a person"
