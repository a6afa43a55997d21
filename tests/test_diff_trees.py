"""The tree diff (``wvs_diff.compare``) on both storage backends: nothing for an untouched clone of the
data-fidelity corpus (``tests/fidelity.py``), exactly the expected list for a known change set covering
every kind of change, and hostile trees (links to /etc, FIFOs, devices, a 1 GiB sparse file, entries that
vanish mid-diff). Prints how long a diff of two 10,000-file JuiceFS clones takes beside a plain walk."""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.fidelity import DEEP_LEVELS, DEEP_NAME, OLD, SPARSE_SIZE, build_corpus, differences, manifest
from wvs_core.storage import StorageBackend, open_tree
from wvs_core.treewalk import DIRECTORY_FLAGS
from wvs_diff import compare
from wvs_diff.compare import Change, ContentCheck, diff_trees, path_key
from wvs_juicefs.backend import JuiceFSBackend
from wvs_localfs import LocalFSBackend

DEEP_LEAF = "43-deeper-than-path-max/" + "/".join([DEEP_NAME] * DEEP_LEVELS) + "/leaf.txt"
INVALID = os.fsdecode(b"38-invalid-utf8-name/invalid-utf8-\xff\xfe")


@pytest.fixture(params=["localfs", "juicefs"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[StorageBackend, Path]:
    """A storage backend and a directory to work in on its filesystem."""
    if request.param == "juicefs":
        return JuiceFSBackend({}), request.getfixturevalue("mount")
    return LocalFSBackend({}), tmp_path


async def clone(backend: StorageBackend, source: Path, destination: Path) -> None:
    fd = open_tree(source)
    try:
        await backend.clone_tree(fd, destination)
    finally:
        os.close(fd)


def diff(before: Path, after: Path, **options: Any) -> list[Change]:
    first, second = os.open(before, DIRECTORY_FLAGS), os.open(after, DIRECTORY_FLAGS)
    try:
        return list(diff_trees(first, second, **options))
    finally:
        os.close(first)
        os.close(second)


Sizes = tuple[int | None, int | None]


def change(
    path: str, kind: str, types: tuple[str | None, str | None], sizes: Sizes = (None, None), meta: Iterable[str] = ()
) -> Change:
    return Change(path, compare.ChangeKind(kind), *types, *sizes, tuple(meta))


async def corpus_and_clone(backend: StorageBackend, base: Path) -> tuple[Path, Path]:
    """The fidelity corpus (plus two identical files, ``47-twins``) at ``base/before``, cloned to ``after``."""
    before, outside = base / "before", base / "outside"
    before.mkdir()
    outside.mkdir()
    build_corpus(before, outside)
    (before / "47-twins").mkdir()
    for name in ("a", "b"):
        (before / "47-twins" / name).write_bytes(b"twins\n")
        os.utime(before / "47-twins" / name, ns=(OLD, OLD))
    await clone(backend, before, base / "after")
    return before, base / "after"


async def test_an_untouched_clone_differs_in_nothing_and_the_diff_changes_neither_tree(
    backend: tuple[StorageBackend, Path],
) -> None:
    storage, base = backend
    before, after = await corpus_and_clone(storage, base)
    os.utime(after / "02-text" / "text.txt", ns=(OLD + 42, os.lstat(after / "02-text" / "text.txt").st_mtime_ns))
    (after / "03-random-256k" / "random.bin").read_bytes()  # an ordinary read: atime may move
    manifests = manifest(before), manifest(after)
    for check in ContentCheck:
        started = time.monotonic()
        assert diff(before, after, content_check=check) == [], check
        print(f"\n{storage.name}: untouched corpus clone, {check}: {time.monotonic() - started:.2f}s")
    assert differences(manifests[0], manifest(before)) == {}, "the diff changed the before tree (atime?)"
    assert differences(manifests[1], manifest(after)) == {}, "the diff changed the after tree (atime?)"


def apply_change_set(root: Path) -> tuple[list[Change], Change]:
    """Change the corpus at ``root`` in every way a diff must tell; returns the changes expected with any
    ``ContentCheck``, and the one only CTIME and FULL see (a same-size rewrite whose times are set back)."""
    expected = [change("02-text/new.txt", "added", (None, "file"), (None, 4))]
    (root / "02-text" / "new.txt").write_bytes(b"new\n")

    added = root / "04-empty-directories" / "added"
    (added / "inner").mkdir(parents=True)
    (added / "inner" / "file").write_bytes(b"12345")
    os.symlink("inner/file", added / "link")
    expected += [
        change("04-empty-directories/added", "added", (None, "directory")),
        change("04-empty-directories/added/inner", "added", (None, "directory")),
        change("04-empty-directories/added/inner/file", "added", (None, "file"), (None, 5)),
        change("04-empty-directories/added/link", "added", (None, "symlink"), (None, 10)),
    ]

    os.unlink(root / "01-empty-file" / "empty")
    expected.append(change("01-empty-file/empty", "removed", ("file", None), (0, None)))
    shutil.rmtree(root / "44-many-small-files" / "d3")
    expected.append(change("44-many-small-files/d3", "removed", ("directory", None)))
    expected += [change(f"44-many-small-files/d3/f{n}", "removed", ("file", None), (4, None)) for n in range(300, 400)]

    random_bin = root / "03-random-256k" / "random.bin"
    info = os.lstat(random_bin)
    with open(random_bin, "r+b") as handle:
        handle.seek(100_000)
        flipped = bytes(byte ^ 0xFF for byte in handle.read(16))
        handle.seek(100_000)
        handle.write(flipped)
    os.utime(random_bin, ns=(info.st_atime_ns, info.st_mtime_ns))
    unseen = change("03-random-256k/random.bin", "modified", ("file", "file"), (262144, 262144))

    (root / "02-text" / "text.txt").write_bytes(b"changed, longer\n")
    expected.append(change("02-text/text.txt", "modified", ("file", "file"), (6, 16), ["mtime"]))
    os.chmod(root / "05-setuid" / "setuid", 0o755)
    expected.append(change("05-setuid/setuid", "meta_changed", ("file", "file"), (1, 1), ["mode"]))
    os.chown(root / "11-owners" / "user-1234", 4321, 2345)
    expected.append(change("11-owners/user-1234", "meta_changed", ("file", "file"), (1, 1), ["uid"]))
    os.utime(root / "45-times" / "old", ns=(OLD, OLD + 1))
    expected.append(change("45-times/old", "meta_changed", ("file", "file"), (4, 4), ["mtime"]))
    os.utime(root / "45-times" / "read-later", ns=(OLD + 77, os.lstat(root / "45-times" / "read-later").st_mtime_ns))
    os.chown(root / "14-directory-owner" / "dir", 1001, 0)
    expected.append(change("14-directory-owner/dir", "meta_changed", ("directory", "directory"), meta=["uid"]))
    os.chown(root / "22-link-owner-times" / "owned", 1, 1, follow_symlinks=False)
    expected.append(change("22-link-owner-times/owned", "meta_changed", ("symlink", "symlink"), (6, 6), ["uid", "gid"]))
    os.setxattr(root / "26-xattr-user" / "file", "user.comment", b"another note")
    expected.append(change("26-xattr-user/file", "meta_changed", ("file", "file"), (16, 16), ["xattrs"]))
    os.chmod(root / "34-socket-node" / "node", 0o600)
    expected.append(change("34-socket-node/node", "meta_changed", ("socket", "socket"), meta=["mode"]))

    os.unlink(root / "07-mode-000-file" / "mode-000")
    os.symlink("elsewhere", root / "07-mode-000-file" / "mode-000")
    expected.append(change("07-mode-000-file/mode-000", "type_changed", ("file", "symlink"), (19, 9)))
    shutil.rmtree(root / "08-sticky-directory" / "dir")
    (root / "08-sticky-directory" / "dir").write_bytes(b"now a file\n")
    expected.append(change("08-sticky-directory/dir", "type_changed", ("directory", "file"), (None, 11)))
    expected.append(change("08-sticky-directory/dir/inside", "removed", ("file", None), (7, None)))
    os.unlink(root / "33-fifo" / "node")
    (root / "33-fifo" / "node").write_bytes(b"x")
    expected.append(change("33-fifo/node", "type_changed", ("fifo", "file"), (None, 1)))
    shutil.rmtree(root / "20-link-to-directory" / "dir")  # a directory becomes a link to /etc: never followed
    os.symlink("/etc", root / "20-link-to-directory" / "dir")
    expected.append(change("20-link-to-directory/dir", "type_changed", ("directory", "symlink"), (None, 4)))
    expected.append(change("20-link-to-directory/dir/inside", "removed", ("file", None), (7, None)))
    os.symlink("/etc", root / "16-absolute-link" / "etc")
    expected.append(change("16-absolute-link/etc", "added", (None, "symlink"), (None, 4)))

    os.unlink(root / "16-absolute-link" / "link")  # same length, another target
    os.symlink("/etc/shadow", root / "16-absolute-link" / "link")
    expected.append(change("16-absolute-link/link", "modified", ("symlink", "symlink"), (11, 11), ["mtime"]))
    node = root / "36-char-device" / "node"
    info = os.lstat(node)
    os.unlink(node)
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 5))
    os.chmod(node, stat.S_IMODE(info.st_mode))
    os.utime(node, ns=(info.st_atime_ns, info.st_mtime_ns))
    expected.append(change("36-char-device/node", "modified", ("char_device", "char_device")))

    os.unlink(root / "47-twins" / "b")  # hard links made or broken are no change by themselves
    os.link(root / "47-twins" / "a", root / "47-twins" / "b")
    pair_too = root / "24-hard-links-one-dir" / "pair-too"
    info = os.lstat(pair_too)
    os.unlink(pair_too)
    pair_too.write_bytes((root / "24-hard-links-one-dir" / "pair").read_bytes())
    os.chmod(pair_too, stat.S_IMODE(info.st_mode))
    os.utime(pair_too, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.link(root / "12-nobody" / "nobody", root / "12-nobody" / "nobody-too")
    expected.append(change("12-nobody/nobody-too", "added", (None, "file"), (None, 1)))

    os.unlink(root / INVALID)
    expected.append(change(INVALID, "removed", ("file", None), (15, None)))
    for raw in (b"caf\xf0\x9f\x98\x80", b"caf\xff"):  # bytes order, not str order: U+1F600 sorts after U+DCFF
        (root / "40-nfc-nfd" / os.fsdecode(raw)).write_bytes(b"")
        expected.append(change(os.fsdecode(b"40-nfc-nfd/" + raw), "added", (None, "file"), (None, 0)))

    _append_deep_leaf(root, b"and changed\n")
    expected.append(change(DEEP_LEAF, "modified", ("file", "file"), (21, 33), ["mtime"]))
    return sorted(expected, key=lambda item: path_key(item.path)), unseen


def _append_deep_leaf(root: Path, data: bytes) -> None:
    """Append to the corpus's leaf deeper than PATH_MAX, reached one directory at a time."""
    fd = os.open(root / "43-deeper-than-path-max", os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(DEEP_LEVELS):
        child = os.open(DEEP_NAME, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    leaf = os.open("leaf.txt", os.O_WRONLY | os.O_APPEND, dir_fd=fd)
    os.write(leaf, data)
    os.close(leaf)
    os.close(fd)


async def test_every_kind_of_change_is_reported_exactly_once_in_path_order(
    backend: tuple[StorageBackend, Path],
) -> None:
    storage, base = backend
    before, after = await corpus_and_clone(storage, base)
    expected, unseen = apply_change_set(after)
    found = diff(before, after)
    assert [item.path for item in found] == [item.path for item in expected], "another set or another order"
    assert found == expected
    added = [item.path for item in found if item.path.startswith("40-nfc-nfd/")]
    assert added == ["40-nfc-nfd/caf😀", os.fsdecode(b"40-nfc-nfd/caf\xff")], "siblings in the order of their bytes"
    with_unseen = sorted([*expected, unseen], key=lambda item: path_key(item.path))
    assert diff(before, after, content_check=ContentCheck.CTIME) == with_unseen
    assert diff(before, after, content_check=ContentCheck.FULL) == with_unseen
    assert [item for item in diff(before, after, xattrs=False) if "xattrs" in item.meta] == []
    reverse = diff(after, before)
    assert len(reverse) == len(expected), "the other way round, every change is there once"
    assert {item.path for item in reverse if item.change == "added"} == {
        item.path for item in expected if item.change == "removed"
    }


def test_links_to_etc_are_compared_as_links_and_never_followed(tmp_path: Path) -> None:
    (tmp_path / "before" / "etc").mkdir(parents=True)
    (tmp_path / "before" / "etc" / "passwd").write_bytes(b"not the real one\n")
    (tmp_path / "after").mkdir()
    os.symlink("/etc", tmp_path / "after" / "etc")
    os.symlink("/etc/passwd", tmp_path / "after" / "passwd")
    assert diff(tmp_path / "before", tmp_path / "after") == [
        change("etc", "type_changed", ("directory", "symlink"), (None, 4)),
        change("etc/passwd", "removed", ("file", None), (17, None)),
        change("passwd", "added", (None, "symlink"), (None, 11)),
    ]


def _finishes(work: Any, seconds: float = 20) -> Any:
    """``work()``'s result, failing (rather than hanging) when it blocks."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert result, "blocked"
    return result[0]


def test_fifos_and_devices_are_never_opened(tmp_path: Path) -> None:
    for side, mtime in (("before", OLD), ("after", OLD + 1)):
        (tmp_path / side).mkdir()
        os.mkfifo(tmp_path / side / "pipe")
        os.mknod(tmp_path / side / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
        for name in ("pipe", "zero"):
            os.utime(tmp_path / side / name, ns=(OLD, mtime))
    found = _finishes(lambda: diff(tmp_path / "before", tmp_path / "after", content_check=ContentCheck.FULL))
    assert found == [
        change("pipe", "meta_changed", ("fifo", "fifo"), meta=["mtime"]),
        change("zero", "meta_changed", ("char_device", "char_device"), meta=["mtime"]),
    ]
    directory = os.open(tmp_path / "after", DIRECTORY_FLAGS)
    try:  # a file swapped for a FIFO between the walk's lstat and the read is not opened: it differs
        seen = compare._Entry(directory, "pipe", os.lstat(tmp_path / "after" / "pipe"))
        assert _finishes(lambda: compare._open_regular(seen)) is None
    finally:
        os.close(directory)


def test_an_entry_that_vanishes_mid_diff_is_reported_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for side in ("before", "after"):
        (tmp_path / side).mkdir()
        os.symlink("target", tmp_path / side / "link")
    read, doomed = compare._target, os.lstat(tmp_path / "after" / "link").st_ino

    def vanishing(entry: compare._Entry) -> str:
        if entry.info.st_ino == doomed:
            os.unlink(tmp_path / "after" / "link")  # the agent removes it between the lstat and the read
        return read(entry)

    monkeypatch.setattr(compare, "_target", vanishing)
    assert diff(tmp_path / "before", tmp_path / "after") == [change("link", "removed", ("symlink", None), (6, None))]


def test_no_descriptor_is_left_open_even_by_an_abandoned_diff(tmp_path: Path) -> None:
    for side in ("before", "after"):
        (tmp_path / side / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "after" / "a" / "b" / "c" / "new").write_bytes(b"")
    (tmp_path / "after" / "z").write_bytes(b"")
    open_before = len(os.listdir("/proc/self/fd"))
    assert len(diff(tmp_path / "before", tmp_path / "after")) == 2
    first, second = os.open(tmp_path / "before", DIRECTORY_FLAGS), os.open(tmp_path / "after", DIRECTORY_FLAGS)
    changes = diff_trees(first, second)
    assert next(changes).path == "a/b/c/new"  # four levels deep, then dropped
    changes.close()
    os.close(first)
    os.close(second)
    assert len(os.listdir("/proc/self/fd")) == open_before


async def test_a_sparse_gigabyte_is_decided_by_metadata(
    backend: tuple[StorageBackend, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage, base = backend
    (base / "before").mkdir()
    sparse = base / "before" / "sparse.img"
    sparse.write_bytes(b"")
    os.truncate(sparse, SPARSE_SIZE)
    fd = os.open(sparse, os.O_WRONLY)
    os.pwrite(fd, b"the only data", SPARSE_SIZE // 3)
    os.close(fd)
    await clone(storage, base / "before", base / "after")
    reads: list[tuple[int, int, int]] = []
    real_pread = os.pread

    def counted(fd: int, length: int, offset: int) -> bytes:
        reads.append((fd, length, offset))
        return real_pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", counted)
    started = time.monotonic()
    assert diff(base / "before", base / "after") == []
    print(f"\n{storage.name}: 1 GiB sparse, same size and mtime: {time.monotonic() - started:.4f}s, {len(reads)} reads")
    assert reads == []
    os.utime(base / "after" / "sparse.img", ns=(OLD, OLD))
    started = time.monotonic()
    touched = diff(base / "before", base / "after")
    print(f"{storage.name}: 1 GiB sparse, mtime touched: {time.monotonic() - started:.2f}s, {len(reads)} reads")
    assert touched == [change("sparse.img", "meta_changed", ("file", "file"), (SPARSE_SIZE,) * 2, ["mtime"])]
