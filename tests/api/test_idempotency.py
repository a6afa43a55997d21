"""Idempotency-Key rules (SPEC §2) and the audit row of each write."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.helpers import key
from wvs_core.db.engine import async_dsn


async def count(database: str, sql: str, **params: object) -> int:
    engine = create_async_engine(async_dsn(database))
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(sa.text(sql), params)).scalar_one())
    finally:
        await engine.dispose()


async def test_missing_key_is_400(api) -> None:
    response = await api.post("/v1/workspaces", json={"wsid": "no-key", "owner": "me"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "WVS_BAD_REQUEST"
    assert "Idempotency-Key" in response.json()["error"]["message"]
    assert (await api.get("/v1/workspaces/no-key")).status_code == 404


async def test_twenty_concurrent_identical_posts_create_one_task(api, database: str) -> None:
    headers = key()
    body = {"owner": "me", "wsid": "same-ws"}
    responses = await asyncio.gather(*(api.post("/v1/workspaces", json=body, headers=headers) for _ in range(20)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["init_task_id"] for r in responses}) == 1
    assert all(r.json() == responses[0].json() for r in responses)
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 19
    assert await count(database, "SELECT count(*) FROM wvs.tasks WHERE wsid = 'same-ws'") == 1
    assert await count(database, "SELECT count(*) FROM wvs.audit WHERE action = 'workspace.created'") == 1


async def test_same_key_other_body_is_a_mismatch(api) -> None:
    headers = key()
    first = await api.post("/v1/workspaces", json={"wsid": "mismatch", "owner": "a"}, headers=headers)
    assert first.status_code == 202
    second = await api.post("/v1/workspaces", json={"wsid": "mismatch", "owner": "b"}, headers=headers)
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "WVS_CONFLICT_IDEMPOTENT_MISMATCH"


async def test_existing_wsid_with_another_request_is_conflict_exists(api) -> None:
    assert (await api.post("/v1/workspaces", json={"wsid": "taken", "owner": "a"}, headers=key())).status_code == 202
    again = await api.post("/v1/workspaces", json={"wsid": "taken", "owner": "a"}, headers=key())
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "WVS_CONFLICT_EXISTS"


async def test_key_order_in_the_body_does_not_matter(api) -> None:
    headers = key()
    first = await api.post("/v1/workspaces", content=b'{"wsid": "order", "owner": "a"}', headers=headers)
    second = await api.post("/v1/workspaces", content=b'{"owner":"a","wsid":"order"}', headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()


async def test_writes_on_a_workspace_that_is_not_active(api) -> None:
    await api.post("/v1/workspaces", json={"wsid": "still-init", "owner": "a"}, headers=key())
    response = await api.post("/v1/workspaces/still-init/snapshots", json={}, headers=key())
    assert response.status_code == 412
    assert response.json()["error"]["code"] == "WVS_PRECONDITION_FAILED"


async def test_every_write_is_audited_with_its_request_id(api, database: str) -> None:
    response = await api.post(
        "/v1/workspaces",
        json={"wsid": "audited", "owner": "a"},
        headers={**key(), "X-Request-Id": "req-audit-1"},
    )
    task_id = response.json()["init_task_id"]
    assert (
        await count(
            database,
            "SELECT count(*) FROM wvs.audit WHERE request_id = 'req-audit-1' AND wsid = 'audited' "
            "AND action IN ('workspace.created', 'task.created')",
        )
        == 2
    )
    assert await count(database, "SELECT count(*) FROM wvs.audit WHERE task_id = :t", t=task_id) == 1
    task = (await api.get(f"/v1/tasks/{task_id}")).json()
    assert task["request_id"] == "req-audit-1"
    assert task["status"] == "PENDING" and task["op"] == "init_workspace"
