"""What retention reads and writes in the database: a workspace's own policy, and the snapshots a plan is
made of (live snapshots, with the current one and those unfinished tasks reference as protections)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from wvs_core.convert import structure, unstructure
from wvs_core.db.events import record
from wvs_core.db.tables import snapshots, tasks, workspaces
from wvs_core.db.transaction import SnapshotReferences
from wvs_core.events import AuditOnly, NewEvent
from wvs_core.models import UNFINISHED, WorkspaceState
from wvs_core.retention import Candidate, Plan, Protection, RetentionPolicy, plan


async def own_policy(conn: AsyncConnection, wsid: str) -> RetentionPolicy | None:
    """The workspace's own policy, None when it has none (the config's default applies)."""
    stored = (await conn.execute(sa.select(workspaces.c.retention).where(workspaces.c.wsid == wsid))).scalar()
    return None if stored is None else structure(stored, RetentionPolicy)


async def set_own_policy(
    conn: AsyncConnection, wsid: str, policy: RetentionPolicy | None, actor: Mapping[str, Any], request_id: str
) -> None:
    """Store (None: clear) the workspace's own policy, audited as ``workspace.retention_set``."""
    stored = None if policy is None else unstructure(policy)
    await conn.execute(
        workspaces.update()
        .where(workspaces.c.wsid == wsid)
        .values(retention=sa.null() if stored is None else stored, updated_at=sa.func.clock_timestamp())
    )
    event = NewEvent(
        type=AuditOnly.RETENTION_SET, wsid=wsid, request_id=request_id, actor=dict(actor), data={"after": stored}
    )
    await record(conn, event)


async def plan_inputs(
    conn: AsyncConnection, wsid: str, references: SnapshotReferences
) -> tuple[list[Candidate], list[Protection]]:
    """The workspace's live snapshots, and what protects some of them: ``current``, and every unfinished task
    referencing one (per its op's declaration). Reads every live snapshot of the workspace (a plan needs
    them all) and its unfinished tasks (a handful)."""
    rows = await conn.execute(
        sa.select(snapshots.c.snapshot_id, snapshots.c.created_at, snapshots.c.labels).where(
            snapshots.c.wsid == wsid, snapshots.c.deleted_at.is_(None)
        )
    )
    candidates = [Candidate(row.snapshot_id, row.created_at, row.labels) for row in rows]
    protections = []
    current = (
        await conn.execute(sa.select(workspaces.c.current_snapshot_id).where(workspaces.c.wsid == wsid))
    ).scalar()
    if current is not None:
        protections.append(Protection(current, "current"))
    unfinished = sa.select(tasks.c.task_id, tasks.c.op, tasks.c.params).where(
        tasks.c.wsid == wsid, tasks.c.status.in_(UNFINISHED)
    )
    for row in await conn.execute(unfinished):
        for snapshot_id in references(row.op, row.params):
            protections.append(Protection(snapshot_id, f"referenced by task {row.task_id}"))
    return candidates, protections


async def active_workspaces(conn: AsyncConnection, after: str, limit: int, *, own_policy_only: bool) -> list[str]:
    """ACTIVE workspaces' ids after ``after`` in id order (a page of the periodic apply's walk); with
    ``own_policy_only``, only those with a policy of their own."""
    query = (
        sa.select(workspaces.c.wsid)
        .where(workspaces.c.state == WorkspaceState.ACTIVE, workspaces.c.wsid > after)
        .order_by(workspaces.c.wsid)
        .limit(limit)
    )
    if own_policy_only:
        query = query.where(workspaces.c.retention.is_not(None))
    return list((await conn.execute(query)).scalars())


async def workspace_plan(
    conn: AsyncConnection, wsid: str, default: RetentionPolicy, references: SnapshotReferences, now: datetime
) -> tuple[RetentionPolicy, Plan]:
    """The policy that applies to the workspace (its own, else ``default``) and the plan it makes now."""
    policy = await own_policy(conn, wsid) or default
    candidates, protections = await plan_inputs(conn, wsid, references)
    return policy, plan(candidates, policy, now, protections)
