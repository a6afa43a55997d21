"""Identifiers: UUIDv7 ids for rows and trees, and validation of every id that reaches a path."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from typing import Any

WSID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> str:
    """Return a new UUIDv7 (RFC 9562) as text; ids made in one process sort in creation order."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same (or earlier) millisecond: bump the 12-bit counter so ids stay monotonic.
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:
                ms += 1
                _counter = 0
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        _last_ms = ms
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms << 80) | (0x7 << 76) | (_counter << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def is_wsid(value: object) -> bool:
    """True when ``value`` is a valid workspace id (SPEC §2 regex)."""
    return isinstance(value, str) and WSID_PATTERN.fullmatch(value) is not None


def is_uuid(value: object) -> bool:
    """True when ``value`` is a canonical lower-case UUID string (the form of every WVS id)."""
    return isinstance(value, str) and UUID_PATTERN.fullmatch(value) is not None


def check_uuid(_instance: object, attribute: Any, value: Any) -> None:
    """attrs validator: ``value`` must be a WVS id (a canonical UUID)."""
    if not is_uuid(value):
        raise ValueError(f"{getattr(attribute, 'name', 'id')} must be a WVS id (UUID), got {value!r}")


def check_wsid(_instance: object, attribute: Any, value: Any) -> None:
    """attrs validator: ``value`` must be a workspace id (SPEC §2 regex)."""
    if not is_wsid(value):
        raise ValueError(f"{getattr(attribute, 'name', 'wsid')} must match {WSID_PATTERN.pattern}, got {value!r}")
