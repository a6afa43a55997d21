"""Every SQL statement of the PostgreSQL queue, in one place."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

# Runnable: PENDING, or FAILED (always retryable: a last failure goes straight to DEAD) whose
# next_run_at has come. A task may only start when its workspace has no RUNNING task and no older
# unfinished task; the workspace row lock (SKIP LOCKED) makes two concurrent claims of one workspace
# impossible, and EvalPlanQual re-checks the status of a row another scheduler claimed meanwhile.
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
    UPDATE wvs.tasks t
    SET status = 'RUNNING',
        attempt = t.attempt + 1,
        started_at = clock_timestamp(),
        ended_at = NULL,
        worker_id = :worker_id,
        lease_expires_at = clock_timestamp() + make_interval(secs => :lease)
    FROM candidate c JOIN locked_workspace l ON l.wsid = c.wsid
    WHERE t.task_id = c.task_id
    RETURNING t.*
    """
)

FINISH = sa.text(
    """
    UPDATE wvs.tasks
    SET status = :status,
        ended_at = clock_timestamp(),
        result = :result,
        error = :error,
        next_run_at = clock_timestamp() + make_interval(secs => :next_run_in),
        worker_id = NULL,
        lease_expires_at = NULL
    WHERE task_id = :task_id AND status = 'RUNNING' AND worker_id IS NOT DISTINCT FROM :worker_id
    RETURNING *
    """
).bindparams(sa.bindparam("result", type_=JSONB), sa.bindparam("error", type_=JSONB))

RENEW = sa.text(
    """
    UPDATE wvs.tasks
    SET lease_expires_at = clock_timestamp() + make_interval(secs => :lease)
    WHERE task_id = ANY(:task_ids) AND status = 'RUNNING' AND worker_id = :worker_id
    RETURNING task_id
    """
)

# Expired leases: the scheduler that held them died (or lost the database for longer than the lease).
EXPIRED = sa.text(
    """
    SELECT * FROM wvs.tasks
    WHERE status = 'RUNNING' AND lease_expires_at < clock_timestamp()
    ORDER BY lease_expires_at
    LIMIT 100
    FOR UPDATE SKIP LOCKED
    """
)

# Graceful shutdown: back to the queue as if never claimed.
RELEASE = sa.text(
    """
    UPDATE wvs.tasks
    SET status = 'PENDING', attempt = greatest(attempt - 1, 0), started_at = NULL,
        worker_id = NULL, lease_expires_at = NULL, next_run_at = clock_timestamp()
    WHERE task_id = :task_id AND status = 'RUNNING' AND worker_id = :worker_id
    RETURNING *
    """
)

NOTIFY = sa.text("SELECT pg_notify(:channel, '')")

CANCEL_REQUESTED = sa.text("SELECT cancel_requested FROM wvs.tasks WHERE task_id = :task_id")

DEPTH = sa.text("SELECT count(*) FROM wvs.tasks WHERE status IN ('PENDING', 'FAILED')")
