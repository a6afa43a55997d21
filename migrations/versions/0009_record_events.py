"""``wvs.record_events``: appending several events to the outbox in one round trip instead of five.

``record_all`` (wvs_core/db/events.py) locked the events' workspace rows and allocated their ids in one
statement, then took SAVEPOINT, one INSERT, an UPDATE of their horizon with the NOTIFY, and RELEASE SAVEPOINT:
five round trips for every batch a scheduler claims or finishes. The function does the same steps in the
same order in one call: the workspace rows locked (in wsid order) before any id is allocated, the ids
allocated ascending in the order given, then one subtransaction (a PL/pgSQL block with an EXCEPTION clause)
inserts the rows, whose xid, widened to 64 bits, is their ``horizon``; then the dispatcher's NOTIFY on
``p_channel``. ``p_rows`` is a JSON array of objects with the keys ``n`` (the event's position, from 1),
``action``, ``wsid``, ``task_id``, ``request_id``, ``actor``, ``payload``; it returns the event ids in that order.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-12
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

RECORD_EVENTS = """
CREATE FUNCTION wvs.record_events(p_rows jsonb, p_channel text) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    top bigint;
    ids bigint[];
    sub bigint;
BEGIN
    -- Commit order first: every workspace row locked (assigning this transaction its xid) before any id.
    PERFORM 1 FROM wvs.workspaces
    WHERE wsid IN (SELECT e->>'wsid' FROM jsonb_array_elements(p_rows) AS e)
    ORDER BY wsid FOR UPDATE;
    top := pg_current_xact_id()::text::bigint;  -- assigned before the subtransaction's
    SELECT array_agg(id ORDER BY id) INTO ids
    FROM (SELECT nextval(pg_get_serial_sequence('wvs.audit', 'event_id')) AS id
          FROM generate_series(1, jsonb_array_length(p_rows))) AS allocated;
    BEGIN  -- a subtransaction: its xid, assigned by this INSERT, is newer than every id allocated above
        INSERT INTO wvs.audit (event_id, action, wsid, task_id, request_id, actor, payload)
        SELECT ids[r.n], r.action, r.wsid, r.task_id, r.request_id, r.actor, r.payload
        FROM jsonb_to_recordset(p_rows) AS r(
            n int, action text, wsid text, task_id text, request_id text, actor jsonb, payload jsonb
        );
        sub := (SELECT xmin::text::bigint FROM wvs.audit WHERE event_id = ids[1]);
        -- xmin is 32 bits; widen it beside the top transaction's 64-bit id (assigned just before it).
        UPDATE wvs.audit SET horizon = top + ((sub - top % 4294967296 + 4294967296) % 4294967296)
        WHERE event_id = ANY(ids);
    EXCEPTION WHEN others THEN
        RAISE;
    END;
    PERFORM pg_notify(p_channel, '');
    RETURN ids;
END
$$
"""


def upgrade() -> None:
    op.execute(RECORD_EVENTS)


def downgrade() -> None:
    op.execute("DROP FUNCTION wvs.record_events(jsonb, text)")
