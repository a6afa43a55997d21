"""restore_paths against a hostile agent on JuiceFS: special files, a hard link to another workspace's file, a
10 GB sparse file and links come back as they were, without WVS opening, following or copying any of them; a path
flipped between a directory and a link to another workspace while restores run never reaches that workspace; the
snapshot restored from never changes."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Any

from tests.helpers import create_workspace, in_flight, key, snapshots_dir, tree_signature, wait_task
from tests.test_restore_paths import restore, snapshot
from wvs_controlfile import QuiesceResponder
from wvs_core.treewalk import MAX_DEPTH

GIANT = 10 << 30


def replace_with_a_file(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    path.write_text("replaced")


async def test_special_files_links_and_a_sparse_giant_come_back_without_anything_outside_touched(wvs: Any) -> None:
    await create_workspace(wvs, "victim-s")
    await create_workspace(wvs, "attack-s")
    victim = wvs.mount_path / "victim-s" / "current"
    (victim / "secret.txt").write_text("the victim's")
    root = wvs.mount_path / "attack-s"
    current = root / "current"
    os.mkfifo(current / "fifo")
    os.mknod(current / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.link(victim / "secret.txt", current / "hard")  # the same volume: a name of the victim's inode
    (current / "link").symlink_to("/etc/shadow")
    (current / "up").symlink_to("../../victim-s/current")
    giant = os.open(current / "giant", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644)
    os.ftruncate(giant, GIANT)
    os.close(giant)
    (current / "d").mkdir()
    os.mkfifo(current / "d" / "f2")
    victim_before = tree_signature(victim)
    names = ["fifo", "null", "hard", "link", "up", "giant", "d"]
    with QuiesceResponder(root).running_in_thread():
        snapshot_id = await snapshot(wvs, "attack-s")
        kept = snapshots_dir(wvs.mount_path, "attack-s") / snapshot_id
        snapshot_before = tree_signature(kept, ignore=("giant",))  # its 10 GB of zeros are not read
        for name in names:
            replace_with_a_file(current / name)
        task = await restore(wvs, "attack-s", snapshot_id, [*names, "never-there"])
        assert task["status"] == "SUCCEEDED", task
        assert stat.S_ISFIFO(os.lstat(current / "fifo").st_mode) and stat.S_ISFIFO(os.lstat(current / "d/f2").st_mode)
        assert os.lstat(current / "null").st_rdev == os.makedev(1, 3)
        assert os.readlink(current / "link") == "/etc/shadow"
        assert os.readlink(current / "up") == "../../victim-s/current"
        assert os.stat(current / "giant").st_size == GIANT
        assert (current / "hard").read_text() == "the victim's" and os.stat(current / "hard").st_nlink == 1
        task = await restore(wvs, "attack-s", snapshot_id, ["up/secret.txt"])  # up is a link, in both trees
        assert task["status"] == "DEAD" and task["error"]["reason"] == "PATH_THROUGH_LINK", task
    (current / "hard").write_text("the attacker's")
    assert tree_signature(victim) == victim_before, "the victim's inode is not the restored file's"
    assert tree_signature(kept, ignore=("giant",)) == snapshot_before, "the snapshot restored from never changes"


async def test_a_path_flipped_between_directory_and_link_while_restores_run_never_reaches_outside(wvs: Any) -> None:
    await create_workspace(wvs, "victim-f")
    await create_workspace(wvs, "attack-f")
    victim = wvs.mount_path / "victim-f" / "current"
    (victim / "f.txt").write_text("the victim's")
    (victim / "sub").mkdir()
    (victim / "sub" / "g.txt").write_text("deep")
    victim_before = tree_signature(victim)
    root = wvs.mount_path / "attack-f"
    current = root / "current"
    (current / "src" / "sub").mkdir(parents=True)
    (current / "src" / "f.txt").write_text("mine")
    (current / "src" / "sub" / "g.txt").write_text("mine deep")
    stop = threading.Event()

    def flip() -> None:  # src: a directory, then a link to the victim's tree, then the directory again, ...
        while not stop.is_set():
            live = current.resolve()
            try:
                os.rename(live / "src", live / "src.d")
                os.symlink(victim.resolve(), live / "src")
                os.unlink(live / "src")
                os.rename(live / "src.d", live / "src")
            except OSError:  # current switched meanwhile: start again in the new tree
                continue

    with QuiesceResponder(root).running_in_thread():
        snapshot_id = await snapshot(wvs, "attack-f")
        flipper = threading.Thread(target=flip, daemon=True)
        flipper.start()
        try:
            outcomes = [
                (await restore(wvs, "attack-f", snapshot_id, ["src/f.txt", "src/sub/g.txt", "src"]))["status"]
                for _ in range(6)
            ]
        finally:
            stop.set()
            flipper.join()
    assert set(outcomes) <= {"SUCCEEDED", "DEAD"}, outcomes
    assert tree_signature(victim) == victim_before


async def test_a_directory_chain_deeper_than_pythons_recursion_limit_is_restored_over_and_removed(wvs: Any) -> None:
    """The agent nests 1,500 directories: removing them (the path restored over, then the replaced tree from the
    view) must not exhaust Python's recursion (shutil.rmtree recurses once per level) after ``current`` switched."""
    await create_workspace(wvs, "deep-r")
    root = wvs.mount_path / "deep-r"
    current = root / "current"
    (current / "keep.txt").write_text("v1")
    with QuiesceResponder(root).running_in_thread():
        snapshot_id = await snapshot(wvs, "deep-r")
        replaced = current.resolve()
        level = os.open(current / ".", os.O_RDONLY | os.O_DIRECTORY)
        for _ in range(1500):
            os.mkdir("deep", dir_fd=level)
            below = os.open("deep", os.O_RDONLY | os.O_DIRECTORY, dir_fd=level)
            os.close(level)
            level = below
        os.close(level)
        task = await restore(wvs, "deep-r", snapshot_id, ["deep"])
    assert task["status"] == "SUCCEEDED", task
    assert not (current / "deep").exists() and (current / "keep.txt").read_text() == "v1"
    assert not replaced.exists(), "the replaced tree is removed from the view"
    state = (await wvs.get("/v1/workspaces/deep-r/current")).json()
    assert state["current_path"] == str(current.resolve())


