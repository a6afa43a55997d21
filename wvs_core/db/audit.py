"""Audit rows: one per write and per task or workspace state change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from wvs_core.db.tables import audit


async def write_audit(
    conn: AsyncConnection,
    *,
    action: str,
    wsid: str | None,
    task_id: str | None = None,
    request_id: str | None = None,
    actor: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Append one audit row inside the caller's transaction."""
    await conn.execute(
        audit.insert().values(
            action=action, wsid=wsid, task_id=task_id, request_id=request_id, actor=actor, payload=payload
        )
    )
