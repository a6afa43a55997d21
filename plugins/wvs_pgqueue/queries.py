"""The PostgreSQL queue's SQL: the claim's choice and the wake-up. Core owns every other task statement."""

from __future__ import annotations

import sqlalchemy as sa

# Up to :limit runnable heads, oldest first. A workspace's head (core keeps it on the workspace row, see
# docs/architecture.md "Workspace heads") is its oldest unfinished task; head_run_at is NULL while that task
# runs, so a busy workspace is not even in the index, and no blocked backlog is ever read. Both rows are locked
# with SKIP LOCKED: a claim never waits, and no other claim takes the task or its workspace (a workspace row
# lock taken elsewhere — a submit, a task ending — merely skips that workspace this time). EvalPlanQual
# re-checks a head that moved meanwhile. The locks last until the claiming transaction ends, in which core
# marks the tasks RUNNING.
CLAIM = sa.text(
    """
    SELECT w.head_task_id AS task_id
    FROM wvs.workspaces w
    JOIN wvs.tasks t ON t.task_id = w.head_task_id
    WHERE w.head_run_at <= clock_timestamp()
      AND t.status IN ('PENDING', 'FAILED')
    ORDER BY w.head_created_at, w.head_task_id
    LIMIT :limit
    FOR UPDATE OF w, t SKIP LOCKED
    """
)

NOTIFY = sa.text("SELECT pg_notify(:channel, '')")
