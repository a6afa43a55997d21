"""Every WVS metric (SPEC §10), defined once. Never label by ``wsid``: workspaces are unbounded."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# --- api -------------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter("wvs_http_requests_total", "HTTP requests answered.", ["route", "method", "code"])
HTTP_DURATION = Histogram("wvs_http_request_duration_seconds", "HTTP request latency.", ["route", "method"])
ACTIVE_REQUESTS = Gauge("wvs_active_requests", "HTTP requests in flight.")
HTTP_STALLED = Counter(
    "wvs_http_stalled_requests_total",
    "Requests given up on after api.read_timeout: a head never completed (connection closed) or a body (400).",
    ["part"],
)

# --- worker ----------------------------------------------------------------------------------------
TASKS = Counter("wvs_task_total", "Task runs ended, by final status of the run.", ["op", "status"])
TASK_DURATION = Histogram(
    "wvs_task_duration_seconds",
    "Claim-to-outcome time of a task run.",
    ["op"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
QUEUE_DEPTH = Gauge("wvs_task_queue_depth", "Tasks waiting to run (PENDING or FAILED awaiting retry).")
RETRIES = Counter("wvs_task_retry_total", "Task runs that failed and were scheduled for a retry.", ["op"])
LOCK_WAIT = Histogram(
    "wvs_lock_wait_seconds",
    "Time a task waited, once runnable, for its workspace's serialization and a slot.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600),
)
DEQUEUE_EMPTY = Counter("wvs_dequeue_empty_total", "Claims that found fewer tasks to run than free slots.")
WORKSPACE_TRANSITIONS = Counter("wvs_workspace_state_transitions_total", "Workspace state changes.", ["from", "to"])
RETENTION_DROPS = Counter("wvs_retention_drops_total", "snapshot_drop tasks the retention job created.")

# --- events (the dispatcher, in the worker) --------------------------------------------------------
EVENT_DELIVERIES = Counter(
    "wvs_event_deliveries_total",
    "Event delivery attempts' outcomes per subscription: delivered, retried (failed, will retry), failed (given up).",
    ["subscription", "outcome"],
)
EVENT_LAG = Gauge(
    "wvs_event_delivery_lag_seconds",
    "Age of the oldest event not yet settled for the subscription (0: none).",
    ["subscription"],
)
EVENT_POSITION = Gauge(
    "wvs_event_position", "The subscription's stored position: every event up to it is settled.", ["subscription"]
)
# --- executor --------------------------------------------------------------------------------------
CLONE_DURATION = Histogram("wvs_clone_duration_seconds", "Time to clone a tree.", ["op"])
CLONE_ENTRIES = Counter("wvs_clone_entries_total", "Files, directories and links cloned.", ["op"])
CLONE_FAILURES = Counter("wvs_clone_fail_total", "Executor ops that failed, by reason.", ["reason"])
QUIESCE_WAIT = Histogram("wvs_quiesce_wait_seconds", "Time from REQUEST_FREEZE to the agent's FROZEN.")
QUIESCE_TIMEOUTS = Counter("wvs_quiesce_timeout_total", "Freezes the agent did not confirm in time.")
SWITCH_DURATION = Histogram("wvs_switch_duration_seconds", "Time to switch the current symlink.")
EXECUTOR_ACTIVE = Gauge("wvs_executor_active_tasks", "Ops running in this executor.")
EXECUTOR_READY = Gauge(
    "wvs_executor_ready", "1 while the executor's mount is the volume it started on, else 0 (ops fail, retryable)."
)
