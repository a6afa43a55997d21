"""The SPEC §3 schema: workspaces, snapshots, tasks, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "wvs"
NOW = sa.text("now()")


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.create_table(
        "workspaces",
        sa.Column("wsid", sa.Text, nullable=False),
        sa.Column("root_path", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="PROVISIONING"),
        sa.Column("current_snapshot_id", sa.Text, nullable=True),
        sa.Column("current_path", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("wsid", name="pk_workspaces"),
        sa.UniqueConstraint("root_path", name="uq_workspaces_root_path"),
        sa.CheckConstraint("wsid ~ '^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$'", name="ck_workspaces_wsid_format"),
        sa.CheckConstraint(
            "state IN ('PROVISIONING', 'ACTIVE', 'INIT_FAILED', 'DISABLED')", name="ck_workspaces_state"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_workspaces_created_at_wsid",
        "workspaces",
        [sa.text("created_at DESC"), sa.text("wsid DESC")],
        schema=SCHEMA,
    )
    op.create_table(
        "snapshots",
        sa.Column("snapshot_id", sa.Text, nullable=False),
        sa.Column("wsid", sa.Text, nullable=False),
        sa.Column("fs_path", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("snapshot_id", name="pk_snapshots"),
        sa.ForeignKeyConstraint(["wsid"], [f"{SCHEMA}.workspaces.wsid"], name="fk_snapshots_wsid_workspaces"),
        sa.UniqueConstraint("wsid", "fs_path", name="uq_snapshots_wsid_fs_path"),
        schema=SCHEMA,
    )
    op.create_index("ix_snapshots_wsid_created_at", "snapshots", ["wsid", sa.text("created_at DESC")], schema=SCHEMA)
    op.create_foreign_key(
        "fk_workspaces_current_snapshot",
        "workspaces",
        "snapshots",
        ["current_snapshot_id"],
        ["snapshot_id"],
        source_schema=SCHEMA,
        referent_schema=SCHEMA,
    )
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.Text, nullable=False),
        sa.Column("wsid", sa.Text, nullable=False),
        sa.Column("op", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="PENDING"),
        sa.Column("idempotency_key", sa.Text, nullable=True),
        sa.Column("request_hash", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer, nullable=False, server_default="5"),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("timeout_seconds", sa.Integer, nullable=False, server_default="300"),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("params", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("result", JSONB, nullable=True),
        sa.Column("error", JSONB, nullable=True),
        sa.Column("request_id", sa.Text, nullable=True),
        sa.Column("actor", JSONB, nullable=True),
        sa.Column("worker_id", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("task_id", name="pk_tasks"),
        sa.ForeignKeyConstraint(["wsid"], [f"{SCHEMA}.workspaces.wsid"], name="fk_tasks_wsid_workspaces"),
        sa.UniqueConstraint("wsid", "op", "idempotency_key", name="uq_tasks_wsid_op_idempotency_key"),
        sa.CheckConstraint(
            "status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED', 'DEAD')",
            name="ck_tasks_status",
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_tasks_wsid_created_at", "tasks", ["wsid", sa.text("created_at DESC")], schema=SCHEMA)
    op.create_index(
        "ix_tasks_runnable",
        "tasks",
        ["created_at", "task_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('PENDING', 'FAILED')"),
    )
    op.create_index(
        "ix_tasks_unfinished_by_workspace",
        "tasks",
        ["wsid", "created_at", "task_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('PENDING', 'RUNNING', 'FAILED')"),
    )
    op.create_index(
        "ix_tasks_created_at_task_id",
        "tasks",
        [sa.text("created_at DESC"), sa.text("task_id DESC")],
        schema=SCHEMA,
    )
    op.create_table(
        "audit",
        sa.Column("event_id", sa.BigInteger, autoincrement=True, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("clock_timestamp()")),
        sa.Column("wsid", sa.Text, nullable=True),
        sa.Column("actor", JSONB, nullable=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("request_id", sa.Text, nullable=True),
        sa.Column("task_id", sa.Text, nullable=True),
        sa.Column("payload", JSONB, nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_audit"),
        schema=SCHEMA,
    )
    op.create_index("ix_audit_wsid_ts", "audit", ["wsid", sa.text("ts DESC")], schema=SCHEMA)
    op.create_index("ix_audit_task_id", "audit", ["task_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("audit", schema=SCHEMA)
    op.drop_table("tasks", schema=SCHEMA)
    op.drop_constraint("fk_workspaces_current_snapshot", "workspaces", schema=SCHEMA, type_="foreignkey")
    op.drop_table("snapshots", schema=SCHEMA)
    op.drop_table("workspaces", schema=SCHEMA)
