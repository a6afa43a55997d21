"""Keyset pagination on ``(created_at, id)``, newest first, with opaque cursors; and position cursors for a
list stored whole (a task's result)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from wvs_core.errors import ErrorCode, WVSError
from wvs_core.ids import is_uuid, is_wsid
from wvs_core.untrusted import INT_MAX, UntrustedInputError, parse_json

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 256  # a real one is about 110 characters
_CURSOR = re.compile(r"[A-Za-z0-9_-]+")
_MAX_MOMENT_LENGTH = 40  # "2026-05-09T07:35:25.123456+00:00" and a little room

IdRule = Callable[[object], bool]
"""What a cursor's row id must be to stand for a row of the paged table (and to be accepted by its id column)."""


def is_event_id(value: object) -> bool:
    """An audit ``event_id``: a BIGSERIAL, so an int from 1 to 2**63 - 1 (never a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= INT_MAX


ID_RULES: dict[str, IdRule] = {"wsid": is_wsid, "task_id": is_uuid, "snapshot_id": is_uuid, "event_id": is_event_id}
"""The id column of every paged table and what its values are; ``keyset_page`` refuses another column."""


def encode_cursor(created_at: datetime, row_id: str | int) -> str:
    """An opaque cursor pointing just after the row ``(created_at, row_id)``."""
    raw = json.dumps([created_at.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, id_rule: IdRule) -> tuple[datetime, str | int]:
    """Inverse of ``encode_cursor``: a moment PostgreSQL's timestamptz holds (aware, in UTC) and a row id
    that ``id_rule`` accepts. Cursors are not signed: each field is checked against what its column holds,
    so any cursor, forged or not, is a position in the keyset and nothing else. Anything else is a
    ``WVS_BAD_REQUEST``."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH or not _CURSOR.fullmatch(cursor):
            raise ValueError
        fields = parse_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), max_depth=1)
        if not (isinstance(fields, list) and len(fields) == 2):
            raise ValueError
        created_at, row_id = fields
        if not (isinstance(created_at, str) and len(created_at) <= _MAX_MOMENT_LENGTH) or not id_rule(row_id):
            raise ValueError
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError
        # Years 1 to 9999 in UTC, all within timestamptz's range; an offset past either end overflows here.
        return moment.astimezone(UTC), row_id
    except (ValueError, TypeError, OverflowError, UntrustedInputError):
        raise WVSError(ErrorCode.BAD_REQUEST, "cursor is not a cursor returned by this API") from None


def keyset_page(
    query: sa.Select[Any],
    created_col: sa.ColumnElement[Any],
    id_col: sa.ColumnElement[Any],
    cursor: str | None,
    limit: int,
) -> sa.Select[Any]:
    """Restrict ``query`` to one page after ``cursor``; fetches ``limit + 1`` rows to detect a next page.
    ``id_col`` must be one of ``ID_RULES``, whose rule the cursor's row id must pass."""
    if cursor:
        created_at, row_id = decode_cursor(cursor, ID_RULES[str(getattr(id_col, "name", ""))])
        after = sa.tuple_(sa.literal(created_at, created_col.type), sa.literal(row_id, id_col.type))
        query = query.where(sa.tuple_(created_col, id_col) < after)
    return query.order_by(created_col.desc(), id_col.desc()).limit(limit + 1)


def split_page(rows: list[Any], limit: int, created_attr: str, id_attr: str) -> tuple[list[Any], str | None]:
    """Cut the extra row fetched by ``keyset_page`` and build the next cursor from the last item kept."""
    if len(rows) <= limit:
        return rows, None
    kept = rows[:limit]
    last = kept[-1]
    return kept, encode_cursor(getattr(last, created_attr), getattr(last, id_attr))


def encode_position(index: int) -> str:
    """An opaque cursor pointing at item ``index`` of a list that never changes (a finished task's result)."""
    raw = json.dumps([index], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(cursor: str, length: int) -> int:
    """Inverse of ``encode_position`` for a list of ``length`` items: an index from 1 to ``length - 1`` (the
    only ones a next page starts at). Like ``decode_cursor``, anything else — forged, truncated, a keyset
    cursor, a position past the end — is a ``WVS_BAD_REQUEST``."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH or not _CURSOR.fullmatch(cursor):
            raise ValueError
        fields = parse_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), max_depth=1)
        if not (isinstance(fields, list) and len(fields) == 1):
            raise ValueError
        (index,) = fields
        if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index < length:
            raise ValueError
        return index
    except (ValueError, TypeError, UntrustedInputError):
        raise WVSError(ErrorCode.BAD_REQUEST, "cursor is not a cursor returned by this API for this list") from None
