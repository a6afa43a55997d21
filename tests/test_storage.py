"""Storage backends keep every attribute and never follow a link: juicefs on a real mount, localfs on the
local disk. Both read the source through the descriptor they are given, so swapping the path after the
executor opened it changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from pathlib import Path

import pytest

from tests.helpers import populate_tree, tree_signature
from wvs_core.storage import StorageError, TreeUsage, open_tree
from wvs_juicefs.backend import JuiceFSBackend
from wvs_localfs import LocalFSBackend


@pytest.fixture(params=["localfs", "juicefs"])
def backend_and_dir(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "juicefs":
        return JuiceFSBackend({}), request.getfixturevalue("mount")
    return LocalFSBackend({}), tmp_path


async def clone(backend, source: Path, destination: Path) -> TreeUsage:  # type: ignore[no-untyped-def]
    fd = open_tree(source)
    try:
        return await backend.clone_tree(fd, destination)
    finally:
        os.close(fd)


async def test_clone_keeps_content_mode_owner_times_and_links(backend_and_dir) -> None:
    backend, base = backend_and_dir
    source = base / "source"
    source.mkdir()
    populate_tree(source)
    await clone(backend, source, base / "clone")
    assert tree_signature(base / "clone") == tree_signature(source)
    (source / "src" / "pkg" / "main.py").write_text("changed after the clone")
    assert (base / "clone" / "src" / "pkg" / "main.py").read_text() == "print('hello')\n"


async def test_a_clone_reports_its_entries_and_bytes(backend_and_dir) -> None:
    """Every name below the root counts (directories empty or not, links, a FIFO, each name of a hard-linked
    file); bytes are the regular files' sizes, a hard-linked file's once and a link's target not at all."""
    backend, base = backend_and_dir
    source = base / "source"
    (source / "empty").mkdir(parents=True)
    (source / "a" / "b").mkdir(parents=True)
    (source / "a" / "b" / "data").write_bytes(b"x" * 5000)
    (source / "a" / "zero").write_bytes(b"")
    (source / "shared").write_bytes(b"y" * 300)
    os.link(source / "shared", source / "a" / "b" / "also-shared")
    os.link(source / "shared", source / "a" / "third-name")
    (source / "to-data").symlink_to("a/b/data")
    os.mkfifo(source / "pipe")

    usage = await clone(backend, source, base / "clone")

    # empty, a, a/b, a/b/data, a/zero, shared, a/b/also-shared, a/third-name, to-data, pipe
    assert usage == TreeUsage(entries=10, bytes=5000 + 300)
    assert usage.entries == sum(len(dirs) + len(files) for _, dirs, files in os.walk(base / "clone"))


async def test_juicefs_refuses_a_destination_off_the_volume(tmp_path: Path) -> None:
    """The clone is asked of the mount the destination is on: a directory on another filesystem is no clone
    target, and nothing is made there."""
    (tmp_path / "source").mkdir()
    with pytest.raises(StorageError, match="not on a JuiceFS volume") as caught:
        await clone(JuiceFSBackend({}), tmp_path / "source", tmp_path / "clone")
    assert caught.value.reason == "CLONE_FAILED" and not (tmp_path / "clone").exists()


@pytest.mark.parametrize("kind", ["symlink", "file"])
async def test_juicefs_never_writes_a_control_file_someone_planted(
    juicefs_volume, mount: Path, tmp_path: Path, kind: str
) -> None:
    """A ``.jfs.control`` made in the volume's root (a link to a file outside, or a plain file) is not the
    mount's control file: the clone is refused at once and nothing is written through it."""
    decoy = tmp_path / "decoy"
    decoy.write_text("must never change\n")
    planted = juicefs_volume.mount_path / ".jfs.control"
    if kind == "symlink":
        planted.symlink_to(decoy)
    else:
        planted.write_text("")
    try:
        (mount / "source").mkdir()
        with pytest.raises(StorageError, match="not the JuiceFS mount's control file") as caught:
            await asyncio.wait_for(clone(JuiceFSBackend({}), mount / "source", mount / "clone"), 10)
        assert caught.value.reason == "CLONE_FAILED" and not (mount / "clone").exists()
        assert decoy.read_text() == "must never change\n"
        assert kind == "symlink" or planted.read_bytes() == b""
    finally:
        planted.unlink()


async def test_clone_reads_the_directory_it_was_handed_not_what_its_path_names_later(backend_and_dir) -> None:
    backend, base = backend_and_dir
    (base / "mine").mkdir()
    (base / "mine" / "file").write_text("mine")
    (base / "victim").mkdir()
    (base / "victim" / "secret").write_text("victim's")
    fd = open_tree(base / "mine")
    try:
        (base / "mine").rename(base / "moved-away")
        (base / "mine").symlink_to(base / "victim")  # the swap, between the check and the clone
        await backend.clone_tree(fd, base / "clone")
    finally:
        os.close(fd)
    assert sorted(os.listdir(base / "clone")) == ["file"]


