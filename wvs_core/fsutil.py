"""Crash-safe file writes for trusted paths (WVS's area, an agent's own files); an agent view is written
only through ``wvs_core.agentview``."""

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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``rename(2)``."""
    tmp = _temporary_name(path)
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and ``rename(2)``."""
    atomic_write_bytes(path, json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


def read_json(path: Path) -> Any | None:
    """Parse a JSON file; None when it is missing or not (yet) valid JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _temporary_name(path: Path) -> Path:
    # Unique per call: the agent and the executor (or two threads) may write the same file at once.
    return path.with_name(f".{path.name}.tmp-{os.urandom(6).hex()}")
