"""Paths a request names inside a workspace's trees: checked as text at submission, then resolved by descriptors,
one component at a time, never through a link (SPEC §13).

Both trees hold the agent's work — the snapshot's as it was, the clone of ``current`` as it is — so any name on
the way may be a link or a FIFO the agent planted, possibly swapped in between the submission and the run.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import attrs

from wvs_core.ops import OpFailed
from wvs_core.treewalk import open_directory

MAX_PATHS = 256
MAX_PATH_BYTES = 4096  # PATH_MAX
MAX_NAME_BYTES = 255  # NAME_MAX: no component of a path on Linux is longer


def check_paths(_instance: object, attribute: Any, value: list[str]) -> None:
    """attrs validator: 1 to ``MAX_PATHS`` relative, normalized paths — no empty, ``.`` or ``..`` component, no
    leading or trailing ``/``, no NUL — each at most ``MAX_PATH_BYTES`` bytes of UTF-8, each component at most
    ``MAX_NAME_BYTES``."""
    name = getattr(attribute, "name", "paths")
    if not 1 <= len(value) <= MAX_PATHS:
        raise ValueError(f"{name} must list 1 to {MAX_PATHS} paths, got {len(value)}")
    for index, path in enumerate(value):
        if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
            raise ValueError(f"{name}[{index}] is longer than {MAX_PATH_BYTES} bytes")
        if "\0" in path or any(part in ("", ".", "..") for part in path.split("/")):
            raise ValueError(
                f"{name}[{index}] must be a normalized relative path (no empty, '.' or '..' component, no leading "
                f"or trailing '/'), got {path[:200]!r}"
            )
        if any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in path.split("/")):
            raise ValueError(f"{name}[{index}] has a component longer than {MAX_NAME_BYTES} bytes")


def outermost(paths: list[str]) -> list[str]:
    """``paths`` without repeats and without those below another listed path (restoring the directory covers
    them), in their order.

    In linear time of the text (after a sort): ordered by components, the paths below a path follow it in one run,
    so each path is compared with the last one kept only. Testing every ancestor of every path instead costs the
    square of a path's depth — seconds of the event loop for a request of a few deep paths."""
    unique = list(dict.fromkeys(paths))
    kept: set[str] = set()
    last: str | None = None
    for path in sorted(unique, key=lambda p: p.split("/")):
        if last is None or not path.startswith(last + "/"):
            kept.add(path)
            last = path
    return [path for path in unique if path in kept]


@attrs.frozen
class Found:
    """Where a path is in a tree: ``parent`` (a descriptor the caller closes) and the entry's ``name``, its
    ``lstat`` (None: absent), and the ``lstat`` of each directory on the way (for making missing ones)."""

    parent: int
    name: str
    info: os.stat_result | None
    directories: list[os.stat_result]


def resolve(root: int, path: str, make: list[os.stat_result] | None = None) -> Found | None:
    """Find ``path`` below the directory open as ``root`` without following a link. None when a directory on the
    way is missing (with ``make``, the ``lstat`` of the source's directories, it is made like them instead).

    Raises OpFailed (permanent) when a directory on the way is a link (``PATH_THROUGH_LINK``) or another kind of
    file (``PATH_NOT_A_DIRECTORY``): nothing is ever resolved through it."""
    *directories, name = path.split("/")
    fd = os.dup(root)
    seen: list[os.stat_result] = []
    try:
        for depth, directory in enumerate(directories):
            try:
                child = open_directory(fd, directory)
            except FileNotFoundError:
                if make is None:
                    os.close(fd)
                    return None
                _make_like(fd, directory, make[depth])
                child = open_directory(fd, directory)
            except (NotADirectoryError, OSError) as error:
                kind = os.stat(directory, dir_fd=fd, follow_symlinks=False).st_mode
                where = "/".join(directories[: depth + 1])
                if stat.S_ISLNK(kind):
                    raise OpFailed(
                        "PATH_THROUGH_LINK", f"{path!r} goes through the link {where!r}", retryable=False
                    ) from None
                if isinstance(error, NotADirectoryError):
                    raise OpFailed(
                        "PATH_NOT_A_DIRECTORY", f"{where!r} on the way to {path!r} is not a directory", retryable=False
                    ) from None
                raise
            seen.append(os.fstat(child))
            os.close(fd)
            fd = child
        try:
            info: os.stat_result | None = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            info = None
        return Found(fd, name, info, seen)
    except BaseException:
        os.close(fd)
        raise


def _make_like(parent: int, name: str, like: os.stat_result) -> None:
    os.mkdir(name, 0o700, dir_fd=parent)
    os.chown(name, like.st_uid, like.st_gid, dir_fd=parent, follow_symlinks=False)
    os.chmod(name, stat.S_IMODE(like.st_mode), dir_fd=parent)
    os.utime(name, ns=(like.st_atime_ns, like.st_mtime_ns), dir_fd=parent, follow_symlinks=False)
