"""``wvs.record_event``: appending an event to the outbox in one round trip instead of five.

The outbox protocol (wvs_core/db/events.py) inserts the audit row in a subtransaction and keeps that
subtransaction's xid, widened to 64 bits, as the row's ``horizon``. From a client that took SAVEPOINT, the
INSERT, an UPDATE, the NOTIFY and RELEASE SAVEPOINT; a PL/pgSQL block with an EXCEPTION clause is a
subtransaction too, so the function does the same in one call. The caller holds the workspace's row lock
(its transaction's xid is assigned by it), so the event_id the function allocates follows commit order.
The dispatcher's wake-up (a NOTIFY on ``p_channel``) is left out when ``p_channel`` is NULL: a transaction that
notifies holds PostgreSQL's notification lock from its commit record to its end, so one that commits on its
own (the API's one-statement accept) leaves the wake-up to a later statement (wvs_core/db/wakeups.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

RECORD_EVENT = """
CREATE FUNCTION wvs.record_event(
    p_action text, p_wsid text, p_task_id text, p_request_id text, p_actor jsonb, p_payload jsonb, p_channel text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    top bigint := pg_current_xact_id()::text::bigint;  -- assigned before the subtransaction's
    new_id bigint := nextval(pg_get_serial_sequence('wvs.audit', 'event_id'));
    sub bigint;
BEGIN
    BEGIN  -- a subtransaction: its xid, assigned by this INSERT, is newer than new_id
        INSERT INTO wvs.audit (event_id, action, wsid, task_id, request_id, actor, payload)
        VALUES (new_id, p_action, p_wsid, p_task_id, p_request_id, p_actor, p_payload)
        RETURNING xmin::text::bigint INTO sub;
        -- xmin is 32 bits; widen it beside the top transaction's 64-bit id (assigned just before it).
        UPDATE wvs.audit SET horizon = top + ((sub - top % 4294967296 + 4294967296) % 4294967296)
        WHERE event_id = new_id;
    EXCEPTION WHEN others THEN
        RAISE;
    END;
    IF p_channel IS NOT NULL THEN
        PERFORM pg_notify(p_channel, '');
    END IF;
    RETURN new_id;
END
$$
"""


def upgrade() -> None:
    op.execute(RECORD_EVENT)


def downgrade() -> None:
    op.execute("DROP FUNCTION wvs.record_event(text, text, text, text, jsonb, jsonb, text)")
