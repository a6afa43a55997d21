"""Accepting tasks in batches (``wvs_core/db/accept.py``): many concurrent requests share statements, and still
each gets exactly what it would have got alone — its task in arrival order with its event, its replay, its
error — while a workspace someone else holds, or a request the database refuses, holds up no other."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.queue_conformance import add_workspaces
from wvs_core.config import DatabaseConfig
from wvs_core.db.engine import asyncpg_dsn, create_engine
from wvs_core.db.events import CHANNEL
from wvs_core.db.store import Accepted, Store, Submission, TaskSpec
from wvs_core.errors import ErrorCode, WVSError
from wvs_core.ids import uuid7
from wvs_core.scope import EVERYTHING, Scope
from wvs_pgqueue.queue import PostgresQueue

SPEC = TaskSpec("op", {"n": 1}, 5, 300)


@pytest.fixture
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(DatabaseConfig(dsn=database, pool_size=4))
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def store(engine: AsyncEngine) -> AsyncIterator[Store]:
    store = Store(engine, PostgresQueue(engine, {}))
    try:
        yield store
    finally:
        await store.close()


@contextlib.contextmanager
def accepting_statements() -> Iterator[list[int]]:
    """The number of requests in each accepting statement this process sends meanwhile."""
    sizes: list[int] = []
    fetch = asyncpg.Connection.fetch

    async def counted(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        if "jsonb_to_recordset" in query:
            sizes.append(len(json.loads(args[0])))
        return await fetch(self, query, *args, **kwargs)

    asyncpg.Connection.fetch = counted  # type: ignore[method-assign]
    try:
        yield sizes
    finally:
        asyncpg.Connection.fetch = fetch  # type: ignore[method-assign]


def submission(key: str | None = None, request_hash: str = "h") -> Submission:
    return Submission(key or uuid7(), request_hash, uuid7(), {"type": "test"})


async def submit(store: Store, wsid: str, sub: Submission | None = None, scope: Scope = EVERYTHING) -> Accepted:
    return await store.submit_task(wsid, SPEC, sub or submission(), scope=scope)


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(sa.text(sql), params))


async def test_concurrent_requests_share_statements_and_keep_each_workspaces_arrival_order(
    store: Store, engine: AsyncEngine, database: str
) -> None:
    wsids = [f"batch-{n}" for n in range(5)]
    await add_workspaces(engine, wsids)
    listener = await asyncpg.connect(asyncpg_dsn(database))
    heard: list[str] = []
    await listener.add_listener("wvs_tasks", lambda *args: heard.append(args[2]))
    await listener.add_listener(CHANNEL, lambda *args: heard.append(args[2]))
    try:
        with accepting_statements() as sizes:
            # Submitted in this order: each workspace's tasks must be created (and claimed) in it.
            accepted = await asyncio.gather(*(submit(store, wsids[n % 5]) for n in range(200)))
        for _ in range(100):
            if len(heard) >= 2 * len(sizes):
                break
            await asyncio.sleep(0.01)
    finally:
        await listener.close()

    assert all(a.created for a in accepted)
    assert sum(sizes) == 200
    assert len(sizes) < 50, f"200 concurrent requests took {len(sizes)} statements"
    # One wake-up of the schedulers and one of the event dispatcher per statement, not per task.
    assert sorted(heard) == sorted(["wvs_tasks", CHANNEL] * len(sizes))
    for n, wsid in enumerate(wsids):
        submitted = [a.task.task_id for a in accepted[n::5]]
        in_fifo_order = await rows(
            engine, "SELECT task_id FROM wvs.tasks WHERE wsid = :wsid ORDER BY created_at, task_id", wsid=wsid
        )
        assert [row.task_id for row in in_fifo_order] == submitted
        events = await rows(
            engine,
            "SELECT task_id FROM wvs.audit WHERE wsid = :wsid AND action = 'task.created' ORDER BY event_id",
            wsid=wsid,
        )
        assert [row.task_id for row in events] == submitted  # one event each, in the tasks' order
        head = await rows(engine, "SELECT head_task_id FROM wvs.workspaces WHERE wsid = :wsid", wsid=wsid)
        assert head[0].head_task_id == submitted[0]


async def test_identical_requests_in_one_batch_create_one_task_and_a_different_one_is_refused(
    store: Store, engine: AsyncEngine
) -> None:
    await add_workspaces(engine, ["twice"])
    key = uuid7()
    outcomes = await asyncio.gather(
        *(submit(store, "twice", submission(key)) for _ in range(10)),
        submit(store, "twice", submission(key, request_hash="other")),
        return_exceptions=True,
    )
    *same, different = outcomes
    assert isinstance(different, WVSError) and different.code == ErrorCode.CONFLICT_IDEMPOTENT_MISMATCH
    assert all(isinstance(a, Accepted) for a in same)
    assert sum(a.created for a in same if isinstance(a, Accepted)) == 1
    assert len({a.task.task_id for a in same if isinstance(a, Accepted)}) == 1
    assert len(await rows(engine, "SELECT 1 FROM wvs.tasks WHERE wsid = 'twice'")) == 1
    assert len(await rows(engine, "SELECT 1 FROM wvs.audit WHERE wsid = 'twice' AND action = 'task.created'")) == 1


async def test_each_request_of_a_batch_gets_its_own_answer(store: Store, engine: AsyncEngine) -> None:
    await add_workspaces(engine, ["mine", "theirs", "frozen"])
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE wvs.workspaces SET state = 'DISABLED' WHERE wsid = 'frozen'"))
        await conn.execute(sa.text("UPDATE wvs.workspaces SET owner = 'someone' WHERE wsid = 'theirs'"))
    conformance = Scope(frozenset({"conformance"}))
    with accepting_statements() as sizes:
        outcomes = await asyncio.gather(
            submit(store, "mine", scope=conformance),
            submit(store, "theirs", scope=conformance),
            submit(store, "frozen"),
            submit(store, "missing"),
            submit(store, "theirs"),
            return_exceptions=True,
        )
    mine, not_theirs, frozen, missing, theirs = outcomes
    assert isinstance(mine, Accepted) and mine.created
    assert isinstance(theirs, Accepted) and theirs.created  # an unrestricted scope sees every owner's
    assert isinstance(not_theirs, WVSError) and not_theirs.code == ErrorCode.NOT_FOUND
    assert isinstance(frozen, WVSError) and frozen.code == ErrorCode.GONE
    assert isinstance(missing, WVSError) and missing.code == ErrorCode.NOT_FOUND
    assert len(sizes) <= 3  # one batch (maybe after a first request alone), then "missing" looked for alone


async def test_a_workspace_held_elsewhere_holds_up_no_other_workspace(store: Store, engine: AsyncEngine) -> None:
    await add_workspaces(engine, ["held", "free-1", "free-2"])
    async with engine.connect() as holder:
        await holder.execute(sa.text("BEGIN"))
        await holder.execute(sa.text("SELECT 1 FROM wvs.workspaces WHERE wsid = 'held' FOR UPDATE"))
        waiting = asyncio.ensure_future(submit(store, "held"))
        others = await asyncio.wait_for(asyncio.gather(submit(store, "free-1"), submit(store, "free-2")), 10)
        assert all(a.created for a in others)
        await asyncio.sleep(0.2)
        assert not waiting.done(), "accepted while another transaction held its workspace"
        await holder.execute(sa.text("COMMIT"))
    assert (await asyncio.wait_for(waiting, 10)).created


async def test_a_request_the_database_refuses_fails_alone(store: Store, engine: AsyncEngine) -> None:
    await add_workspaces(engine, ["poison", "healthy"])
    async with engine.begin() as conn:  # a fault in one row's insert, as a constraint or a full disk would give
        await conn.execute(
            sa.text(
                "CREATE FUNCTION wvs.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.idempotency_key = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"
            )
        )
        await conn.execute(
            sa.text(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON wvs.tasks FOR EACH ROW "
                "EXECUTE FUNCTION wvs.refuse_poison()"
            )
        )
    with accepting_statements() as sizes:
        outcomes = await asyncio.gather(
            *(submit(store, "healthy") for _ in range(5)),
            submit(store, "poison", submission("poison")),
            *(submit(store, "poison") for _ in range(5)),
            return_exceptions=True,
        )
    refused = outcomes[5]
    assert isinstance(refused, Exception) and "refused" in str(refused)
    accepted = [outcome for n, outcome in enumerate(outcomes) if n != 5]
    assert all(isinstance(a, Accepted) and a.created for a in accepted), accepted
    assert len(await rows(engine, "SELECT 1 FROM wvs.tasks")) == 10
    assert len(await rows(engine, "SELECT 1 FROM wvs.audit WHERE action = 'task.created'")) == 10
    assert max(sizes) > 1  # they did share a statement first
