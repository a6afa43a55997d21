"""Crash-safe filesystem primitives shared by executor ops and plugins."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    """Make a rename or create inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and ``rename(2)``."""
    tmp = _temporary_name(path)
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, separators=(",", ":"), ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_json(path: Path) -> Any | None:
    """Parse a JSON file; None when it is missing or not (yet) valid JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def switch_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically: a new symlink under a temporary name, then ``rename(2)``."""
    tmp = _temporary_name(link)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def _temporary_name(path: Path) -> Path:
    # Unique per call: the agent and the executor (or two threads) may write the same file at once.
    return path.with_name(f".{path.name}.tmp-{os.urandom(6).hex()}")
