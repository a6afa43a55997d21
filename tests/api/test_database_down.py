"""With its database unreachable the API says so — WVS_INTERNAL, "retry", Retry-After — and readiness fails,
while liveness holds; nothing is half-written and no traceback reaches the client."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection, AsyncAdapt_asyncpg_dbapi
from sqlalchemy.ext.asyncio import create_async_engine

from tests.api.test_accept_cost import WSID, active_workspace
from tests.conftest import StartService, make_config
from tests.helpers import key
from wvs_core.db.engine import async_dsn, database_unavailable
from wvs_core.embedded import EmbeddedPostgres
from wvs_core.migrate import upgrade


async def test_an_unreachable_database_is_reported_as_retryable(tmp_path: Path, start_service: StartService) -> None:
    # A database of the API's own, stopped once the API serves (a database that cannot be reached when the
    # API starts stops the API's start instead, naming the setting: tests/test_startup_errors.py).
    server = EmbeddedPostgres(tmp_path / "postgres")
    server.start()
    try:
        server.psql("CREATE DATABASE wvs;")
        await asyncio.to_thread(upgrade, server.dsn("wvs"))  # alembic runs its own event loop
        service = await start_service(make_config(server.dsn("wvs"), tmp_path), planes=("api",))
    finally:
        server.stop()
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


async def test_connections_the_database_dropped_cost_one_retryable_answer(api, database: str) -> None:
    # The API's pool does not ping a connection before each use (three round trips a request): after the
    # database drops its connections (a restart, a failover), one request hears "retry" and the pool renews.
    answers = await asyncio.gather(*(api.get("/v1/workspaces") for _ in range(5)))  # several pooled connections
    assert {answer.status_code for answer in answers} == {200}
    await drop_connections(database)
    first, *later = [await api.get("/v1/workspaces") for _ in range(5)]
    assert first.status_code == 500 and first.headers["retry-after"] == "1", first.text
    assert first.json()["error"]["message"] == "the database is unavailable; retry shortly"
    assert [answer.status_code for answer in later] == [200] * 4


async def test_an_accept_on_a_dropped_connection_costs_one_retryable_answer(api, database: str) -> None:
    # The accept (one statement, db/accept.py) on a dropped connection: the same one answer.
    await active_workspace(api, database)
    await asyncio.sleep(
        0.5
    )  # the wake-up after the workspace's creation is out (it would find a dead connection first)
    answers = await asyncio.gather(*(api.get(f"/v1/workspaces/{WSID}") for _ in range(5)))  # several connections
    assert {answer.status_code for answer in answers} == {200}
    await drop_connections(database)
    url = f"/v1/workspaces/{WSID}/snapshots"
    first, *later = [await api.post(url, json={}, headers=key()) for _ in range(5)]
    assert first.status_code == 500 and first.headers["retry-after"] == "1", first.text
    assert first.json()["error"]["message"] == "the database is unavailable; retry shortly"
    assert [answer.status_code for answer in later] == [202] * 4


async def drop_connections(database: str) -> None:
    """End every other session of the database, as a restart or a failover would."""
    engine = create_async_engine(async_dsn(database))
    try:
        async with engine.connect() as conn:
            await conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await engine.dispose()


def test_a_connection_whose_drop_the_driver_is_still_reading_is_unavailable() -> None:
    # Under load, the first statement on a connection the database just ended can find asyncpg's protocol still
    # reading the server's farewell error: InternalClientError ("another operation is in progress"), raised by
    # the driver itself (the accept) or translated by SQLAlchemy (every other statement). Either is "retry".
    stuck = asyncpg.InternalClientError("cannot switch to state 11; another operation (2) is in progress")
    dbapi = AsyncAdapt_asyncpg_dbapi(asyncpg)
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dbapi, stuck)
    except dbapi.Error as translated:
        through_sqlalchemy = sa.exc.DBAPIError.instance("SELECT 1", {}, translated, dbapi.Error)
    assert database_unavailable(stuck) and database_unavailable(through_sqlalchemy)
    assert not database_unavailable(sa.exc.DBAPIError.instance("SELECT 1", {}, dbapi.Error("syntax"), dbapi.Error))
