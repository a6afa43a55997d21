"""Bad input gets a clear WVS_BAD_REQUEST in the error envelope: never a 500."""

from __future__ import annotations

import pytest

from tests.helpers import key


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
