"""What accepting a snapshot costs the database, pinned: the accept path is the API's hot path, and a statement
added to it is a round trip on every request (``wvs_core/db/accept.py``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.api.test_bad_input import activate
from tests.api.test_idempotency import count
from tests.helpers import key
from wvs_core.db.engine import asyncpg_dsn
from wvs_core.db.events import CHANNEL

WSID = "cost-ws"


@contextlib.contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement this process sends to a database meanwhile (BEGIN and COMMIT aside): through
    SQLAlchemy, and straight through a pooled connection's asyncpg driver (the accept's, ``db/accept.py``)."""
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    driver_execute = asyncpg.Connection._execute

    async def driver_note(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query)
        return await driver_execute(self, query, *args, **kwargs)

    sa.event.listen(Engine, "before_cursor_execute", note)
    asyncpg.Connection._execute = driver_note  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        asyncpg.Connection._execute = driver_execute  # type: ignore[method-assign]
        sa.event.remove(Engine, "before_cursor_execute", note)


async def active_workspace(api: Any, database: str) -> None:
    assert (await api.post("/v1/workspaces", json={"wsid": WSID, "owner": "o"}, headers=key())).status_code == 202
    await activate(database, WSID)


@contextlib.asynccontextmanager
async def wake_ups(database: str) -> AsyncIterator[list[str]]:
    """The channels of the notifications the database delivers meanwhile: the schedulers' and the dispatcher's."""
    heard: list[str] = []
    listener = await asyncpg.connect(asyncpg_dsn(database))
    try:
        for channel in ("wvs_tasks", CHANNEL):
            await listener.add_listener(channel, lambda *args: heard.append(args[2]))
        yield heard
    finally:
        await listener.close()


async def test_a_snapshot_is_accepted_in_one_statement_that_wakes_the_schedulers(api, database: str) -> None:
    await active_workspace(api, database)
    headers = key()
    async with wake_ups(database) as heard:
        with statements() as sent:
            created = await api.post(f"/v1/workspaces/{WSID}/snapshots", json={"message": "m"}, headers=headers)
        for _ in range(100):
            if len(heard) == 2:
                break
            await asyncio.sleep(0.01)
    assert created.status_code == 202, created.text
    # The workspace lock, the checks, the task, its event and both wake-ups: one statement, one commit.
    assert len(sent) == 1, sent
    assert sorted(heard) == sorted(["wvs_tasks", CHANNEL])

    async with wake_ups(database) as heard:
        with statements() as sent:
            replayed = await api.post(f"/v1/workspaces/{WSID}/snapshots", json={"message": "m"}, headers=headers)
        await asyncio.sleep(0.1)
    assert (replayed.status_code, replayed.json()) == (202, created.json())
    assert replayed.headers["idempotent-replayed"] == "true"
    assert len(sent) == 1, sent
    assert heard == []  # nothing new to run

    with statements() as sent:
        mismatch = await api.post(f"/v1/workspaces/{WSID}/snapshots", json={"message": "other"}, headers=headers)
    assert mismatch.json()["error"]["code"] == "WVS_CONFLICT_IDEMPOTENT_MISMATCH"
    assert len(sent) == 1, sent
    assert await count(database, "SELECT count(*) FROM wvs.audit WHERE action = 'task.created'") == 2  # init too


async def test_concurrent_identical_snapshot_posts_create_one_task_with_one_event(api, database: str) -> None:
    await active_workspace(api, database)
    headers = key()
    url = f"/v1/workspaces/{WSID}/snapshots"
    responses = await asyncio.gather(*(api.post(url, json={}, headers=headers) for _ in range(20)))
    assert {r.status_code for r in responses} == {202}
    assert all(r.json() == responses[0].json() for r in responses)
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 19
    snapshot_tasks = "SELECT count(*) FROM wvs.tasks WHERE op = 'snapshot_create'"
    assert await count(database, snapshot_tasks) == 1
    created_events = (
        "SELECT count(*) FROM wvs.audit WHERE action = 'task.created' AND payload ->> 'op' = 'snapshot_create'"
    )
    assert await count(database, created_events) == 1
