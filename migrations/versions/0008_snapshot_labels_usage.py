"""Snapshot labels and usage, and a workspace's own retention policy (SPEC §3, §7).

Adds ``snapshots.labels`` (``{"key": "value"}``, empty by default), ``snapshots.entries`` and
``snapshots.bytes`` (what the storage backend learnt while cloning; NULL where only a walk would tell, and for
snapshots taken before this migration), and ``workspaces.retention`` (the workspace's retention policy; NULL:
the deployment's default applies).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = "wvs"


def upgrade() -> None:
    op.add_column(
        "snapshots",
        sa.Column("labels", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        schema=SCHEMA,
    )
    op.add_column("snapshots", sa.Column("entries", sa.BigInteger, nullable=True), schema=SCHEMA)
    op.add_column("snapshots", sa.Column("bytes", sa.BigInteger, nullable=True), schema=SCHEMA)
    op.add_column("workspaces", sa.Column("retention", JSONB, nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("workspaces", "retention", schema=SCHEMA)
    for column in ("bytes", "entries", "labels"):
        op.drop_column("snapshots", column, schema=SCHEMA)
