"""The one door every event goes through (``record``; ``record_all`` for several), and reading the outbox safely.

``record`` writes the audit row that *is* the event, inside the caller's transaction, so an event exists if
and only if its change committed. Readers tail the table by ``event_id``, which a BIGSERIAL allocates at
insert time, not at commit: a transaction may commit id 7 while id 6, taken by a transaction still running,
is not visible yet. A tail that moved past 7 would never see 6. So ``record``:

1. locks the workspace row (which also gives the transaction its xid) *before* allocating the id: the events
   of one workspace get ids in the order their transactions commit;
2. inserts the row in a subtransaction, whose xid is assigned only then — after the id was allocated — and
   stores that xid in ``horizon``. The database function ``wvs.record_event`` (migration 0007) does this
   step in one call. Every transaction that could still insert a lower id got its xid before
   allocating that id, so before ``horizon`` was assigned: its xid is below ``horizon``. (A snapshot's xmax
   would not do: it is one past the newest *completed* xid, and running transactions may hold higher ones.)

``record_all`` does the same for several events at once, in one call of ``wvs.record_events`` (migrations 0009,
0010): every workspace row locked, then every id allocated, then one subtransaction inserts them all. Only the
last, highest id carries the horizon; the others carry the largest bigint, never below a reader's oldest running
xid. They need none of their own: the last row's horizon covers every id below it.

A reader then only reads up to ``safe_upto``: the highest visible row whose ``horizon`` is at or below the
oldest running xid (``pg_snapshot_xmin``) in the reader's own snapshot. Every id up to it is final — visible
now, or never (a rollback). See docs/architecture.md, "Events".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from wvs_core.db.tables import audit, event_cursors, event_deliveries, workspaces
from wvs_core.events import AUDIT_ONLY, DeliveryState, Event, NewEvent
from wvs_core.scope import Scope

CHANNEL = "wvs_events"
"""NOTIFY channel: a wake-up for the dispatcher (empty payload), sent when a recording transaction commits."""

# Every step of ``record`` for several events in one call of ``wvs.record_events`` (migration 0009): the
# workspace rows locked in wsid order, the ids allocated, the rows inserted in one subtransaction.
_RECORD_ALL = sa.text("SELECT wvs.record_events(:rows, :channel)").bindparams(
    sa.bindparam("rows", type_=JSONB), channel=CHANNEL
)

# One statement: the workspace row locked (assigning the transaction its xid) before ``wvs.record_event``
# (migration 0007) allocates the event_id and appends the row in a subtransaction, whose xid is its horizon.
# The aggregate makes the lock come first and yields one row with or without a workspace row (never the
# case for WVS's own changes: then there is no commit order to keep).
_RECORD = sa.text(
    """
    WITH locked AS MATERIALIZED (SELECT wsid FROM wvs.workspaces WHERE wsid = :wsid FOR UPDATE)
    SELECT wvs.record_event(:action, :wsid, :task_id, :request_id, :actor, :payload, :channel)
    FROM (SELECT count(*) FROM locked) AS lock_taken
    """
).bindparams(sa.bindparam("actor", type_=JSONB), sa.bindparam("payload", type_=JSONB))


def event_params(event: NewEvent) -> dict[str, Any]:
    """The bind parameters of ``wvs.record_event`` for ``event``, the channel included."""
    return {
        "action": event.type,
        "wsid": event.wsid,
        "task_id": event.task_id,
        "request_id": event.request_id,
        "actor": event.actor,
        "payload": event.data,
        "channel": CHANNEL,
    }


async def record(conn: AsyncConnection, event: NewEvent) -> int:
    """Append ``event`` to the outbox inside the caller's transaction; returns its ``event_id``.

    Takes the workspace's row lock until the transaction ends (every writer of a workspace takes it anyway).
    """
    return int((await conn.execute(_RECORD, event_params(event))).scalar_one())


async def record_all(conn: AsyncConnection, events: Sequence[NewEvent]) -> list[int]:
    """Append ``events`` to the outbox inside the caller's transaction, in one round trip; returns their
    ``event_id``s, ascending in the order given (so a workspace's events keep their order).

    Takes the row locks of their workspaces until the transaction ends. A ``wsid`` with no workspace row
    (never the case for WVS's own changes) has no commit order to keep.
    """
    if not events:
        return []
    if len(events) == 1:
        return [await record(conn, events[0])]
    rows = [
        {
            "n": n,
            "action": event.type,
            "wsid": event.wsid,
            "task_id": event.task_id,
            "request_id": event.request_id,
            "actor": event.actor,
            "payload": event.data,
        }
        for n, event in enumerate(events, start=1)
    ]
    return [int(event_id) for event_id in (await conn.execute(_RECORD_ALL, {"rows": rows})).scalar_one()]


class DeferredEvents:
    """Events of one transaction on ``conn`` that wait to go to the outbox with the next ones recorded through
    it, before them: a claim's ``task.started`` events and its ends' events take one ``record_all``, not two.
    An event recorded through it in between (an op's, from its claim rule) takes those waiting along first,
    so the order is kept. Whatever still waits must be ``flush``ed before the transaction commits."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._waiting: list[NewEvent] = []

    def defer(self, events: Sequence[NewEvent]) -> None:
        """Let ``events`` wait for the next ``record`` or ``flush``."""
        self._waiting.extend(events)

    async def record(self, events: Sequence[NewEvent]) -> None:
        """Append those waiting, then ``events``, in one ``record_all``."""
        batch, self._waiting = [*self._waiting, *events], []
        await record_all(self.conn, batch)

    async def flush(self) -> None:
        """Append those waiting."""
        await self.record([])


def safe_upto() -> sa.ScalarSelect[Any]:
    """SQL: the highest event_id up to which the outbox is final in this statement's snapshot (0: none)."""
    oldest_running = sa.cast(sa.cast(sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot()), sa.Text), sa.BigInteger)
    newest_final = (
        sa.select(audit.c.event_id)
        .where(audit.c.horizon <= oldest_running)
        .order_by(audit.c.event_id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.select(sa.func.coalesce(newest_final, 0)).scalar_subquery()


def events_after(after: int, limit: int) -> sa.Select[Any]:
    """SQL: events (not audit-only rows: the core's types and those ops declare) with ``event_id > after``,
    oldest first, never past ``safe_upto``; one statement, so one snapshot."""
    return (
        audit.select()
        .where(audit.c.event_id > after, audit.c.event_id <= safe_upto(), audit.c.action.not_in(sorted(AUDIT_ONLY)))
        .order_by(audit.c.event_id)
        .limit(limit)
    )


def visible(scope: Scope) -> sa.ColumnElement[bool]:
    """SQL: the audit row's workspace is one ``scope`` sees."""
    if scope.owners is None:
        return sa.true()
    return audit.c.wsid.in_(sa.select(workspaces.c.wsid).where(workspaces.c.owner.in_(sorted(scope.owners))))


def event_from_row(row: Row[Any]) -> Event:
    """An audit row as an Event."""
    return Event(
        event_id=row.event_id,
        type=row.action,
        ts=row.ts,
        wsid=row.wsid,
        task_id=row.task_id,
        actor=row.actor,
        request_id=row.request_id,
        data=row.payload or {},
    )


async def list_events(
    conn: AsyncConnection, wsid: str | None, after: int, limit: int, scope: Scope
) -> list[tuple[Event, list[DeliveryState]]]:
    """A page of ``GET /v1/events``: events after ``after`` in ``scope`` (and of ``wsid``), oldest first, each
    with where it stands with every subscription the dispatcher runs."""
    query = events_after(after, limit).where(visible(scope))
    if wsid is not None:
        query = query.where(audit.c.wsid == wsid)
    events = [event_from_row(row) for row in await conn.execute(query)]
    if not events:
        return []
    cursors = await conn.execute(
        sa.select(event_cursors.c.subscription, event_cursors.c.last_event_id)
        .where(event_cursors.c.enabled)
        .order_by(event_cursors.c.subscription)
    )
    positions = {row.subscription: row.last_event_id for row in cursors}
    rows = await conn.execute(
        event_deliveries.select().where(
            event_deliveries.c.event_id.in_([event.event_id for event in events]),
            event_deliveries.c.subscription.in_(sorted(positions)),
        )
    )
    known = {(row.subscription, row.event_id): row for row in rows}
    page = []
    for event in events:
        states = []
        for name, position in positions.items():
            row = known.get((name, event.event_id))
            if row is not None:
                states.append(
                    DeliveryState(
                        name, row.state, row.attempts, row.last_attempt_at, row.next_attempt_at, row.last_error
                    )
                )
            else:
                states.append(DeliveryState(name, "skipped" if event.event_id <= position else "pending"))
        page.append((event, states))
    return page
