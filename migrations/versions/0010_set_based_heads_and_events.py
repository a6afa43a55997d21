"""Workspace heads refreshed once per statement, and a batch of events appended without rewriting its rows.

Two costs a scheduler's claim and finish paid per task, measured on a batch of 16 (docs/benchmarks.md):

- **Heads.** The row-level trigger of migration 0005 ran ``wvs.refresh_workspace_head`` once per changed task
  row: a PL/pgSQL call, a lock and an UPDATE each, 0.1 ms a row. Statement-level triggers with transition
  tables now collect the workspaces whose tasks changed status, run time, order or workspace, and refresh
  them together (``wvs.refresh_workspace_heads``): the rows locked in wsid order, then one UPDATE. The rule is
  0005's: lock first, then read the tasks in a statement of its own, and write only a head that moved.
  ``wvs.refresh_workspace_head(target)`` stays, for one workspace (``wvs fsck``).
- **Horizons.** ``wvs.record_events`` (migration 0009) inserted a batch's rows, then UPDATEd every one to set
  its ``horizon``: each row written twice. Now the rows but the last are inserted with ``horizon`` at the
  largest bigint — never a safe point of their own — and the last row, inserted after them in the same
  subtransaction, carries the subtransaction's xid. A reader's ``safe_upto`` (wvs_core/db/events.py) stops
  only at rows with a horizon; the last row's covers the whole batch, whose ids are all below it and were all
  allocated before that xid was. A batch of one is inserted, then given its horizon, as before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA = "wvs"

REFRESH_WORKSPACE_HEADS = f"""
CREATE FUNCTION {SCHEMA}.refresh_workspace_heads(targets text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM {SCHEMA}.workspaces WHERE wsid = ANY(targets) ORDER BY wsid FOR UPDATE;
    UPDATE {SCHEMA}.workspaces w
    SET head_task_id = h.task_id, head_created_at = h.created_at, head_run_at = h.run_at
    FROM unnest(targets) AS k(wsid)
    LEFT JOIN LATERAL {SCHEMA}.workspace_head(k.wsid) AS h ON true
    WHERE w.wsid = k.wsid
      AND (w.head_task_id, w.head_created_at, w.head_run_at) IS DISTINCT FROM (h.task_id, h.created_at, h.run_at);
END
$$
"""

REFRESH_WORKSPACE_HEAD = f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.refresh_workspace_head(target text) RETURNS void
LANGUAGE sql AS $$ SELECT {SCHEMA}.refresh_workspace_heads(ARRAY[target]) $$
"""

# One function per trigger: each sees only the transition tables its trigger declares.
HEADS_AFTER = {
    "INSERT": ("REFERENCING NEW TABLE AS changed", "SELECT DISTINCT wsid FROM changed"),
    "DELETE": ("REFERENCING OLD TABLE AS changed", "SELECT DISTINCT wsid FROM changed"),
    "UPDATE": (
        "REFERENCING OLD TABLE AS before NEW TABLE AS after",
        # A lease renewal or a cancel request of a running task moves no head.
        "SELECT o.wsid FROM before o JOIN after n USING (task_id) "
        "WHERE (o.wsid, o.status, o.created_at, o.next_run_at) "
        "IS DISTINCT FROM (n.wsid, n.status, n.created_at, n.next_run_at) "
        "UNION SELECT n.wsid FROM before o JOIN after n USING (task_id) WHERE n.wsid IS DISTINCT FROM o.wsid",
    ),
}


def _heads_function(event: str, moved: str) -> str:
    return f"""
CREATE FUNCTION {SCHEMA}.tasks_{event.lower()}_refresh_heads() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    targets text[] := ARRAY({moved});
BEGIN
    IF cardinality(targets) > 0 THEN
        PERFORM {SCHEMA}.refresh_workspace_heads(targets);
    END IF;
    RETURN NULL;
END
$$
"""


RECORD_EVENTS = """
CREATE OR REPLACE FUNCTION wvs.record_events(p_rows jsonb, p_channel text) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    total int := jsonb_array_length(p_rows);
    top bigint;
    ids bigint[];
    sub bigint;
BEGIN
    -- Commit order first: every workspace row locked (assigning this transaction its xid) before any id.
    PERFORM 1 FROM wvs.workspaces
    WHERE wsid IN (SELECT e->>'wsid' FROM jsonb_array_elements(p_rows) AS e)
    ORDER BY wsid FOR UPDATE;
    IF total = 1 THEN  -- no earlier row to take the subtransaction's xid from: inserted, then given its horizon
        RETURN ARRAY[wvs.record_event(
            p_rows->0->>'action', p_rows->0->>'wsid', p_rows->0->>'task_id', p_rows->0->>'request_id',
            p_rows->0->'actor', p_rows->0->'payload', p_channel
        )];
    END IF;
    top := pg_current_xact_id()::text::bigint;  -- assigned before the subtransaction's
    SELECT array_agg(id ORDER BY id) INTO ids
    FROM (SELECT nextval(pg_get_serial_sequence('wvs.audit', 'event_id')) AS id
          FROM generate_series(1, total)) AS allocated;
    BEGIN  -- a subtransaction: its xid, assigned by its first INSERT, is newer than every id allocated above
        WITH inserted AS (
            INSERT INTO wvs.audit (event_id, action, wsid, task_id, request_id, actor, payload, horizon)
            SELECT ids[r.n], r.action, r.wsid, r.task_id, r.request_id, r.actor, r.payload, 9223372036854775807
            FROM jsonb_to_recordset(p_rows) AS r(
                n int, action text, wsid text, task_id text, request_id text, actor jsonb, payload jsonb
            )
            WHERE r.n < total
            RETURNING xmin
        )
        SELECT min(xmin::text::bigint) INTO sub FROM inserted;
        -- xmin is 32 bits; widen it beside the top transaction's 64-bit id (assigned just before it).
        INSERT INTO wvs.audit (event_id, action, wsid, task_id, request_id, actor, payload, horizon)
        SELECT ids[r.n], r.action, r.wsid, r.task_id, r.request_id, r.actor, r.payload,
               top + ((sub - top % 4294967296 + 4294967296) % 4294967296)
        FROM jsonb_to_recordset(p_rows) AS r(
            n int, action text, wsid text, task_id text, request_id text, actor jsonb, payload jsonb
        )
        WHERE r.n = total;
    EXCEPTION WHEN others THEN
        RAISE;
    END;
    PERFORM pg_notify(p_channel, '');
    RETURN ids;
END
$$
"""

# 0009's, for the downgrade.
PREVIOUS_RECORD_EVENTS = """
CREATE OR REPLACE FUNCTION wvs.record_events(p_rows jsonb, p_channel text) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    top bigint;
    ids bigint[];
    sub bigint;
BEGIN
    PERFORM 1 FROM wvs.workspaces
    WHERE wsid IN (SELECT e->>'wsid' FROM jsonb_array_elements(p_rows) AS e)
    ORDER BY wsid FOR UPDATE;
    top := pg_current_xact_id()::text::bigint;
    SELECT array_agg(id ORDER BY id) INTO ids
    FROM (SELECT nextval(pg_get_serial_sequence('wvs.audit', 'event_id')) AS id
          FROM generate_series(1, jsonb_array_length(p_rows))) AS allocated;
    BEGIN
        INSERT INTO wvs.audit (event_id, action, wsid, task_id, request_id, actor, payload)
        SELECT ids[r.n], r.action, r.wsid, r.task_id, r.request_id, r.actor, r.payload
        FROM jsonb_to_recordset(p_rows) AS r(
            n int, action text, wsid text, task_id text, request_id text, actor jsonb, payload jsonb
        );
        sub := (SELECT xmin::text::bigint FROM wvs.audit WHERE event_id = ids[1]);
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

# 0005's row-level trigger, for the downgrade.
PREVIOUS_TASKS_REFRESH_WORKSPACE_HEAD = f"""
CREATE FUNCTION {SCHEMA}.tasks_refresh_workspace_head() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM {SCHEMA}.refresh_workspace_head(OLD.wsid);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.wsid IS DISTINCT FROM OLD.wsid) THEN
        PERFORM {SCHEMA}.refresh_workspace_head(NEW.wsid);
    END IF;
    RETURN NULL;
