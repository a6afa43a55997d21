"""Workspace heads: each workspace row carries its oldest unfinished task, so a claim reads heads, not backlogs.

Adds ``workspaces.head_task_id``, ``head_created_at`` (the head's order key with the id) and ``head_run_at``
(when the head may run: its ``next_run_at``; NULL while it runs or when there is no unfinished task), a
partial index over the runnable heads in creation order, and the trigger on ``tasks`` that keeps them right
in the transaction of every change of a task's status, run time, order or workspace
(docs/architecture.md, "Workspace heads"). Backfills every workspace's head from its tasks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "wvs"

# The head of a workspace, computed from its tasks: one probe of ix_tasks_unfinished_by_workspace.
WORKSPACE_HEAD = f"""
CREATE FUNCTION {SCHEMA}.workspace_head(target text)
RETURNS TABLE (task_id text, created_at timestamptz, run_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT t.task_id, t.created_at, CASE WHEN t.status = 'RUNNING' THEN NULL ELSE t.next_run_at END
    FROM {SCHEMA}.tasks t
    WHERE t.wsid = target AND t.status IN ('PENDING', 'RUNNING', 'FAILED')
    ORDER BY t.created_at, t.task_id
    LIMIT 1
$$
"""

# Lock the workspace row first, then read its tasks in a statement of its own: under READ COMMITTED that
# statement's snapshot holds every change of the workspace's tasks committed by an earlier holder of the lock,
# and every writer of a task comes through here before it commits. FOR UPDATE, as a submit and an event's
# record() take it: a weaker lock upgraded later in the same transaction could deadlock with a foreign-key
# check's KEY SHARE. Writes only when the head changed.
REFRESH_WORKSPACE_HEAD = f"""
CREATE FUNCTION {SCHEMA}.refresh_workspace_head(target text) RETURNS void
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

TASKS_REFRESH_WORKSPACE_HEAD = f"""
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

TRIGGERS = {
    "tasks_refresh_head_on_insert_or_delete": "AFTER INSERT OR DELETE ON {schema}.tasks FOR EACH ROW",
    # A lease renewal or a cancel request of a running task moves no head: the trigger does not even fire.
    "tasks_refresh_head_on_update": (
        "AFTER UPDATE OF wsid, status, created_at, next_run_at ON {schema}.tasks FOR EACH ROW "
        "WHEN ((OLD.wsid, OLD.status, OLD.created_at, OLD.next_run_at) "
        "IS DISTINCT FROM (NEW.wsid, NEW.status, NEW.created_at, NEW.next_run_at))"
    ),
}


def upgrade() -> None:
    for column in ("head_task_id", "head_created_at", "head_run_at"):
        kind = sa.Text if column == "head_task_id" else sa.DateTime(timezone=True)
        op.add_column("workspaces", sa.Column(column, kind, nullable=True), schema=SCHEMA)
    op.create_index(
        "ix_workspaces_runnable_heads",
        "workspaces",
        ["head_created_at", "head_task_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("head_run_at IS NOT NULL"),
    )
    op.execute(WORKSPACE_HEAD)
    op.execute(REFRESH_WORKSPACE_HEAD)
    op.execute(TASKS_REFRESH_WORKSPACE_HEAD)
    for name, when in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when.format(schema=SCHEMA)} "
            f"EXECUTE FUNCTION {SCHEMA}.tasks_refresh_workspace_head()"
        )
    op.execute(
        f"UPDATE {SCHEMA}.workspaces w "
        "SET head_task_id = h.task_id, head_created_at = h.created_at, head_run_at = h.run_at "
        f"FROM {SCHEMA}.workspaces k LEFT JOIN LATERAL {SCHEMA}.workspace_head(k.wsid) AS h ON true "
        "WHERE w.wsid = k.wsid"
    )


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {SCHEMA}.tasks")
    op.execute(f"DROP FUNCTION {SCHEMA}.tasks_refresh_workspace_head()")
    op.execute(f"DROP FUNCTION {SCHEMA}.refresh_workspace_head(text)")
    op.execute(f"DROP FUNCTION {SCHEMA}.workspace_head(text)")
    op.drop_index("ix_workspaces_runnable_heads", "workspaces", schema=SCHEMA)
    for column in ("head_run_at", "head_created_at", "head_task_id"):
        op.drop_column("workspaces", column, schema=SCHEMA)
