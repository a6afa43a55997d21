"""With its database unreachable the API says so — WVS_INTERNAL, "retry", Retry-After — and readiness fails,
while liveness holds; nothing is half-written and no traceback reaches the client."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import StartService, make_config


async def test_an_unreachable_database_is_reported_as_retryable(tmp_path: Path, start_service: StartService) -> None:
    nowhere = f"postgresql+asyncpg://postgres@/wvs?host={tmp_path}"  # no server listens on this socket dir
    service = await start_service(make_config(nowhere, tmp_path), planes=("api",))
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        answers = [
            await client.get("/v1/workspaces"),
            await client.post("/v1/workspaces", json={"wsid": "later", "owner": "o"}, headers={"Idempotency-Key": "k"}),
        ]
        for answer in answers:
            assert answer.status_code == 500
            assert answer.json()["error"] == {
                "code": "WVS_INTERNAL",
                "message": "the database is unavailable; retry shortly",
                "request_id": answer.headers["x-request-id"],
            }
            assert answer.headers["retry-after"] == "1"
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200