END
$$
"""
PREVIOUS_REFRESH_WORKSPACE_HEAD = f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.refresh_workspace_head(target text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM {SCHEMA}.workspaces WHERE wsid = target FOR UPDATE;
    UPDATE {SCHEMA}.workspaces w
    SET head_task_id = h.task_id, head_created_at = h.created_at, head_run_at = h.run_at
    FROM (SELECT target AS wsid) AS k
    LEFT JOIN LATERAL {SCHEMA}.workspace_head(k.wsid) AS h ON true
    WHERE w.wsid = k.wsid
      AND (w.head_task_id, w.head_created_at, w.head_run_at) IS DISTINCT FROM (h.task_id, h.created_at, h.run_at);
END
$$
"""
PREVIOUS_TRIGGERS = {
    "tasks_refresh_head_on_insert_or_delete": "AFTER INSERT OR DELETE ON {schema}.tasks FOR EACH ROW",
    "tasks_refresh_head_on_update": (
        "AFTER UPDATE OF wsid, status, created_at, next_run_at ON {schema}.tasks FOR EACH ROW "
        "WHEN ((OLD.wsid, OLD.status, OLD.created_at, OLD.next_run_at) "
        "IS DISTINCT FROM (NEW.wsid, NEW.status, NEW.created_at, NEW.next_run_at))"
    ),
}


def upgrade() -> None:
    for name in PREVIOUS_TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {SCHEMA}.tasks")
    op.execute(f"DROP FUNCTION {SCHEMA}.tasks_refresh_workspace_head()")
    op.execute(REFRESH_WORKSPACE_HEADS)
    op.execute(REFRESH_WORKSPACE_HEAD)
    for event, (referencing, moved) in HEADS_AFTER.items():
        op.execute(_heads_function(event, moved))
        op.execute(
            f"CREATE TRIGGER tasks_{event.lower()}_refresh_heads AFTER {event} ON {SCHEMA}.tasks {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.tasks_{event.lower()}_refresh_heads()"
        )
    op.execute(RECORD_EVENTS)


def downgrade() -> None:
    op.execute(PREVIOUS_RECORD_EVENTS)
    for event in HEADS_AFTER:
        op.execute(f"DROP TRIGGER tasks_{event.lower()}_refresh_heads ON {SCHEMA}.tasks")
        op.execute(f"DROP FUNCTION {SCHEMA}.tasks_{event.lower()}_refresh_heads()")
    op.execute(PREVIOUS_REFRESH_WORKSPACE_HEAD)
    op.execute(f"DROP FUNCTION {SCHEMA}.refresh_workspace_heads(text[])")
    op.execute(PREVIOUS_TASKS_REFRESH_WORKSPACE_HEAD)
    for name, when in PREVIOUS_TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when.format(schema=SCHEMA)} "
            f"EXECUTE FUNCTION {SCHEMA}.tasks_refresh_workspace_head()"
        )
