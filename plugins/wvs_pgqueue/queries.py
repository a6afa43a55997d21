"""The PostgreSQL queue's SQL: the claim's choice and the wake-up. Core owns every other task statement."""

from __future__ import annotations

import sqlalchemy as sa

# Runnable: PENDING, or FAILED (always retryable: a last failure goes straight to DEAD) whose
# next_run_at has come. A task may only start when its workspace has no RUNNING task and no older
# unfinished task; the workspace row lock (SKIP LOCKED) makes two concurrent claims of one workspace
# impossible, and EvalPlanQual re-checks the status of a row another scheduler claimed meanwhile.
# Both locks are held until the claiming transaction ends, in which core marks the task RUNNING.
CLAIM = sa.text(
    """
    WITH candidate AS (
        SELECT t.task_id, t.wsid
        FROM wvs.tasks t
        WHERE t.status IN ('PENDING', 'FAILED')
          AND t.next_run_at <= clock_timestamp()
          AND NOT EXISTS (
              SELECT 1 FROM wvs.tasks o
              WHERE o.wsid = t.wsid
                AND o.task_id <> t.task_id
                AND (o.status = 'RUNNING'
                     OR (o.status IN ('PENDING', 'FAILED')
                         AND (o.created_at, o.task_id) < (t.created_at, t.task_id)))
          )
        ORDER BY t.created_at, t.task_id
        LIMIT 1
        FOR UPDATE OF t SKIP LOCKED
    ),
    locked_workspace AS (
        SELECT w.wsid FROM wvs.workspaces w JOIN candidate c ON c.wsid = w.wsid
        FOR UPDATE OF w SKIP LOCKED
    )
    SELECT c.task_id FROM candidate c JOIN locked_workspace l ON l.wsid = c.wsid
    """
)

NOTIFY = sa.text("SELECT pg_notify(:channel, '')")
