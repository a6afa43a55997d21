"""Regressions of the red-team review: each attack that once worked, as it was run. The decoy outside the
volume must come through byte for byte, and nothing may hang."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.conftest import StartService, make_config
from tests.helpers import create_workspace, key, snapshots_dir, tree_signature, wait_task
from wvs_controlfile import QuiesceResponder
from wvs_core.cli.wvs import cli
from wvs_core.config import config_from_dict
from wvs_core.errors import ConfigError
from wvs_core.ids import uuid7
from wvs_core.plugins import PluginRegistry
from wvs_executor.runner import OpRunner


@pytest.fixture
def decoy(tmp_path: Path) -> Path:
    """A directory outside the volume with a file root could be tricked into writing."""
    path = tmp_path / "decoy"
    path.mkdir()
    (path / "victim.txt").write_text("must never change\n")
    (path / "snapshot.json").write_text("{}")
    return path


async def fsck(config_file: Path, *args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["fsck", "--config", str(config_file), *args])
    return result.exit_code, result.output


def config_file(tmp_path: Path, database: str, mount: Path) -> Path:
    path = tmp_path / "wvs.toml"
    path.write_text(f'[database]\ndsn = "{database}"\n[executor]\nmount_path = "{mount}"\n')
    return path


async def test_a_planted_jfs_control_is_never_written_by_a_rollback_cleanup(
    database: str, mount: Path, decoy: Path, start_service: StartService
) -> None:
    """F1(b): at the freeze the agent plants live/.jfs.control → decoy and makes current a directory."""
    before = tree_signature(decoy)
    service = await start_service(make_config(database, mount, executor={"quiesce_timeout": "5s"}))
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        await create_workspace(client, "planter")
        root = mount / "planter"
        with QuiesceResponder(root).running_in_thread():
            snap = (await client.post("/v1/workspaces/planter/snapshots", json={}, headers=key())).json()
            assert (await wait_task(client, snap["task_id"]))["status"] == "SUCCEEDED"

        def plant() -> None:
            os.symlink(decoy / "victim.txt", root / "live" / ".jfs.control")
            live = os.readlink(root / "current")
            os.unlink(root / "current")
            (root / "current").mkdir()
            (root / "current" / "was").write_text(live)

        with QuiesceResponder(root, on_freeze=plant).running_in_thread():
            started = time.monotonic()
            rollback = await client.post(
                "/v1/workspaces/planter/current:set", json={"snapshot_id": snap["snapshot_id"]}, headers=key()
            )
            task = await wait_task(client, rollback.json()["task_id"])
    assert task["status"] == "DEAD" and task["error"]["reason"] == "WORKSPACE_TAMPERED", task
    assert time.monotonic() - started < 20, "the cleanup hung"
    assert tree_signature(decoy) == before
    new_live = task["params"]["new_live_id"]
    assert not (root / "live" / new_live).exists(), "the tree that never became current is removed"


async def test_fsck_prune_never_writes_a_planted_jfs_control(wvs, database: str, decoy: Path, tmp_path: Path) -> None:
    """F1(a): a never-current live tree beside live/.jfs.control → decoy, then fsck --fix --prune."""
    before = tree_signature(decoy)
    await create_workspace(wvs, "pruned")
    root = wvs.mount_path / "pruned"
    stray = root / "live" / uuid7()
    stray.mkdir()
    (stray / "data").write_text("x")
    os.symlink(decoy / "victim.txt", root / "live" / ".jfs.control")
    started = time.monotonic()
    code, output = await fsck(config_file(tmp_path, database, wvs.mount_path), "--fix", "--prune")
    assert time.monotonic() - started < 20 and code == 0, output
    assert not stray.exists()
    assert tree_signature(decoy) == before


async def test_the_layout_migration_never_follows_a_link_in_an_old_snapshot_and_goes_on_past_a_bad_one(
    wvs, database: str, decoy: Path, tmp_path: Path
) -> None:
    """F3/F4: an old-layout snapshot whose .wvs is a link to the decoy, one whose snapshot.json is a
    60,000-deep JSON, and a good one in another workspace: the decoy stays, the good one is migrated."""
    mount: Path = wvs.mount_path
    before = tree_signature(decoy)
    await create_workspace(wvs, "sly")
    await create_workspace(wvs, "honest")
    linked, deep = uuid7(), uuid7()
    (mount / "sly" / "snapshots" / linked).mkdir(parents=True)
    os.symlink(decoy, mount / "sly" / "snapshots" / linked / ".wvs")
    (mount / "sly" / "snapshots" / deep / ".wvs").mkdir(parents=True)
    (mount / "sly" / "snapshots" / deep / ".wvs" / "snapshot.json").write_text("[" * 60000)
    good = uuid7()
    (mount / "honest" / "snapshots" / good / ".wvs").mkdir(parents=True)
    (mount / "honest" / "snapshots" / good / "file").write_text("kept\n")
    metadata = {"snapshot_id": good, "wsid": "honest", "message": "m", "source_had_wvs_dir": False}
    (mount / "honest" / "snapshots" / good / ".wvs" / "snapshot.json").write_text(json.dumps(metadata))

    code, output = await fsck(config_file(tmp_path, database, mount), "--migrate-layout", "--json")
    assert "Traceback" not in output
    assert tree_signature(decoy) == before
    assert (snapshots_dir(mount, "honest") / good / "file").read_text() == "kept\n"
    assert not (snapshots_dir(mount, "honest") / good / ".wvs").exists()
    assert not (mount / "sly" / "snapshots").exists() and not (mount / "honest" / "snapshots").exists()
    left = [(f["wsid"], f["kind"]) for f in json.loads(output)["findings"] if not f["fixed"]]
    assert left == [("honest", "snapshot_unknown_to_db")], "made by hand here, so no row knows it; nothing else left"
    assert code == 1


async def test_an_area_or_view_wvs_did_not_make_is_refused(
    database: str, mount: Path, start_service: StartService
) -> None:
    """F5: a local user who made <mount>/.wvs (or a future workspace's view) before WVS did gets nothing."""
    (mount / ".wvs").mkdir(mode=0o777)
    os.chown(mount / ".wvs", 65534, 65534)
    config = config_from_dict({"executor": {"mount_path": str(mount)}})
    with pytest.raises(ConfigError, match="is not as WVS makes it"):
        OpRunner(config, PluginRegistry.load(config.plugins))
    shutil.rmtree(mount / ".wvs")

    (mount / "squatted").mkdir()
    os.chown(mount / "squatted", 65534, 65534)
    service = await start_service(make_config(database, mount))
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        created = await client.post("/v1/workspaces", json={"wsid": "squatted", "owner": "o"}, headers=key())
        task = await wait_task(client, created.json()["init_task_id"])
        assert task["status"] == "DEAD" and task["error"]["reason"] == "WORKSPACE_TAMPERED"
        assert (await client.get("/v1/workspaces/squatted")).json()["state"] == "INIT_FAILED"
        await create_workspace(client, "private")
    assert os.stat(mount / "private").st_mode & 0o777 == 0o700
    assert os.stat(mount).st_mode & 0o022 == 0, "no one else may create names beside the views"
    peek = await asyncio.to_thread(
        subprocess.run,
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "ls", str(mount / "private" / "current")],
        capture_output=True,
    )
    assert peek.returncode != 0, "another user of the host reads no workspace"
