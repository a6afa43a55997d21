"""Keyset cursors: every row exactly once, even with created_at ties and rows inserted while paging."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from wvs_core.db.engine import async_dsn


async def insert_workspaces(database: str, wsids: list[str], created_at: str | None) -> None:
    engine = create_async_engine(async_dsn(database))
    try:
        async with engine.begin() as conn:
            for wsid in wsids:
                await conn.execute(
                    sa.text(
                        "INSERT INTO wvs.workspaces (wsid, owner, root_path, created_at) "
                        "VALUES (:w, 'o', '/ws/' || :w, coalesce(:c, now()))"
                    ),
                    {"w": wsid, "c": datetime.fromisoformat(created_at) if created_at else None},
                )
    finally:
        await engine.dispose()


async def test_pages_survive_ties_and_concurrent_inserts(api, database) -> None:
    tied = [f"tie-{n:02d}" for n in range(7)]
    await insert_workspaces(database, tied, "2026-01-01T00:00:00+00:00")
    await insert_workspaces(database, ["older-1"], "2025-01-01T00:00:00+00:00")
    seen: list[str] = []
    cursor = None
    for page_number in range(20):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/workspaces", params=params)).json()
        seen += [item["wsid"] for item in page["items"]]
        if page_number == 0:  # newer rows arriving meanwhile must not shift the pages
            await insert_workspaces(database, ["late-1", "late-2"], None)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted([*tied, "older-1"])
    assert len(seen) == len(set(seen))
    assert seen[-1] == "older-1"
    assert seen[:7] == sorted(tied, reverse=True)


async def test_limit_bounds_the_page(api, database) -> None:
    await insert_workspaces(database, [f"many-{n:03d}" for n in range(120)], None)
    page = (await api.get("/v1/workspaces", params={"limit": 100})).json()
    assert len(page["items"]) == 100 and page["next_cursor"]
    default = (await api.get("/v1/workspaces")).json()
    assert len(default["items"]) == 20
    rest = (await api.get("/v1/workspaces", params={"limit": 100, "cursor": page["next_cursor"]})).json()
    assert len(rest["items"]) == 20 and rest["next_cursor"] is None
