"""Paths a request names inside a tree: checked as text when the task is submitted, then found and removed by
descriptors, one component at a time, never through a link.

The trees are snapshot trees and their clones, in WVS's area, but what is inside them is the agent's work: any
name on the way may be a link it planted. So a path is never handed to ``open`` whole.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from wvs_core.ops import OpFailed
from wvs_core.storage import open_tree
from wvs_core.treewalk import open_directory, remove_entry

MAX_PATHS = 256
MAX_PATH_BYTES = 4096


def check_paths(_instance: object, attribute: Any, value: list[str]) -> None:
    """attrs validator: one to ``MAX_PATHS`` relative, normalized paths (no empty, ``.`` or ``..`` component, no
    leading or trailing ``/``), each at most ``MAX_PATH_BYTES`` bytes."""
    name = getattr(attribute, "name", "paths")
    if not 1 <= len(value) <= MAX_PATHS:
        raise ValueError(f"{name} must list 1 to {MAX_PATHS} paths, got {len(value)}")
    for index, path in enumerate(value):
        if len(path.encode()) > MAX_PATH_BYTES:
            raise ValueError(f"{name}[{index}] is longer than {MAX_PATH_BYTES} bytes")
        if any(part in ("", ".", "..") for part in path.split("/")):
            raise ValueError(
                f"{name}[{index}] must be a normalized relative path (no empty, '.' or '..' component, "
                f"no leading or trailing '/'), got {path[:200]!r}"
            )


def find_paths(tree: Path, paths: list[str], remove: bool = False) -> list[str]:
    """Those of ``paths`` (each once) that are entries of the directory ``tree`` (a link counts as itself); with
    ``remove``, remove them (a directory with everything below it, a link itself — never what it points to).

    Raises OpFailed (permanent: ``PATH_THROUGH_LINK``) when a directory on the way to a path is a link.
    """
    root = open_tree(tree)
    try:
        return [path for path in dict.fromkeys(paths) if _find(root, path.split("/"), remove)]
    finally:
        os.close(root)


def _find(root: int, parts: list[str], remove: bool) -> bool:
    *directories, name = parts
    fd = os.dup(root)
    try:
        for depth, directory in enumerate(directories, 1):
            try:
                child = open_directory(fd, directory)  # O_NOFOLLOW: a link is refused, never followed
            except FileNotFoundError:
                return False
            except NotADirectoryError:
                if stat.S_ISLNK(os.stat(directory, dir_fd=fd, follow_symlinks=False).st_mode):
                    through = "/".join(parts[:depth])
                    raise OpFailed(
                        "PATH_THROUGH_LINK",
                        f"{'/'.join(parts)!r} goes through the link {through!r}: nothing is removed through a link",
                        retryable=False,
                    ) from None
                return False  # a file where a directory would be: the path is not in the tree
            os.close(fd)
            fd = child
        try:
            os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if remove:
            remove_entry(name, fd)
        return True
    finally:
        os.close(fd)
