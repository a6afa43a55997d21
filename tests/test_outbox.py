"""The outbox is read safely: event ids are allocated at insert, not at commit, so a reader must never move
past an id that a transaction still running may yet commit — and a workspace's events get ids in the order
their transactions commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from wvs_core.config import DatabaseConfig
from wvs_core.db.engine import create_engine
from wvs_core.db.events import list_events, record, record_all
from wvs_core.db.outbox import Outbox
from wvs_core.events import EventType, NewEvent
from wvs_core.scope import EVERYTHING


@pytest.fixture
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(DatabaseConfig(dsn=database, pool_size=5))
    async with engine.begin() as conn:
        for wsid in ("gap-a", "gap-b", "gap-c"):
            await conn.execute(
                sa.text("INSERT INTO wvs.workspaces (wsid, root_path, owner) VALUES (:w, '/ws/' || :w, 'o')"),
                {"w": wsid},
            )
    yield engine
    await engine.dispose()


def event(wsid: str) -> NewEvent:
    return NewEvent(type=EventType.WORKSPACE_DISABLED, wsid=wsid, actor={"type": "test"})


async def ids_after(engine: AsyncEngine, after: int) -> list[int]:
    """What the dispatcher reads, checked against what the API lists."""
    read = [e.event_id for e in await Outbox(engine).read(after, 100)]
    async with engine.connect() as conn:
        listed = [e.event_id for e, _ in await list_events(conn, None, after, 100, EVERYTHING)]
    assert read == listed
    return read


async def test_a_reader_waits_for_an_earlier_id_still_in_flight(engine) -> None:
    async with engine.connect() as late, engine.connect() as early:
        slow = await late.begin()
        held = await record(late, event("gap-a"))  # allocated first, committed last
        async with early.begin():
            overtaking = await record(early, event("gap-b"))
        assert overtaking > held
        assert await ids_after(engine, held - 1) == [], "not past an id a running transaction holds"
        await slow.commit()
    assert await ids_after(engine, held - 1) == [held, overtaking]

    async with engine.connect() as doomed, engine.connect() as other:
        rolled_back = await doomed.begin()
        lost = await record(doomed, event("gap-a"))
        async with other.begin():
            kept = await record(other, event("gap-b"))
        assert await ids_after(engine, overtaking) == []
        await rolled_back.rollback()
    assert await ids_after(engine, overtaking) == [kept], f"{lost} never committed: the reader moves on"


async def test_a_workspaces_events_are_numbered_in_commit_order(engine) -> None:
    async with engine.connect() as first, engine.connect() as second:
        one = await first.begin()
        first_id = await record(first, event("gap-a"))

        async def later() -> int:
            async with second.begin():
                return await record(second, event("gap-a"))

        waiting = asyncio.create_task(later())
        await asyncio.sleep(0.3)
        assert not waiting.done(), "the second writer of a workspace waits for the first to commit"
        await asyncio.sleep(0)
        nudge = await record(first, event("gap-a"))  # still ours: the first transaction goes on
        await one.commit()
        second_id = await waiting
    assert first_id < nudge < second_id
    assert await ids_after(engine, first_id - 1) == [first_id, nudge, second_id]


async def test_events_recorded_together_keep_their_order_and_hold_a_reader_back_until_they_commit(engine) -> None:
    async with engine.connect() as batch, engine.connect() as other:
        slow = await batch.begin()
        together = await record_all(batch, [event("gap-a"), event("gap-b"), event("gap-a")])
        assert together == sorted(together) and len(set(together)) == 3, "ascending, in the order given"
        async with other.begin():
            overtaking = await record(other, event("gap-c"))
        assert await ids_after(engine, together[0] - 1) == [], "not past ids a running transaction holds"
        await slow.commit()
    assert await ids_after(engine, together[0] - 1) == [*together, overtaking]
    async with engine.connect() as conn:
        kinds = (
            (
                await conn.execute(
                    sa.text("SELECT wsid FROM wvs.audit WHERE event_id = ANY(:ids) ORDER BY event_id"),
                    {"ids": together},
                )
            )
            .scalars()
            .all()
        )
    assert kinds == ["gap-a", "gap-b", "gap-a"]


async def test_a_batch_that_overtakes_an_earlier_id_is_read_whole_once_that_id_commits(engine) -> None:
    """Only a batch's last row carries a horizon (migration 0010): its other rows must neither let a reader
    past an earlier id still in flight nor be left unread when the batch is the newest thing committed."""
    async with engine.connect() as late, engine.connect() as batch:
        slow = await late.begin()
        held = await record(late, event("gap-a"))
        async with batch.begin():
            together = await record_all(batch, [event("gap-b"), event("gap-c"), event("gap-b"), event("gap-c")])
        assert min(together) > held
        assert await ids_after(engine, held - 1) == [], "no row of the batch is a safe point past the held id"
        await slow.commit()
    assert await ids_after(engine, held - 1) == [held, *together]
