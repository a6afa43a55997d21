"""A torture corpus of trees a snapshot must keep exactly, and a manifest that compares them (SPEC §5
"Clones are exact"). Each case is one top-level directory ``NN-name`` of the corpus, so a result can be
told per case."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wvs_core.treewalk import data_regions, read_link, walk

OLD = 1_500_000_000 * 10**9  # an atime/mtime far in the past, with nanoseconds below
DEEP_NAME = "d" * 250
DEEP_LEVELS = 20  # 20 x 251 bytes: the tree is far deeper than PATH_MAX (4096)
SPARSE_SIZE = 1 << 30
BLOCK = 1 << 16  # bytes: a manifest's digest hashes a file's non-zero blocks of this size
READ = 64 * BLOCK  # bytes a manifest reads per call: 4 MiB
ZEROS = bytes(BLOCK)


def _acl(*entries: tuple[int, int, int]) -> bytes:
    """A ``system.posix_acl_*`` value: version 2, then (tag, perm, id) per entry."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, ident) for tag, perm, ident in entries)


NO_ID = 0xFFFFFFFF
ACCESS_ACL = _acl((1, 6, NO_ID), (2, 6, 1000), (4, 4, NO_ID), (0x10, 6, NO_ID), (0x20, 4, NO_ID))
DEFAULT_ACL = _acl((1, 7, NO_ID), (2, 5, 1001), (4, 5, NO_ID), (0x10, 7, NO_ID), (0x20, 5, NO_ID))
CAPABILITY = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_bind_service=ep


def _write(path: Path, data: bytes = b"", mode: int | None = None, owner: tuple[int, int] | None = None) -> Path:
    path.write_bytes(data)
    if owner is not None:
        os.chown(path, *owner)
    if mode is not None:
        os.chmod(path, mode)
    return path


def _times(path: Path, atime: int = OLD + 123, mtime: int = OLD + 456_789) -> None:
    os.utime(path, ns=(atime, mtime), follow_symlinks=False)


