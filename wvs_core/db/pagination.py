"""Keyset pagination on ``(created_at, id)``, newest first, with opaque cursors."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from wvs_core.errors import ErrorCode, WVSError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def encode_cursor(created_at: datetime, row_id: str | int) -> str:
    """An opaque cursor pointing just after the row ``(created_at, row_id)``."""
    raw = json.dumps([created_at.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str | int]:
    """Inverse of ``encode_cursor``; a malformed cursor is a ``WVS_BAD_REQUEST``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = json.loads(raw)
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None or isinstance(row_id, bool) or not isinstance(row_id, str | int):
            raise ValueError
        return moment, row_id
    except (ValueError, TypeError):
        raise WVSError(ErrorCode.BAD_REQUEST, "cursor is not a cursor returned by this API") from None


def keyset_page(
    query: sa.Select[Any],
    created_col: sa.ColumnElement[Any],
    id_col: sa.ColumnElement[Any],
    cursor: str | None,
    limit: int,
) -> sa.Select[Any]:
    """Restrict ``query`` to one page after ``cursor``; fetches ``limit + 1`` rows to detect a next page."""
    if cursor:
        created_at, row_id = decode_cursor(cursor)
        query = query.where(sa.tuple_(created_col, id_col) < sa.tuple_(sa.literal(created_at), sa.literal(row_id)))
    return query.order_by(created_col.desc(), id_col.desc()).limit(limit + 1)


def split_page(rows: list[Any], limit: int, created_attr: str, id_attr: str) -> tuple[list[Any], str | None]:
    """Cut the extra row fetched by ``keyset_page`` and build the next cursor from the last item kept."""
    if len(rows) <= limit:
        return rows, None
    kept = rows[:limit]
    last = kept[-1]
    return kept, encode_cursor(getattr(last, created_attr), getattr(last, id_attr))
