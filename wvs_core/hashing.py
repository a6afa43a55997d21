"""Request hashing for idempotency (SPEC §2)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def sorted_json(body: Any) -> str:
    """Serialise ``body`` with object keys sorted recursively and no insignificant whitespace."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_hash(body: Any, method: str, path: str) -> str:
    """``SHA-256(sorted_json(body) + method + path)`` as hex."""
    return hashlib.sha256((sorted_json(body) + method.upper() + path).encode()).hexdigest()
