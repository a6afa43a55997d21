"""Keyset cursors: every row exactly once, even with created_at ties and rows inserted while paging."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest
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


def forge(*fields: object, raw: bytes | None = None) -> str:
    """A cursor of the API's own encoding (URL-safe base64 of JSON, unpadded) holding anything."""
    data = raw if raw is not None else json.dumps(list(fields)).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


MOMENT = "2026-01-01T00:00:00+00:00"
UUID = "01a21e96-ed6a-7531-a909-a04f53b8d655"
FORGED = {
    "not base64": "a+b/c==",
    "one char short of a quantum": "abcde",
    "too long": "A" * 300,
    "non-ASCII": "Wy\u0661\u0662",
    "not JSON": forge(raw=b"\xff\xfe[1"),
    "JSON, not a list": forge(raw=b'{"a": 1}'),
    "deep list": forge(raw=b"[" * 5000 + b"]" * 5000),
    "three fields": forge(MOMENT, UUID, 1),
    "one field": forge(MOMENT),
    "time not a string": forge(1767225600, UUID),
    "time naive": forge("2026-01-01T00:00:00", UUID),
    "time not a time": forge("yesterday", UUID),
    "time before year 1 in UTC": forge("0001-01-01T00:00:00+14:00", UUID),
    "time after year 9999 in UTC": forge("9999-12-31T23:59:59-14:00", UUID),
    "time with NUL": forge("2026-01-01T00:00:00\u0000+00:00", UUID),
    "time too long": forge(MOMENT + " " * 100, UUID),
    "time with a lone surrogate": forge(raw=b'["2026-01-01T00:00:00+00:00\\ud800", 1]'),
    "id null": forge(MOMENT, None),
    "id bool": forge(MOMENT, True),
    "id float": forge(MOMENT, 1.5),
    "id list": forge(MOMENT, [UUID]),
    "id huge int": forge(MOMENT, 10**30),
    "id past bigint": forge(MOMENT, 2**63),
    "id negative": forge(MOMENT, -1),
    "id int past digit limit": forge(raw=b'["2026-01-01T00:00:00+00:00", ' + b"9" * 150 + b"]"),
    "id empty string": forge(MOMENT, ""),
    "id with NUL": forge(MOMENT, "a\u0000"),
    "id lone surrogate": forge(raw=b'["2026-01-01T00:00:00+00:00", "\\udfff"]'),
    "id upper-case UUID": forge(MOMENT, UUID.upper()),
    "duplicate keys": forge(raw=b'[{"a": 1, "a": 2}, 1]'),
    "NaN id": forge(raw=b'["2026-01-01T00:00:00+00:00", NaN]'),
}
LISTS = ("/v1/workspaces", "/v1/tasks", "/v1/workspaces/paged-ws/snapshots", "/v1/workspaces/paged-ws/audit")


@pytest.mark.parametrize("shape", FORGED)
async def test_forged_cursors_are_400_on_every_list(api, database, shape: str) -> None:
    await insert_workspaces(database, ["paged-ws"], None)
    for path in LISTS:
        response = await api.get(path, params={"cursor": FORGED[shape]})
        assert response.status_code == 400, (path, response.text)
        assert response.json()["error"]["code"] == "WVS_BAD_REQUEST"


async def test_a_forged_cursor_of_the_right_shape_is_just_a_position(api, database) -> None:
    await insert_workspaces(database, ["paged-ws"], "2026-01-01T00:00:00+00:00")
    # Each list's own id type, at either end of the time range: a page, maybe empty, never an error.
    ids = {"/v1/workspaces": "zz-last", "/v1/tasks": UUID, "/v1/workspaces/paged-ws/snapshots": UUID}
    ids["/v1/workspaces/paged-ws/audit"] = 2**63 - 1
    for path, row_id in ids.items():
        for moment in ("0001-01-01T00:00:00-14:00", "9999-12-31T23:59:59+14:00", "2026-01-01T00:00:00+05:30"):
            response = await api.get(path, params={"cursor": forge(moment, row_id)})
            assert response.status_code == 200, (path, moment, response.text)
    everything = await api.get("/v1/workspaces", params={"cursor": forge("9999-12-31T23:59:59+14:00", "zz-last")})
    assert [item["wsid"] for item in everything.json()["items"]] == ["paged-ws"]
    # Another list's id type is refused (a UUID happens to be a valid wsid, so that way round is a position).
    assert (await api.get("/v1/tasks", params={"cursor": forge(MOMENT, "paged-ws")})).status_code == 400
    assert (await api.get("/v1/workspaces/paged-ws/audit", params={"cursor": forge(MOMENT, UUID)})).status_code == 400


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/workspaces", "limit=1&limit=2"),
        ("/v1/workspaces", "state=ACTIVE&state=DISABLED"),
        ("/v1/tasks", "cursor=a&cursor=b"),
        ("/v1/tasks", "status=DEAD&status=PENDING"),
        ("/v1/workspaces/paged-ws/snapshots", "limit=5&limit=5"),
        ("/v1/workspaces/paged-ws/audit", "limit=1&limit=1"),
    ],
)
async def test_a_query_parameter_given_twice_is_400_not_the_first_silently(api, database, path, query) -> None:
    await insert_workspaces(database, ["paged-ws"], None)
    response = await api.get(f"{path}?{query}")
    assert response.status_code == 400, response.text
    assert "more than once" in response.json()["error"]["message"]


async def test_a_repeatable_filter_may_repeat(api, database) -> None:
    await insert_workspaces(database, ["paged-ws"], None)
    response = await api.get("/v1/workspaces/paged-ws/snapshots?label=a=1&label=b=2")
    assert response.status_code == 200, response.text
