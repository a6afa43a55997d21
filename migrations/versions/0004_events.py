"""Events (SPEC §14): the audit table is the outbox; the dispatcher's positions and delivery states.

Adds ``audit.horizon`` (what makes tailing by event_id safe against commit-order gaps), an index for
``GET /v1/events?wsid=``, ``event_cursors`` and ``event_deliveries``; renames the audit actions of earlier
releases to the event types (and back on downgrade).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "wvs"

# Earlier action → event type, one for one.
RENAMED = {
    "workspace.create": "workspace.created",
    "task.create": "task.created",
    "task.running": "task.started",
    "snapshot.create": "snapshot.created",
    "snapshot.delete": "snapshot.dropped",
    "workspace.current": "current.changed",
}
# fsck's repairs were actions of their own; they are the same changes, made by the actor {"type": "fsck"}.
FSCK_RENAMED = {"fsck.current": "current.changed", "fsck.snapshot_deleted": "snapshot.dropped"}
STATES = ("PROVISIONING", "ACTIVE", "INIT_FAILED", "DISABLED")
ORIGIN = "(origin)"  # wvs_core.db.outbox.ORIGIN


def upgrade() -> None:
    op.add_column("audit", sa.Column("horizon", sa.BigInteger, nullable=False, server_default="0"), schema=SCHEMA)
    op.create_index("ix_audit_wsid_event_id", "audit", ["wsid", "event_id"], schema=SCHEMA)
    op.create_table(
        "event_cursors",
        sa.Column("subscription", sa.Text, nullable=False),
        sa.Column("last_event_id", sa.BigInteger, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("subscription", name="pk_event_cursors"),
        schema=SCHEMA,
    )
    op.create_table(
        "event_deliveries",
        sa.Column("subscription", sa.Text, nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("subscription", "event_id", name="pk_event_deliveries"),
        sa.CheckConstraint("state IN ('delivered', 'retrying', 'failed')", name="ck_event_deliveries_state"),
        schema=SCHEMA,
    )
    op.create_index("ix_event_deliveries_event_id", "event_deliveries", ["event_id"], schema=SCHEMA)
    # Where the first subscription ever starts: after what this database already holds (nothing when new).
    op.execute(
        f"INSERT INTO {SCHEMA}.event_cursors (subscription, last_event_id, enabled) "
        f"SELECT '{ORIGIN}', coalesce(max(event_id), 0), false FROM {SCHEMA}.audit"
    )
    for old, new in {**RENAMED, **FSCK_RENAMED}.items():
        op.execute(sa.text(f"UPDATE {SCHEMA}.audit SET action = :new WHERE action = :old").bindparams(old=old, new=new))
    op.execute(
        f"UPDATE {SCHEMA}.audit SET action = 'workspace.' || lower(payload #>> '{{after,state}}') "
        f"WHERE action = 'workspace.state' AND payload #>> '{{after,state}}' IN ({', '.join(map(repr, STATES))})"
    )


def downgrade() -> None:
    workspace_events = ", ".join(f"'workspace.{state.lower()}'" for state in STATES)
    op.execute(f"UPDATE {SCHEMA}.audit SET action = 'workspace.state' WHERE action IN ({workspace_events})")
    for old, new in FSCK_RENAMED.items():
        op.execute(
            sa.text(
                f"UPDATE {SCHEMA}.audit SET action = :old WHERE action = :new AND actor ->> 'type' = 'fsck'"
            ).bindparams(old=old, new=new)
        )
    for old, new in RENAMED.items():
        op.execute(sa.text(f"UPDATE {SCHEMA}.audit SET action = :old WHERE action = :new").bindparams(old=old, new=new))
    op.drop_index("ix_event_deliveries_event_id", "event_deliveries", schema=SCHEMA)
    op.drop_table("event_deliveries", schema=SCHEMA)
    op.drop_table("event_cursors", schema=SCHEMA)
    op.drop_index("ix_audit_wsid_event_id", "audit", schema=SCHEMA)
    op.drop_column("audit", "horizon", schema=SCHEMA)