def _deep(root: Path) -> None:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(DEEP_LEVELS):
            os.mkdir(DEEP_NAME, dir_fd=fd)
            child = os.open(DEEP_NAME, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf = os.open("leaf.txt", os.O_WRONLY | os.O_CREAT, 0o640, dir_fd=fd)
        os.write(leaf, b"deeper than PATH_MAX\n")
        os.close(leaf)
    finally:
        os.close(fd)


def _sparse(root: Path) -> None:
    with open(root / "sparse.img", "wb") as handle:
        handle.truncate(SPARSE_SIZE)
        handle.seek(SPARSE_SIZE // 2)
        handle.write(b"data in the middle of a 1 GiB hole")


def _bound_socket(root: Path) -> None:
    directory = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX) as listening:  # as a live agent leaves one behind
            listening.bind(f"/proc/self/fd/{directory}/bound.sock")  # short: AF_UNIX paths are 107 bytes at most
    finally:
        os.close(directory)


def _hard_links_across_directories(root: Path) -> None:
    (root / "a").mkdir()
    (root / "b" / "c").mkdir(parents=True)
    _write(root / "a" / "one", b"three names, one inode\n", 0o640)
    os.link(root / "a" / "one", root / "b" / "two")
    os.link(root / "a" / "one", root / "b" / "c" / "three")


def _hard_links_in_one_directory(root: Path) -> None:
    _write(root / "pair", b"two names in one directory\n")
    os.link(root / "pair", root / "pair-too")


def _hard_linked_symlink(root: Path) -> None:
    os.symlink("somewhere", root / "link")
    os.link(root / "link", root / "link-too", follow_symlinks=False)


def _link(target: str, name: str = "link") -> Callable[[Path], None]:
    def build(root: Path) -> None:
        os.symlink(target, root / name)

    return build


def _symlink_loop(root: Path) -> None:
    os.symlink("loop-b", root / "loop-a")
    os.symlink("loop-a", root / "loop-b")


def _symlink_to_directory(root: Path) -> None:
    (root / "dir").mkdir()
    _write(root / "dir" / "inside", b"inside\n")
    os.symlink("dir", root / "to-a-directory")


def _symlink_owner_and_times(root: Path) -> None:
    os.symlink("target", root / "owned")
    os.chown(root / "owned", 1234, 2345, follow_symlinks=False)
    _times(root / "owned")


def _name(raw: bytes) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        _write(Path(os.fsdecode(os.fsencode(root) + b"/" + raw)), raw)

    return build


def _nfc_beside_nfd(root: Path) -> None:
    _name(b"caf\xc3\xa9")(root)  # NFC é
    _name(b"cafe\xcc\x81")(root)  # NFD e + combining acute


def _odd_names(root: Path) -> None:
    for raw in (b"-starts-with-a-dash", b"trailing space ", b" leading space", b"tab\there", b"\xe2\x80\xae-rtl"):
        _name(raw)(root)


def _xattr_user(root: Path) -> None:
    file = _write(root / "file", b"with attributes\n")
    os.setxattr(file, "user.comment", b"an agent's note")
    os.setxattr(file, "user.binary", bytes(range(256)))


def _xattr_trusted(root: Path) -> None:
    os.setxattr(_write(root / "file", b"x"), "trusted.wvs-test", b"root only")


def _xattr_on_directory(root: Path) -> None:
    (root / "dir").mkdir()
    os.setxattr(root / "dir", "user.on-a-directory", b"yes")


def _access_acl(root: Path) -> None:
    os.setxattr(_write(root / "file", b"ACL\n", 0o664), "system.posix_acl_access", ACCESS_ACL)


def _default_acl(root: Path) -> None:
    (root / "shared").mkdir(mode=0o775)
    os.setxattr(root / "shared", "system.posix_acl_default", DEFAULT_ACL)
    os.setxattr(root / "shared", "system.posix_acl_access", ACCESS_ACL)


def _capability(root: Path) -> None:
    os.setxattr(_write(root / "server", b"#!/bin/sh\n", 0o755), "security.capability", CAPABILITY)


def _file(
    name: str, data: bytes = b"x", mode: int | None = None, owner: tuple[int, int] | None = None
) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        _write(root / name, data, mode, owner)

    return build


def _directory_mode(mode: int, owner: tuple[int, int] | None = None) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        (root / "dir").mkdir()
        _write(root / "dir" / "inside", b"inside\n")
        if owner is not None:
            os.chown(root / "dir", *owner)
        os.chmod(root / "dir", mode)

    return build


def _node(kind: int, mode: int, device: tuple[int, int] = (0, 0)) -> Callable[[Path], None]:
    def build(root: Path) -> None:
        os.mknod(root / "node", kind | mode, os.makedev(*device))

    return build


def _many_small_files(root: Path) -> None:
    for n in range(1000):
        (root / f"d{n // 100}").mkdir(exist_ok=True)
        (root / f"d{n // 100}" / f"f{n}").write_bytes(f"{n}\n".encode())


def _times_case(root: Path) -> None:
    _times(_write(root / "old", b"old\n"), atime=OLD + 1, mtime=OLD + 999_999_999)
    _times(_write(root / "read-later", b"x"), atime=OLD + 10**12, mtime=OLD)
    (root / "dir").mkdir()
    _times(root / "dir", atime=OLD + 5, mtime=OLD + 7)


def _empty_directories(root: Path) -> None:
    (root / "empty" / "nested-empty").mkdir(parents=True)


CASES: dict[str, Callable[[Path], None]] = {
    "01-empty-file": _file("empty", b""),
    "02-text": _file("text.txt", b"hello\n"),
    "03-random-256k": _file("random.bin", os.urandom(256 * 1024)),
    "04-empty-directories": _empty_directories,
    "05-setuid": _file("setuid", mode=0o4755),
    "06-setgid": _file("setgid", mode=0o2755),
    "07-mode-000-file": _file("mode-000", b"nobody may read me\n", 0o000),
    "08-sticky-directory": _directory_mode(0o1777),
    "09-setgid-directory": _directory_mode(0o2775),
    "10-mode-000-directory": _directory_mode(0o000),
    "11-owners": _file("user-1234", owner=(1234, 2345)),
    "12-nobody": _file("nobody", owner=(65534, 65534)),
    "13-setuid-other-user": _file("setuid-user", owner=(1001, 1001), mode=0o4750),
    "14-directory-owner": _directory_mode(0o750, owner=(1000, 0)),
    "15-relative-link": _link("../15-relative-link/target-that-is-not-there"),
    "16-absolute-link": _link("/etc/passwd"),
    "17-dangling-link": _link("/nonexistent/dangling"),
    "18-link-loop": _symlink_loop,
    "19-link-outside": _link("../../../../outside/of/everything"),
    "20-link-to-directory": _symlink_to_directory,
    "21-long-link-target": _link("x" * 1000),
    "22-link-owner-times": _symlink_owner_and_times,
    "23-hard-links-across-dirs": _hard_links_across_directories,
    "24-hard-links-one-dir": _hard_links_in_one_directory,
    "25-hard-linked-symlink": _hard_linked_symlink,
    "26-xattr-user": _xattr_user,
    "27-xattr-trusted": _xattr_trusted,
    "28-xattr-directory": _xattr_on_directory,
    "29-access-acl": _access_acl,
    "30-default-acl": _default_acl,
    "31-capability": _capability,
    "32-sparse-1gib": _sparse,
    "33-fifo": _node(stat.S_IFIFO, 0o620),
    "34-socket-node": _node(stat.S_IFSOCK, 0o660),
    "35-bound-socket": _bound_socket,
    "36-char-device": _node(stat.S_IFCHR, 0o666, (1, 3)),
    "37-block-device": _node(stat.S_IFBLK, 0o660, (7, 0)),
    "38-invalid-utf8-name": _name(b"invalid-utf8-\xff\xfe"),
    "39-newline-name": _name(b"new\nline"),
    "40-nfc-nfd": _nfc_beside_nfd,
    "41-255-byte-name": _name(b"n" * 255),
    "42-odd-names": _odd_names,
    "43-deeper-than-path-max": _deep,
    "44-many-small-files": _many_small_files,
    "45-times": _times_case,
    "46-hard-link-from-outside": lambda root: None,  # filled by build_corpus
}
"""One property per case, every property SPEC §5 and the issue name."""

# Hard links to files outside the tree cannot be kept by any backend: the clone holds the file once.
OUTSIDE_LINK = "46-hard-link-from-outside/linked"


def build_corpus(root: Path, outside: Path) -> None:
    """Write every case below ``root``; ``outside`` (not under ``root``) receives the far end of a hard link."""
    for name, build in CASES.items():
        (root / name).mkdir()
        build(root / name)
    _write(outside / "far-end", b"a hard link from outside the tree\n")
    os.link(outside / "far-end", root / OUTSIDE_LINK)
    for name in CASES:  # directories' times last: building inside changed them
        _times(root / name)


Manifest = dict[bytes, dict[str, Any]]


def manifest(root: Path) -> Manifest:
    """Every entry below ``root``: type, mode, owner, size, content digest, times, link target, device,
    extended attributes, whether sparse, and its hard-link group (the other names of its inode in the
    tree). Read by descriptors, with O_NOATIME: taking a manifest changes nothing."""
    entries: Manifest = {}
    inodes: dict[tuple[int, int], list[bytes]] = {}
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)  # the test's own path (current, a link): followed
    try:
        for visit in walk(fd):
            if visit.leaving:
                continue
            info, path = visit.info, b"/".join(os.fsencode(name) for name in visit.path)
            kind = stat.S_IFMT(info.st_mode)
            entry: dict[str, Any] = {
                "type": stat.filemode(info.st_mode)[0],
                "mode": oct(stat.S_IMODE(info.st_mode)),
                "owner": (info.st_uid, info.st_gid),
                "mtime_ns": info.st_mtime_ns,
                "atime_ns": info.st_atime_ns,
                "xattrs": _xattrs_of(f"/proc/self/fd/{visit.parent}/{visit.name}"),
            }
            if kind == stat.S_IFREG:
                entry |= {"size": info.st_size, "sha256": _digest(visit.parent, visit.name)}
                entry["sparse"] = info.st_blocks * 512 < info.st_size // 2
            elif kind == stat.S_IFLNK:
                entry["target"] = read_link(visit.parent, visit.name, info)
            elif kind in (stat.S_IFCHR, stat.S_IFBLK):
                entry["rdev"] = (os.major(info.st_rdev), os.minor(info.st_rdev))
            if kind != stat.S_IFDIR and info.st_nlink > 1:
                inodes.setdefault((info.st_dev, info.st_ino), []).append(path)
            entries[path] = entry
    finally:
        os.close(fd)
    for names in inodes.values():
        for name in names:
            entries[name]["hard_links"] = sorted(names)
    return entries


