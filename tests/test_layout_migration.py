"""``wvs fsck --migrate-layout``: a volume written by the earlier layout (snapshots inside the agent views,
WVS's ``.wvs/snapshot.json`` inside each tree, locks in ``<mount>/.wvs-locks``) moves to SPEC §1's with every
snapshot, its metadata and ``current`` intact; a migration interrupted at any step finishes when run again,
and running it twice changes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import StartService, make_config
from tests.helpers import create_workspace, key, populate_tree, snapshots_dir, tree_signature, wait_task
from wvs_controlfile import QuiesceResponder
from wvs_core.cli.wvs import cli
from wvs_core.ids import uuid7
from wvs_core.layout import VolumeLayout, WorkspaceLayout


async def fsck(config_file: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["fsck", "--config", str(config_file), "--json", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, json.loads(result.output)


async def set_fs_path(database: str, snapshot_id: str, fs_path: str) -> None:
    engine = create_async_engine(database)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("UPDATE wvs.snapshots SET fs_path = :p WHERE snapshot_id = :s"),
                {"p": fs_path, "s": snapshot_id},
            )
    finally:
        await engine.dispose()


def to_old_layout(mount: Path, wsid: str, snapshot_id: str, had_wvs_dir: bool) -> Path:
    """Put one snapshot where and how the earlier layout kept it (its ``seal_snapshot``): the tree under
    ``<root>/snapshots/``, ``.wvs/snapshot.json`` written inside it, the times of the tree kept."""
    layout = WorkspaceLayout(mount, wsid)
    metadata = json.loads(layout.snapshot_metadata(snapshot_id).read_text())
    old = layout.root / "snapshots" / snapshot_id
    old.parent.mkdir(exist_ok=True)
    os.rename(layout.snapshot(snapshot_id), old)
    layout.snapshot_metadata(snapshot_id).unlink()
    times = {p: os.lstat(p) for p in (old, old / ".wvs") if os.path.lexists(p)}
    (old / ".wvs").mkdir(exist_ok=True)
    (old / ".wvs" / "snapshot.json").write_text(json.dumps({**metadata, "source_had_wvs_dir": had_wvs_dir}))
    for path, info in times.items():
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    return old


async def test_a_volume_of_the_earlier_layout_is_migrated_whole(
    database: str, mount: Path, tmp_path: Path, start_service: StartService
) -> None:
    config = make_config(database, mount)
    config_file = tmp_path / "wvs.toml"
    config_file.write_text(f'[database]\ndsn = "{database}"\n[executor]\nmount_path = "{mount}"\n')
    service = await start_service(config)
    root = mount / "legacy"
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        await create_workspace(client, "legacy")
        populate_tree(root / "current")
        snapshot_ids, expected = [], {}
        with QuiesceResponder(root).running_in_thread():
            for message in ("plain tree", "the agent's own .wvs directory"):
                if snapshot_ids:
                    (root / "current" / ".wvs").mkdir()
                    (root / "current" / ".wvs" / "agent-notes").write_text("the agent's, not WVS's")
                accepted = (
                    await client.post("/v1/workspaces/legacy/snapshots", json={"message": message}, headers=key())
                ).json()
                assert (await wait_task(client, accepted["task_id"]))["status"] == "SUCCEEDED"
                snapshot_ids.append(accepted["snapshot_id"])
                expected[accepted["snapshot_id"]] = tree_signature(snapshots_dir(mount, "legacy") / snapshot_ids[-1])
    await service.stop()
    current = tree_signature(root / "current")

    # The volume as the earlier layout wrote it, with what a crash of it could leave behind.
    for snapshot_id, had_wvs_dir in zip(snapshot_ids, (False, True), strict=True):
        old = to_old_layout(mount, "legacy", snapshot_id, had_wvs_dir)
        await set_fs_path(database, snapshot_id, str(old))
    (root / "snapshots" / f".tmp-{uuid7()}").mkdir()
    (root / "live" / f".tmp-{uuid7()}").mkdir()
    (root / "snapshots" / uuid7()).mkdir()  # a half-made snapshot: no snapshot.json
    shutil.rmtree(mount / ".wvs")
    (mount / ".wvs-locks").mkdir()
    (mount / ".wvs-locks" / "legacy.lock").touch()
    # An interrupted earlier run of the migration: the first snapshot's copy half made.
    VolumeLayout(mount).ensure_area()
    half = WorkspaceLayout(mount, "legacy").tmp_dir / f"migrate-{snapshot_ids[0]}"
    half.mkdir(parents=True)
    (half / "partial").write_text("x")

    code, report = await fsck(config_file, "--migrate-layout")
    assert code == 0 and report["clean"], report
    assert sum(f["kind"] == "migrated" for f in report["findings"]) == 6  # 2 snapshots, 3 leftovers, the locks
    assert sorted(os.listdir(root)) == [".wvs", "current", "live"]
    assert not (mount / ".wvs-locks").exists()
    for snapshot_id in snapshot_ids:
        assert tree_signature(snapshots_dir(mount, "legacy") / snapshot_id) == expected[snapshot_id]
    assert tree_signature(root / "current") == current
    assert (snapshots_dir(mount, "legacy") / snapshot_ids[1] / ".wvs" / "agent-notes").is_file()

    code, again = await fsck(config_file, "--migrate-layout")
    assert code == 0 and again["findings"] == [], "a second run changes nothing"

    service = await start_service(config)
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        listed = (await client.get("/v1/workspaces/legacy/snapshots")).json()["items"]
        assert {item["snapshot_id"]: item["fs_path"] for item in listed} == {
            s: str(snapshots_dir(mount, "legacy") / s) for s in snapshot_ids
        }
        assert {item["message"] for item in listed} == {"plain tree", "the agent's own .wvs directory"}
        with QuiesceResponder(root).running_in_thread():
            rollback = await client.post(
                "/v1/workspaces/legacy/current:set", json={"snapshot_id": snapshot_ids[0]}, headers=key()
            )
            assert (await wait_task(client, rollback.json()["task_id"]))["status"] == "SUCCEEDED"
    assert tree_signature(root / "current") == expected[snapshot_ids[0]]
    code, report = await fsck(config_file)
    assert code == 0 and report["findings"] == [], report
