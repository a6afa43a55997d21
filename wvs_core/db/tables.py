"""The schema ``wvs`` (SPEC §3) as SQLAlchemy Core tables; the alembic migrations create exactly this."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

SCHEMA = "wvs"
WSID_REGEX = "^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"
WORKSPACE_STATES = ("PROVISIONING", "ACTIVE", "INIT_FAILED", "DISABLED")
TASK_STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "DEAD")

metadata = sa.MetaData(
    schema=SCHEMA,
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    },
)


def _now() -> sa.TextClause:
    return sa.text("now()")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _newest_first(name: str, *filtered: str, id_column: str = "task_id") -> sa.Index:
    """An index for a list filtered on ``filtered`` (equality) in the lists' order, newest first."""
    return sa.Index(name, *filtered, sa.text("created_at DESC"), sa.text(f"{id_column} DESC"))


workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("wsid", sa.Text, primary_key=True),
    sa.Column("root_path", sa.Text, nullable=False, unique=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False, server_default="PROVISIONING"),
    sa.Column(
        "current_snapshot_id",
        sa.Text,
        sa.ForeignKey("wvs.snapshots.snapshot_id", use_alter=True, name="fk_workspaces_current_snapshot"),
        nullable=True,
    ),
    sa.Column("current_path", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    # Migration 0005: the workspace's head — its oldest unfinished task, that task's order key with the id, and
    # when it may run (NULL while it runs, or with no unfinished task). A trigger on ``tasks`` keeps them in
    # the transaction of every task change; a claim reads heads, never a backlog (docs/architecture.md).
    sa.Column("head_task_id", sa.Text, nullable=True),
    sa.Column("head_created_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("head_run_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("retention", JSONB, nullable=True),  # migration 0008: the workspace's own retention policy
    sa.CheckConstraint(f"wsid ~ '{WSID_REGEX}'", name="wsid_format"),
    sa.CheckConstraint(_in("state", WORKSPACE_STATES), name="state"),
    sa.Index("ix_workspaces_created_at_wsid", sa.text("created_at DESC"), sa.text("wsid DESC")),
    sa.Index("ix_workspaces_owner_created_at_wsid", "owner", sa.text("created_at DESC"), sa.text("wsid DESC")),  # 0003
    sa.Index(  # 0005: the heads a claim may take, oldest first
        "ix_workspaces_runnable_heads",
        "head_created_at",
        "head_task_id",
        postgresql_where=sa.text("head_run_at IS NOT NULL"),
    ),
    # 0006: the list by state, for everyone and for a token's owners
    _newest_first("ix_workspaces_state_created_at_wsid", "state", id_column="wsid"),
    _newest_first("ix_workspaces_owner_state_created_at_wsid", "owner", "state", id_column="wsid"),
)

snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("snapshot_id", sa.Text, primary_key=True),
    sa.Column("wsid", sa.Text, sa.ForeignKey("wvs.workspaces.wsid"), nullable=False),
    sa.Column("fs_path", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    # Migration 0008: labels given at creation; entries and bytes as the storage backend counted them while
    # cloning (NULL where only a walk would tell).
    sa.Column("labels", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("entries", sa.BigInteger, nullable=True),
    sa.Column("bytes", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("wsid", "fs_path"),
    # 0006: the list reads live snapshots only, however many dropped ones retention left behind
    sa.Index(
        "ix_snapshots_live_by_workspace",
        "wsid",
        sa.text("created_at DESC"),
        sa.text("snapshot_id DESC"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    ),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("task_id", sa.Text, primary_key=True),
    sa.Column("wsid", sa.Text, sa.ForeignKey("wvs.workspaces.wsid"), nullable=False),
    sa.Column("op", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="PENDING"),
    sa.Column("idempotency_key", sa.Text, nullable=True),
    sa.Column("request_hash", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default="5"),
    sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
    sa.Column("timeout_seconds", sa.Integer, nullable=False, server_default="300"),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("params", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("result", JSONB, nullable=True),
    sa.Column("error", JSONB, nullable=True),
    # Additive (SPEC §3 allows): who asked, and which scheduler holds the task.
    sa.Column("request_id", sa.Text, nullable=True),
    sa.Column("actor", JSONB, nullable=True),
    sa.Column("worker_id", sa.Text, nullable=True),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),  # migration 0002
    sa.CheckConstraint(_in("status", TASK_STATUSES), name="status"),
    sa.UniqueConstraint("wsid", "op", "idempotency_key"),
    sa.Index(
        "ix_tasks_runnable",
        "created_at",
        "task_id",
        postgresql_where=sa.text("status IN ('PENDING', 'FAILED')"),
    ),
    sa.Index(
        "ix_tasks_unfinished_by_workspace",
        "wsid",
        "created_at",
        "task_id",
        postgresql_where=sa.text("status IN ('PENDING', 'RUNNING', 'FAILED')"),
    ),
    sa.Index("ix_tasks_created_at_task_id", sa.text("created_at DESC"), sa.text("task_id DESC")),
    # 0006: GET /v1/tasks, one index per combination of its filters (wsid, status, op)
    _newest_first("ix_tasks_wsid_created_at_task_id", "wsid"),
    _newest_first("ix_tasks_status_created_at_task_id", "status"),
    _newest_first("ix_tasks_op_created_at_task_id", "op"),
    _newest_first("ix_tasks_wsid_status_created_at_task_id", "wsid", "status"),
    _newest_first("ix_tasks_wsid_op_created_at_task_id", "wsid", "op"),
    _newest_first("ix_tasks_status_op_created_at_task_id", "status", "op"),
    _newest_first("ix_tasks_wsid_status_op_created_at_task_id", "wsid", "status", "op"),
    sa.Index("ix_tasks_lease_expires_at", "lease_expires_at", postgresql_where=sa.text("status = 'RUNNING'")),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("event_id", sa.BigInteger, primary_key=True, autoincrement=True),  # BIGSERIAL
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("clock_timestamp()")),
    sa.Column("wsid", sa.Text, nullable=True),
    sa.Column("actor", JSONB, nullable=True),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("request_id", sa.Text, nullable=True),
    sa.Column("task_id", sa.Text, nullable=True),
    sa.Column("payload", JSONB, nullable=True),
    # Migration 0004: the next unassigned transaction id just after this row's event_id was allocated. Once
    # every transaction below it has ended, no lower event_id can still appear (see wvs_core/db/events.py).
    sa.Column("horizon", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("ix_audit_wsid_ts_event_id", "wsid", sa.text("ts DESC"), sa.text("event_id DESC")),  # 0006
    sa.Index("ix_audit_task_id", "task_id"),
    sa.Index("ix_audit_wsid_event_id", "wsid", "event_id"),  # 0004: GET /v1/events?wsid=
)

# Migration 0004: where each subscription of the event dispatcher is (every event up to last_event_id is
# settled for it), and whether the dispatcher currently runs it (the API lists only those).
event_cursors = sa.Table(
    "event_cursors",
    metadata,
    sa.Column("subscription", sa.Text, primary_key=True),
    sa.Column("last_event_id", sa.BigInteger, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
)

DELIVERY_STATES = ("delivered", "retrying", "failed")

# Migration 0004: how delivering one event to one subscription went (absent: not tried yet, or not wanted).
event_deliveries = sa.Table(
    "event_deliveries",
    metadata,
    sa.Column("subscription", sa.Text, primary_key=True),
    sa.Column("event_id", sa.BigInteger, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.CheckConstraint(_in("state", DELIVERY_STATES), name="state"),
    sa.Index("ix_event_deliveries_event_id", "event_id"),
)