def _xattrs_of(path: str) -> dict[str, bytes]:
    return {name: os.getxattr(path, name, follow_symlinks=False) for name in os.listxattr(path, follow_symlinks=False)}


def _digest(parent: int, name: str) -> str:
    """Size and SHA-256 of the content's non-zero 64 KiB blocks with their offsets: equal for equal content
    however a filesystem stores the holes, and only the data regions are read (a 1 GiB hole costs nothing
    where the filesystem reports holes). Read READ bytes at a time: where it reports none (JuiceFS: the
    whole file is one data region) a 1 GiB hole reads in about a second, where 64 KiB reads took six."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOATIME, dir_fd=parent)
    try:
        digest, size, next_block = hashlib.sha256(), os.fstat(fd).st_size, 0
        for start, end in data_regions(fd, size):
            end_block = -(-end // BLOCK) * BLOCK
            # READ bytes per call, whole blocks: where holes are not reported (FUSE) a 1 GiB hole is read
            for read_at in range(max(start - start % BLOCK, next_block), end_block, READ):
                length = min(READ, end_block - read_at)
                span = os.pread(fd, length, read_at)
                for offset in range(0, len(span), BLOCK):
                    block = span[offset : offset + BLOCK]
                    if block != ZEROS[: len(block)]:
                        digest.update(struct.pack("<Q", read_at + offset) + block)
                next_block = read_at + length
        return f"{size}:{digest.hexdigest()}"
    finally:
        os.close(fd)


def differences(expected: Manifest, actual: Manifest) -> dict[str, list[str]]:
    """Per case (top-level directory), what differs: ``{case: ["path: field expected → actual", …]}``."""
    found: dict[str, list[str]] = {}
    for path in sorted(set(expected) | set(actual)):
        case = os.fsdecode(path.split(b"/", 1)[0])
        want, got = expected.get(path), actual.get(path)
        if want is None or got is None:
            found.setdefault(case, []).append(f"{path!r}: {'missing' if got is None else 'unexpected'}")
            continue
        for field in sorted(set(want) | set(got)):
            if want.get(field) != got.get(field):
                found.setdefault(case, []).append(f"{path!r}: {field} {want.get(field)!r} → {got.get(field)!r}")
    return found
