"""A request whose rows another transaction holds waits without a connection (``wvs_core/db/lockwait.py``):
the API's pool stays free for every other workspace, and after ``LOCK_PATIENCE`` the request answers 409
WVS_CONFLICT_LOCKED instead of waiting on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.queue_conformance import add_workspaces
from wvs_core.config import DatabaseConfig, PluginsConfig
from wvs_core.db import lockwait
from wvs_core.db.engine import asyncpg_dsn, create_api_engine
from wvs_core.db.outcomes import TaskRecorder
from wvs_core.db.store import Store, Submission, TaskSpec
from wvs_core.errors import ErrorCode, WVSError
from wvs_core.ids import uuid7
from wvs_core.models import Workspace
from wvs_core.plugins import PluginRegistry
from wvs_core.scope import EVERYTHING
from wvs_pgqueue.queue import PostgresQueue

SPEC = TaskSpec("op", {}, 5, 300)
POOL = 3


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    engine = create_api_engine(DatabaseConfig(dsn=database, pool_size=POOL))  # as the API's: no overflow
    store = Store(engine, PostgresQueue(engine, {}))
    try:
        yield store
    finally:
        await store.close()
        await engine.dispose()


@contextlib.asynccontextmanager
async def held(database: str, sql: str, *args: Any) -> AsyncIterator[asyncpg.Connection]:
    """A transaction holding the rows ``sql`` locks until the block ends (a long task ending, an operator's
    psql session)."""
    conn = await asyncpg.connect(asyncpg_dsn(database))
    try:
        await conn.execute("BEGIN")
        await conn.execute(sql, *args)
        yield conn
        await conn.execute("ROLLBACK")
    finally:
        await conn.close()


def workspace_row(wsid: str) -> tuple[str, str]:
    return "SELECT 1 FROM wvs.workspaces WHERE wsid = $1 FOR UPDATE", wsid


async def accept(store: Store, wsid: str) -> Any:
    return await store.submit_task(wsid, SPEC, Submission(uuid7(), "h", uuid7(), {"type": "test"}), scope=EVERYTHING)


async def checked(store: Store, wsid: str) -> Any:
    """A submit whose op checks the workspace first: the general path, a transaction of a few statements."""

    async def check(_conn: AsyncConnection, _workspace: Workspace) -> None:
        pass

    submission = Submission(uuid7(), "h", uuid7(), {"type": "test"})
    return await store.submit_task(wsid, SPEC, submission, check, scope=EVERYTHING)


async def test_requests_for_a_held_workspace_leave_the_pool_to_the_others(store: Store, database: str) -> None:
    await add_workspaces(store.engine, ["held", "free"])
    async with held(database, *workspace_row("held")):
        waiting = [asyncio.ensure_future(send(store, "held")) for send in (accept, checked) for _ in range(5 * POOL)]
        await asyncio.sleep(0.3)  # every one of them has met the held row
        started = time.monotonic()
        others = await asyncio.gather(
            accept(store, "free"), checked(store, "free"), store.get_workspace("free", scope=EVERYTHING)
        )
        elapsed = time.monotonic() - started
        assert not any(request.done() for request in waiting), "answered while its workspace was held"
    assert elapsed < 0.5, f"another workspace's requests took {elapsed:.2f}s while 30 waited for a held one"
    assert all(one.created for one in others[:2])
    assert all(one.created for one in await asyncio.wait_for(asyncio.gather(*waiting), 10))


async def set_retention(store: Store, wsid: str) -> None:
    """A workspace's own retention policy set (here: cleared), under its row lock."""
    await store.set_retention_policy(wsid, None, {"type": "test"}, uuid7(), scope=EVERYTHING)


@pytest.mark.parametrize("send", [accept, checked, set_retention], ids=["accept", "checked", "retention"])
async def test_a_workspace_held_past_the_patience_answers_conflict_locked(
    store: Store, database: str, monkeypatch: pytest.MonkeyPatch, send: Any
) -> None:
    monkeypatch.setattr(lockwait, "LOCK_PATIENCE", 0.5)
    await add_workspaces(store.engine, ["stuck"])
    async with held(database, *workspace_row("stuck")):
        started = time.monotonic()
        with pytest.raises(WVSError) as refused:
            await send(store, "stuck")
        elapsed = time.monotonic() - started
    assert refused.value.code == ErrorCode.CONFLICT_LOCKED
    assert "stuck" in str(refused.value) and "retry" in str(refused.value)
    assert 0.3 < elapsed < 2, elapsed
    await send(store, "stuck")  # released: the same request goes through


async def test_a_cancel_whose_task_row_is_held_waits_without_a_connection(
    store: Store, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancel meets its task's row held (by a scheduler ending it, say): it tries again, holding no
    connection between tries, and goes through once the row is free — or answers 409 after the patience."""
    await add_workspaces(store.engine, ["cancel-ws"])
    task_id = (await accept(store, "cancel-ws")).task.task_id
    recorder = TaskRecorder(PluginRegistry.load(PluginsConfig()))
    monkeypatch.setattr(lockwait, "LOCK_PATIENCE", 0.6)
    async with held(database, "SELECT 1 FROM wvs.tasks WHERE task_id = $1 FOR UPDATE", task_id):
        with pytest.raises(WVSError) as refused:
            await store.cancel_task(task_id, uuid7(), {"type": "test"}, recorder, scope=EVERYTHING)
        assert refused.value.code == ErrorCode.CONFLICT_LOCKED
    async with held(database, "SELECT 1 FROM wvs.tasks WHERE task_id = $1 FOR UPDATE", task_id) as holder:
        cancel = asyncio.ensure_future(
            store.cancel_task(task_id, uuid7(), {"type": "test"}, recorder, scope=EVERYTHING)
        )
        await asyncio.sleep(0.3)
        assert not cancel.done()
        await holder.execute("ROLLBACK")
        await holder.execute("BEGIN")  # the block's ROLLBACK then ends this empty one
        assert (await asyncio.wait_for(cancel, 5)).status == "CANCELED"