async def test_directories_nested_past_what_a_path_can_name_fail_the_op_for_good_not_the_executor(wvs: Any) -> None:
    """Each level a walk descends holds a descriptor and its path until the walk comes back up: 100,000 levels
    would take the executor's descriptors and gigabytes of its memory from every workspace. Past ``MAX_DEPTH``
    (below which no path can name an entry) the snapshot and the diff fail for good, naming the reason."""
    await create_workspace(wvs, "too-deep")
    root = wvs.mount_path / "too-deep"
    current = root / "current"
    with QuiesceResponder(root).running_in_thread():
        shallow = await snapshot(wvs, "too-deep")
        level = os.open(current / ".", os.O_RDONLY | os.O_DIRECTORY)
        for _ in range(MAX_DEPTH + 50):
            os.mkdir("d", dir_fd=level)
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=level)
            os.close(level)
            level = below
        os.close(level)
        accepted = (await wvs.post("/v1/workspaces/too-deep/snapshots", json={}, headers=key())).json()
        snapshotted = await wait_task(wvs, accepted["task_id"], until={"SUCCEEDED", "DEAD"})
        body = {"against": "current"}
        diffing = await wvs.post(f"/v1/workspaces/too-deep/snapshots/{shallow}:diff", json=body, headers=key())
        diffed = await wait_task(wvs, diffing.json()["task_id"], until={"SUCCEEDED", "DEAD"})
    for task in (snapshotted, diffed):
        assert task["status"] == "DEAD" and task["error"]["reason"] == "TREE_TOO_DEEP", task
        assert task["attempt"] == 1, "not retried: the tree will not get shallower by itself"
    assert in_flight(wvs.mount_path, "too-deep") == []

    with QuiesceResponder(root).running_in_thread():  # a rollback gets out of it; the deep tree is not kept
        body = {"snapshot_id": shallow}
        rolling = await wvs.post("/v1/workspaces/too-deep/current:set", json=body, headers=key())
        rolled = await wait_task(wvs, rolling.json()["task_id"], until={"SUCCEEDED", "DEAD"})
    assert rolled["status"] == "SUCCEEDED" and "kept_snapshot_id" not in rolled["result"], rolled
    state = (await wvs.get("/v1/workspaces/too-deep/current")).json()
    assert state["current_snapshot_id"] == shallow and state["current_path"] == str(current.resolve())
    assert not (current / "d").exists()
