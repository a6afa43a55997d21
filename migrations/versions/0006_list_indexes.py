"""List indexes: every list endpoint and filter walks an index in its own order (SPEC §2 lists).

A list answers ``WHERE <filters> ORDER BY created_at DESC, id DESC LIMIT n`` after a keyset cursor. It
costs the same with a thousand rows or a million only when one index has exactly the filtered columns
first (equality) and then ``(created_at DESC, id DESC)``: the scan starts at the cursor and stops after
``n`` rows. Without it PostgreSQL walks a wider index and throws away the rows the filter does not want —
``GET /v1/tasks?status=DEAD`` read its way through every SUCCEEDED task. So:

- tasks: one index per combination of the filters ``wsid``, ``status``, ``op`` (the unfiltered list already
  had ``(created_at DESC, task_id DESC)``); ``(wsid, created_at DESC)`` gains the ``task_id`` tie-break;
- workspaces: ``state`` alone and with the owner (a read or write token's lists);
- snapshots: only the live ones (``deleted_at IS NULL``) of a workspace, so dropped snapshots that retention
  leaves behind are never read by the list;
- audit: ``(wsid, ts DESC)`` gains the ``event_id`` tie-break.

Plain ``CREATE INDEX`` runs in the migration's transaction and blocks writes to the table while it builds
(seconds per million rows). An operator with a table too large for that creates each index first, by hand,
with ``CREATE INDEX CONCURRENTLY`` under the same name and definition (``INDEXES`` below), checks that none
was left INVALID by a failed build (``pg_index.indisvalid``; drop and build again if so), then runs the
migration: ``IF NOT EXISTS`` skips what exists, and dropping the replaced indexes is quick.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "wvs"

# name → (table, definition); every one a keyset walk for one list and filter.
INDEXES = {
    "ix_tasks_wsid_created_at_task_id": ("tasks", "(wsid, created_at DESC, task_id DESC)"),
    "ix_tasks_status_created_at_task_id": ("tasks", "(status, created_at DESC, task_id DESC)"),
    "ix_tasks_op_created_at_task_id": ("tasks", "(op, created_at DESC, task_id DESC)"),
    "ix_tasks_wsid_status_created_at_task_id": ("tasks", "(wsid, status, created_at DESC, task_id DESC)"),
    "ix_tasks_wsid_op_created_at_task_id": ("tasks", "(wsid, op, created_at DESC, task_id DESC)"),
    "ix_tasks_status_op_created_at_task_id": ("tasks", "(status, op, created_at DESC, task_id DESC)"),
    "ix_tasks_wsid_status_op_created_at_task_id": ("tasks", "(wsid, status, op, created_at DESC, task_id DESC)"),
    "ix_workspaces_state_created_at_wsid": ("workspaces", "(state, created_at DESC, wsid DESC)"),
    "ix_workspaces_owner_state_created_at_wsid": ("workspaces", "(owner, state, created_at DESC, wsid DESC)"),
    "ix_snapshots_live_by_workspace": (
        "snapshots",
        "(wsid, created_at DESC, snapshot_id DESC) WHERE deleted_at IS NULL",
    ),
    "ix_audit_wsid_ts_event_id": ("audit", "(wsid, ts DESC, event_id DESC)"),
}

# Replaced by the ones above with a tie-break (or, for snapshots, by the live ones only): name → (table, definition).
REPLACED = {
    "ix_tasks_wsid_created_at": ("tasks", "(wsid, created_at DESC)"),
    "ix_snapshots_wsid_created_at": ("snapshots", "(wsid, created_at DESC)"),
    "ix_audit_wsid_ts": ("audit", "(wsid, ts DESC)"),
}


def upgrade() -> None:
    for name, (table, definition) in INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {SCHEMA}.{table} {definition}")
    for name in REPLACED:
        op.execute(f"DROP INDEX {SCHEMA}.{name}")


def downgrade() -> None:
    for name, (table, definition) in REPLACED.items():
        op.execute(f"CREATE INDEX {name} ON {SCHEMA}.{table} {definition}")
    for name in INDEXES:
        op.execute(f"DROP INDEX {SCHEMA}.{name}")
