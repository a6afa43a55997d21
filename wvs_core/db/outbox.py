"""The event dispatcher's database side: reading the outbox, positions, delivery states."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from wvs_core.db.events import event_from_row, events_after, safe_upto
from wvs_core.db.rows import from_row
from wvs_core.db.tables import event_cursors, event_deliveries
from wvs_core.events import Event

ORIGIN = "(origin)"
"""A position row that is no subscription: where the first subscription starts (migration 0004 sets it to the
newest event the database held then: 0 for a new one)."""


@attrs.frozen
class Delivery:
    """How delivering one event to one subscription went so far."""

    event_id: int
    state: str  # delivered, retrying, failed
    attempts: int
    first_attempt_at: datetime
    last_attempt_at: datetime
    next_attempt_at: datetime | None = None
    last_error: str | None = None


class Outbox:
    """What the dispatcher reads and writes; each method is one short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def positions(self, names: Iterable[str]) -> dict[str, int]:
        """The position of each subscription in ``names``; only these are marked enabled. One seen for the
        first time starts where the furthest-behind enabled subscription is — or, when there is none, at the
        origin — so it gets what the others still get, never the history before them."""
        names = sorted(set(names))
        async with self.engine.begin() as conn:
            cursors = event_cursors.c
            behind = sa.select(sa.func.min(cursors.last_event_id)).where(
                cursors.enabled, cursors.subscription != ORIGIN
            )
            origin = sa.select(cursors.last_event_id).where(cursors.subscription == ORIGIN)
            start = (
                await conn.execute(
                    sa.select(sa.func.coalesce(behind.scalar_subquery(), origin.scalar_subquery(), safe_upto()))
                )
            ).scalar_one()
            if names:
                await conn.execute(
                    pg_insert(event_cursors)
                    .values([{"subscription": name, "last_event_id": start} for name in names])
                    .on_conflict_do_nothing(index_elements=["subscription"])
                )
            await conn.execute(
                event_cursors.update()
                .where(
                    event_cursors.c.enabled != event_cursors.c.subscription.in_(names),
                    event_cursors.c.subscription != ORIGIN,
                )
                .values(enabled=event_cursors.c.subscription.in_(names), updated_at=sa.func.clock_timestamp())
            )
            rows = await conn.execute(
                sa.select(event_cursors.c.subscription, event_cursors.c.last_event_id).where(
                    event_cursors.c.subscription.in_(names)
                )
            )
            return {row.subscription: int(row.last_event_id) for row in rows}

    async def read(self, after: int, limit: int) -> list[Event]:
        """Up to ``limit`` events after ``after``, oldest first, none that a later commit could precede."""
        async with self.engine.connect() as conn:
            return [event_from_row(row) for row in await conn.execute(events_after(after, limit))]

    async def settled(self, subscription: str, after: int) -> dict[int, Delivery]:
        """Deliveries of events after ``after`` already recorded (a previous run got past them, or was
        retrying them)."""
        query = event_deliveries.select().where(
            event_deliveries.c.subscription == subscription, event_deliveries.c.event_id > after
        )
        async with self.engine.connect() as conn:
            return {row.event_id: from_row(row, Delivery) for row in await conn.execute(query)}

    async def save(self, subscription: str, deliveries: list[Delivery], position: int | None) -> None:
        """Record ``deliveries`` and move the position forward to ``position`` (never back)."""
        async with self.engine.begin() as conn:
            if deliveries:
                rows = [{"subscription": subscription, **attrs.asdict(delivery)} for delivery in deliveries]
                insert = pg_insert(event_deliveries).values(rows)
                updated = {
                    column: insert.excluded[column]
                    for column in ("state", "attempts", "last_attempt_at", "next_attempt_at", "last_error")
                }
                keys = ["subscription", "event_id"]
                await conn.execute(insert.on_conflict_do_update(index_elements=keys, set_=updated))
            if position is not None:
                await conn.execute(
                    event_cursors.update()
                    .where(event_cursors.c.subscription == subscription, event_cursors.c.last_event_id < position)
                    .values(last_event_id=position, updated_at=sa.func.clock_timestamp())
                )