async def test_remove_never_follows_a_link(backend_and_dir) -> None:
    backend, base = backend_and_dir
    (base / "keep").mkdir()
    (base / "keep" / "precious").write_text("x")
    (base / "doomed").mkdir()
    (base / "doomed" / "link-to-keep").symlink_to(base / "keep")
    (base / "link-named-doomed").symlink_to(base / "keep")
    await backend.remove_tree(base / "doomed")
    await backend.remove_tree(base / "link-named-doomed")
    assert not (base / "doomed").exists() and not (base / "link-named-doomed").is_symlink()
    assert (base / "keep" / "precious").read_text() == "x"


async def test_remove_is_idempotent_and_a_failed_clone_is_a_storage_error(backend_and_dir) -> None:
    backend, base = backend_and_dir
    (base / "tree" / "deep" / "er").mkdir(parents=True)
    (base / "tree" / "deep" / "er" / "f").write_text("x")
    (base / "half").mkdir()
    (base / "target").write_text("in the way")  # a clone never overwrites
    with pytest.raises(StorageError) as caught:
        await clone(backend, base / "half", base / "target")
    assert caught.value.reason == "CLONE_FAILED"
    await backend.remove_tree(base / "tree")
    assert not (base / "tree").exists()
    await backend.remove_tree(base / "tree")


async def test_make_tree_makes_an_empty_directory_and_never_overwrites(backend_and_dir) -> None:
    backend, base = backend_and_dir
    await backend.make_tree(base / "empty")
    info = (base / "empty").lstat()
    assert stat.S_ISDIR(info.st_mode) and os.listdir(base / "empty") == []
    assert stat.S_IMODE(info.st_mode) & 0o755 == 0o755 & ~umask()
    (base / "taken").write_text("in the way")
    with pytest.raises(StorageError) as caught:
        await backend.make_tree(base / "taken")
    assert caught.value.reason == "MAKE_FAILED"
    assert (base / "taken").read_text() == "in the way"


async def test_a_cancelled_clone_returns_only_once_nothing_writes_to_the_destination(backend_and_dir) -> None:
    """Cancelled mid-copy, the clone has stopped writing (and reading the source, whose descriptor the caller
    closes next) by the time the cancellation reaches the caller, so the caller's clean-up is final."""
    backend, base = backend_and_dir
    for directory in range(20):
        (base / "source" / f"d{directory}").mkdir(parents=True)
        for name in range(100):
            (base / "source" / f"d{directory}" / f"f{name}").write_text(name * "x")
    fd = open_tree(base / "source")
    try:
        cloning = asyncio.create_task(backend.clone_tree(fd, base / "clone"))
        await asyncio.sleep(0.05)
        cloning.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # or it finished first: then nothing is cancelled
            await cloning
    finally:
        os.close(fd)
    await backend.remove_tree(base / "clone")
    await asyncio.sleep(0.3)
    assert not (base / "clone").exists(), "something went on writing after the clean-up"


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


async def test_an_entry_clone_is_exact_alone_and_never_follows_a_link(backend_and_dir) -> None:
    """``clone_entry``: a file (mode with setuid, owner, times, an xattr, a second name elsewhere), a link (as the
    link, never its target), a FIFO; a directory or a missing name is a StorageError, and nothing but the entry
    appears beside the destination."""
    backend, base = backend_and_dir
    source, area = base / "source", base / "area"
    source.mkdir()
    area.mkdir()
    (source / "file").write_bytes(b"data" * 1000)
    os.chown(source / "file", 1234, 5678)
    os.chmod(source / "file", 0o4751)
    os.setxattr(source / "file", "user.note", b"kept")
    os.utime(source / "file", ns=(1_000_000_123, 2_000_000_456))
    os.link(source / "file", source / "second-name")
    (source / "link").symlink_to("/etc/passwd")
    os.mkfifo(source / "pipe")
    (source / "dir").mkdir()
    parent = open_tree(source)
    try:
        for name in ("file", "link", "pipe"):
            await backend.clone_entry(parent, name, area / name)
        for name in ("dir", "missing"):
            with pytest.raises(StorageError):
                await backend.clone_entry(parent, name, area / name)
    finally:
        os.close(parent)
    assert sorted(os.listdir(area)) == ["file", "link", "pipe"]
    cloned, original = tree_signature(area), tree_signature(source)
    assert {name: cloned[name] for name in cloned} == {name: original[name] for name in cloned}
    assert os.getxattr(area / "file", "user.note") == b"kept" and os.lstat(area / "file").st_nlink == 1
    assert os.readlink(area / "link") == "/etc/passwd"
    (area / "file").write_bytes(b"changed")
    assert (source / "file").read_bytes() == b"data" * 1000, "the clone shares nothing a write can reach"
