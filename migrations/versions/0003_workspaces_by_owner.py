"""Workspaces by owner: a read or write token lists only its owners' workspaces (SPEC §2 Ownership).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "wvs"


def upgrade() -> None:
    op.create_index(
        "ix_workspaces_owner_created_at_wsid",
        "workspaces",
        ["owner", sa.text("created_at DESC"), sa.text("wsid DESC")],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_workspaces_owner_created_at_wsid", "workspaces", schema=SCHEMA)
