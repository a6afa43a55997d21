"""restore_paths end to end on JuiceFS: some paths of current put back from a snapshot, the rest untouched, the
replaced tree kept; hostile paths refused at submission; links planted on the way never followed."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.helpers import create_workspace, key, snapshot_is_complete, snapshots_dir, tree_signature, wait_task
from wvs_controlfile import QuiesceResponder
from wvs_core.cli.wvsctl import cli
from wvs_core.config import config_from_dict
from wvs_core.ids import uuid7
from wvs_core.models import ExecutionRequest
from wvs_core.plugins import PluginRegistry, make_plugin_manager
from wvs_core.storage import StorageBackend, StorageError
from wvs_executor.runner import OpRunner
from wvs_juicefs.backend import JuiceFSBackend
from wvs_restore.paths import check_paths, outermost


async def snapshot(wvs: Any, wsid: str) -> str:
    accepted = (await wvs.post(f"/v1/workspaces/{wsid}/snapshots", json={}, headers=key())).json()
    assert (await wait_task(wvs, accepted["task_id"]))["status"] == "SUCCEEDED"
    return str(accepted["snapshot_id"])


async def restore(wvs: Any, wsid: str, snapshot_id: str, paths: list[str]) -> dict[str, Any]:
    body = {"op": "restore_paths", "params": {"snapshot_id": snapshot_id, "paths": paths}}
    response = await wvs.post(f"/v1/workspaces/{wsid}/tasks", json=body, headers=key())
    assert response.status_code == 202, response.text
    return await wait_task(wvs, response.json()["task_id"], until={"SUCCEEDED", "DEAD"})


async def test_restore_paths_puts_back_files_directories_and_removes_what_the_snapshot_lacks(wvs: Any) -> None:
    await create_workspace(wvs, "restorer")
    root: Path = wvs.mount_path / "restorer"
    current = root / "current"
    (current / "src" / "pkg").mkdir(parents=True)
    (current / "src" / "pkg" / "main.py").write_text("good main")
    (current / "src" / "util.py").write_text("good util")
    (current / "docs").mkdir()
    (current / "docs" / "deep").mkdir()
    (current / "docs" / "deep" / "a.md").write_text("a")
    (current / "keep.txt").write_text("v1")
    with QuiesceResponder(root).running_in_thread():
        snapshot_id = await snapshot(wvs, "restorer")
        expected = tree_signature(current)
        (current / "src" / "pkg" / "main.py").write_text("broken main")
        (current / "src" / "util.py").write_text("broken util")
        (current / "keep.txt").write_text("v2: not restored")
        (current / "junk.txt").write_text("made after the snapshot")
        import shutil

        shutil.rmtree(current / "docs")
        before = tree_signature(current)
        task = await restore(wvs, "restorer", snapshot_id, ["src/pkg", "src/util.py", "junk.txt", "docs/deep/a.md"])
    assert task["status"] == "SUCCEEDED", task
    after = tree_signature(current)
    for path in ("src/pkg", "src/pkg/main.py", "src/util.py", "docs/deep/a.md"):
        assert after[path] == expected[path], path
    assert (current / "keep.txt").read_text() == "v2: not restored", "other paths untouched"
    assert not (current / "junk.txt").exists(), "a path the snapshot lacks is removed"
    kept = task["result"]["kept_snapshot_id"]
    assert snapshot_is_complete(wvs.mount_path, "restorer", kept)
    assert tree_signature(snapshots_dir(wvs.mount_path, "restorer") / kept) == before, "nothing lost"
    state = (await wvs.get("/v1/workspaces/restorer/current")).json()
    assert state["current_path"] == str(current.resolve()) and state["current_snapshot_id"] is None
    listed = (await wvs.get("/v1/workspaces/restorer/snapshots")).json()["items"]
    assert {s["snapshot_id"]: s["labels"] for s in listed}[kept] == {"auto": "before-rollback"}


@pytest.mark.parametrize(
    "paths",
    [
        [],
        [""],
        ["/etc/passwd"],
        ["a/../b"],
        [".."],
        ["./a"],
        ["a/"],
        ["a//b"],
        ["a\u0000b"],
        ["x" * 5000],
        ["a" * 256],
        ["ok/" + "é" * 128],
        ["a"] * 257,
        [1],
        "src",
        {"src": "x"},
    ],
    ids=lambda p: repr(p)[:30],
)
async def test_hostile_paths_are_refused_at_submission(wvs: Any, paths: Any) -> None:
    await create_workspace(wvs, "pathcheck")
    body = {"op": "restore_paths", "params": {"snapshot_id": "01a22e9d-f2ac-7539-a75b-dbb6a8a22660", "paths": paths}}
    response = await wvs.post("/v1/workspaces/pathcheck/tasks", json=body, headers=key())
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "WVS_BAD_REQUEST"


async def test_a_link_planted_on_the_way_is_never_followed(wvs: Any) -> None:
    """Between submit and run the agent swaps a directory on the way for a link to another workspace's tree:
    the op dies (PATH_THROUGH_LINK), current is untouched, the other workspace is unchanged."""
    await create_workspace(wvs, "victim-r")
    await create_workspace(wvs, "attack-r")
    victim = wvs.mount_path / "victim-r" / "current"
    (victim / "secret.txt").write_text("the victim's")
    victim_before = tree_signature(victim)
    root = wvs.mount_path / "attack-r"
    (root / "current" / "src").mkdir()
    (root / "current" / "src" / "f.txt").write_text("mine")
    with QuiesceResponder(root).running_in_thread():
        snapshot_id = await snapshot(wvs, "attack-r")
        (root / "current" / "src" / "f.txt").unlink()
        (root / "current" / "src").rmdir()
        (root / "current" / "src").symlink_to(victim.resolve())
        replaced = (root / "current").resolve()
        task = await restore(wvs, "attack-r", snapshot_id, ["src/f.txt", "src/secret.txt"])
    assert task["status"] == "DEAD" and task["error"]["reason"] == "PATH_THROUGH_LINK", task
    assert (root / "current").resolve() == replaced
    assert tree_signature(victim) == victim_before
    assert (await wvs.get("/v1/workspaces/victim-r/current")).json()["current_path"] == str(victim.resolve())


async def test_wvsctl_snapshot_restore_puts_paths_back_through_the_named_route(wvs: Any) -> None:
    make_plugin_manager().hook.wvs_register_ctl_commands(cli=cli)  # as wvsctl starts
    await create_workspace(wvs, "ctl-restore")
    root: Path = wvs.mount_path / "ctl-restore"
    current = root / "current"
    (current / "a.txt").write_text("snapshotted a")
    (current / "b.txt").write_text("snapshotted b")

    async def wvsctl(*args: str) -> Result:
        return await asyncio.to_thread(CliRunner().invoke, cli, ["--api-url", str(wvs.base_url), *args])

    with QuiesceResponder(root).running_in_thread():
        snapshot_id = await snapshot(wvs, "ctl-restore")
        (current / "a.txt").write_text("changed a")
        (current / "b.txt").write_text("changed b")
        done = await wvsctl("snapshot", "restore", "ctl-restore", snapshot_id, "a.txt", "--wait", "--json")
    assert done.exit_code == 0, done.output
    task = json.loads(done.stdout)
    assert task["status"] == "SUCCEEDED" and task["op"] == "restore_paths"
    assert (current / "a.txt").read_text() == "snapshotted a" and (current / "b.txt").read_text() == "changed b"
    refused = await wvsctl("snapshot", "restore", "ctl-restore", snapshot_id, "../x")
    assert refused.exit_code != 0 and "WVS_BAD_REQUEST" in refused.output
    assert (await wvsctl("snapshot", "restore", "ctl-restore", snapshot_id)).exit_code == 2, "PATH... is required"


@pytest.mark.parametrize("storage", ["juicefs", "localfs"])
async def test_restoring_one_file_of_a_large_directory_clones_that_file_alone(mount: Path, storage: str) -> None:
    """What the restore stages is observed at its ``staged`` step: the file's clone and nothing else of its
    directory (500 siblings), whatever the backend; a link is staged as the link."""
    seen: dict[str, dict[str, tuple[Any, ...]]] = {}

    def look(step: str) -> None:
        if step == "staged":
            (staging,) = (mount / ".wvs" / "tmp" / "wide").glob("restore-*")
            seen[step] = tree_signature(staging)

    config = config_from_dict(
        {"executor": {"mount_path": str(mount)}, "plugins": {"storage": storage, "quiesce": "none"}}
    )
    runner = OpRunner(config, PluginRegistry.load(config.plugins), on_step=look)

    async def run(op: str, **params: Any) -> dict[str, str]:
        result = await runner.run(ExecutionRequest(task_id=uuid7(), wsid="wide", op=op.upper(), params=params))
        assert result.success, result
        return dict(result.results)

    live_id = uuid7()
    await run("init_workspace", live_id=live_id)
    big = mount / "wide" / "live" / live_id / "big"
    big.mkdir()
    for n in range(500):
        (big / f"sibling-{n:04}").write_text(str(n))
    (big / "wanted.txt").write_text("the snapshot's")
    os.chmod(big / "wanted.txt", 0o640)
    (big / "link").symlink_to("wanted.txt")
    snapshot_id = uuid7()
    await run("snapshot_create", snapshot_id=snapshot_id, message=None)
    snapshotted = tree_signature(snapshots_dir(mount, "wide") / snapshot_id / "big")
    (big / "wanted.txt").write_text("the agent's, later")
    (big / "link").unlink()

    for path, entries in (("big/wanted.txt", 501), ("big/link", 502)):  # the link is back at the second
        current = await run(
            "restore_paths", snapshot_id=snapshot_id, paths=[path], new_live_id=uuid7(), kept_snapshot_id=uuid7()
        )
        name = path.split("/")[-1]
        assert seen.pop("staged") == {"0": snapshotted[name]}, "the one entry, exactly; no sibling"
        restored = tree_signature(Path(current["current_path"]) / "big")
        assert restored[name] == snapshotted[name] and len(restored) == entries
    assert os.readlink(mount / "wide" / "current" / "big" / "link") == "wanted.txt"


async def test_the_default_entry_clone_keeps_the_entry_alone_and_leaves_nothing_else(mount: Path) -> None:
    """``StorageBackend.clone_entry``'s default, for a backend that clones only trees: the parent is cloned beside
    the destination, the entry kept, the rest removed; a directory or a missing name is CLONE_FAILED."""
    backend = JuiceFSBackend({})
    source = mount / "src"
    source.mkdir()
    (source / "file").write_text("content")
    (source / "other").write_text("sibling")
    (source / "dir").mkdir()
    area = mount / "area"
    area.mkdir()
    parent = os.open(source, os.O_RDONLY | os.O_DIRECTORY)
    try:
        await StorageBackend.clone_entry(backend, parent, "file", area / "copy")
        for name in ("dir", "missing"):
            with pytest.raises(StorageError, match=r"is a directory|is not in"):
                await StorageBackend.clone_entry(backend, parent, name, area / name)
    finally:
        os.close(parent)
    assert sorted(os.listdir(area)) == ["copy"] and (area / "copy").read_text() == "content"
    assert tree_signature(area)["copy"] == tree_signature(source)["file"]


def test_the_deepest_paths_a_request_may_name_are_sorted_out_without_stalling_the_event_loop() -> None:
    """``outermost`` runs in the executor's and the scheduler's event loops: for 15 paths of 2,047 components (a
    61 KB body, under the API's limit) testing every ancestor took 4 s of each loop, stalling every workspace."""
    deep = "/".join(["a"] * 2046)
    paths = [f"{deep}/b{n:02}" for n in range(15)]
    check_paths(None, None, paths)  # the API accepts them
    started = time.perf_counter()
    assert outermost([*paths, deep, "a/b", "a"]) == ["a"]
    assert outermost(paths) == paths
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["a/b", "a", "a/b/c", "a"], ["a"]),
        (["a-b", "a/b", "a.b/c", "a"], ["a-b", "a.b/c", "a"]),  # '-' and '.' sort before '/'
        (["ab/c", "a/b", "ab"], ["a/b", "ab"]),
        (["x/y/z", "x/y", "w"], ["x/y", "w"]),
    ],
)
def test_outermost_keeps_the_order_and_drops_what_a_listed_directory_covers(
    paths: list[str], expected: list[str]
) -> None:
    assert outermost(paths) == expected
