"""Bad input gets a clear WVS_BAD_REQUEST in the error envelope: never a 500."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.helpers import key
from wvs_core.db.engine import async_dsn


def assert_error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return dict(body["error"])


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b'{"wsid": 12, "owner": "x"}', "wsid"),
        (b'{"wsid": "ok-id", "owner": ["x"]}', "owner"),
        (b'{"wsid": "ok-id"}', "owner"),
        (b'{"wsid": "ok-id", "owner": "x", "extra": true}', "extra"),
        (b'{"wsid": "Bad_Id", "owner": "x"}', "wsid"),
        (b'{"wsid": "../../etc", "owner": "x"}', "wsid"),
        (b'{"wsid": "ok-id", "owner": ""}', "owner"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
async def test_malformed_workspace_bodies(api, content: bytes, fragment: str) -> None:
    response = await api.post("/v1/workspaces", content=content, headers={**key(), "content-type": "application/json"})
    error = assert_error(response, 400, "WVS_BAD_REQUEST")
    assert fragment in error["message"]


async def test_oversized_body(api) -> None:
    huge = b'{"wsid": "ok-id", "owner": "' + b"x" * 100_000 + b'"}'
    assert_error(await api.post("/v1/workspaces", content=huge, headers=key()), 400, "WVS_BAD_REQUEST")


async def test_bad_ids_in_paths_and_queries(api) -> None:
    for path in (
        "/v1/workspaces/UPPER",
        "/v1/workspaces/a",
        "/v1/workspaces/x..y/snapshots",
        "/v1/tasks/not-a-uuid",
    ):
        assert_error(await api.get(path), 400, "WVS_BAD_REQUEST")
    for query in (
        "limit=0",
        "limit=101",
        "limit=ten",
        "cursor=garbage",
        "status=DONE",
        "op=rm_rf",
        "wsid=BAD",
        "color=blue",
        "status=",
        "cursor=",
    ):
        assert_error(await api.get(f"/v1/tasks?{query}"), 400, "WVS_BAD_REQUEST")


async def test_snapshot_body_types(api) -> None:
    for body in (b'{"message": 5}', b'{"message": "x", "tag": 1}', b'{"message": "' + b"m" * 5000 + b'"}'):
        response = await api.post("/v1/workspaces/some-ws/snapshots", content=body, headers=key())
        assert_error(response, 400, "WVS_BAD_REQUEST")


async def test_unknown_things_are_404_in_the_envelope(api) -> None:
    assert_error(await api.get("/v1/workspaces/no-such-ws"), 404, "WVS_NOT_FOUND")
    assert_error(await api.get("/v1/tasks/01a21e96-ed6a-7531-a909-a04f53b8d655"), 404, "WVS_NOT_FOUND")
    assert_error(await api.get("/v1/nothing-here"), 404, "WVS_NOT_FOUND")
    response = await api.post("/v1/workspaces/no-such-ws/snapshots", json={}, headers=key())
    assert_error(response, 404, "WVS_NOT_FOUND")


async def test_wrong_method_is_an_envelope_too(api) -> None:
    response = await api.put("/v1/workspaces", json={})
    assert_error(response, 405, "WVS_BAD_REQUEST")


async def test_request_id_is_echoed_or_generated(api) -> None:
    response = await api.get("/healthz", headers={"X-Request-Id": "trace-me-123"})
    assert response.headers["x-request-id"] == "trace-me-123"
    generated = (await api.get("/healthz")).headers["x-request-id"]
    assert len(generated) == 36
    error = await api.get("/v1/workspaces/no-such-ws", headers={"X-Request-Id": "trace-404"})
    assert error.json()["error"]["request_id"] == "trace-404"


async def test_health_and_readiness(api) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    metrics = await api.get("/metrics")
    assert metrics.status_code == 200 and "text/plain" in metrics.headers["content-type"]


async def activate(database: str, wsid: str) -> None:
    """Make a workspace ACTIVE without an executor, so writes on it reach the database."""
    engine = create_async_engine(async_dsn(database))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE wvs.workspaces SET state = 'ACTIVE' WHERE wsid = :w"), {"w": wsid})
    finally:
        await engine.dispose()


@pytest.fixture
async def active(api, database) -> str:  # type: ignore[no-untyped-def]
    response = await api.post("/v1/workspaces", json={"wsid": "active-ws", "owner": "o"}, headers=key())
    assert response.status_code == 202, response.text
    await activate(database, "active-ws")
    return "active-ws"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"[" * 20_000 + b"]" * 20_000, "nest deeper than 32"),
        (b'{"message": "a\\u0000b"}', "message contains NUL"),
        (b'{"message": "a\\ud800b"}', "lone surrogate"),
        (b'{"message\\ud800": "x"}', "a key of the object"),
        (b'{"message": "a", "message": "b"}', "duplicate key 'message'"),
        (b'{"message": ' + b"9" * 5000 + b"}", "out of range"),
        (b'{"message": 1e999}', "out of range"),
        (b'{"message": NaN}', "NaN"),
        (b'{"message": "\\ud83d"}', "lone surrogate"),
    ],
)
async def test_hostile_bodies_are_400_naming_the_problem(api, active: str, content: bytes, fragment: str) -> None:
    response = await api.post(f"/v1/workspaces/{active}/snapshots", content=content, headers=key())
    error = assert_error(response, 400, "WVS_BAD_REQUEST")
    assert fragment in error["message"]


async def test_strings_the_database_stores_round_trip(api, active: str) -> None:
    message = "tab\t nl\n del\x7f c1\x85 nonchar\ufffe\uffff\U0010ffff pair\U0001f600"
    response = await api.post(f"/v1/workspaces/{active}/snapshots", json={"message": message}, headers=key())
    assert response.status_code == 202, response.text
    task = (await api.get(f"/v1/tasks/{response.json()['task_id']}")).json()
    assert task["params"]["message"] == message


@pytest.mark.parametrize(
    "query",
    [
        *("limit=%D9%A1%D9%A2", "limit=%C2%B2", "limit=%EF%BC%91", "limit=" + "9" * 5000, "limit=+5", "limit=%205"),
        *("status=%00", "cursor=%00", "%00=1", "op=a%00b", "wsid=a%00b"),
    ],
)
async def test_hostile_queries_are_400(api, query: str) -> None:
    for path in ("/v1/tasks", "/v1/workspaces"):
        assert_error(await api.get(f"{path}?{query}"), 400, "WVS_BAD_REQUEST")


async def test_the_string_rule_covers_every_path_and_query(api, active: str) -> None:
    # Routes that read no query parameter refuse a NUL in one too; so does a path.
    for path in (f"/v1/workspaces/{active}?x=%00", f"/v1/workspaces/{active}/current?%00", "/v1/workspaces/a%00b"):
        error = assert_error(await api.get(path), 400, "WVS_BAD_REQUEST")
        assert "NUL" in error["message"]


async def test_routes_without_fields_refuse_a_body(api, active: str) -> None:
    task_id = (await api.post(f"/v1/workspaces/{active}/snapshots", json={}, headers=key())).json()["task_id"]
    for content in (b'{"force": true}', b"[]", b'{"a": 1, "a": 1}', b"[" * 100 + b"]" * 100):
        assert_error(await api.post(f"/v1/tasks/{task_id}:cancel", content=content), 400, "WVS_BAD_REQUEST")
        assert_error(await api.request("DELETE", f"/v1/workspaces/{active}", content=content), 400, "WVS_BAD_REQUEST")
    assert (await api.post(f"/v1/tasks/{task_id}:cancel", content=b"{}")).status_code == 200
