"""Domain models exchanged between the API, the queue, the scheduler, the executor and plugins."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs


class WorkspaceState(enum.StrEnum):
    """Lifecycle of a workspace; mirrors the CHECK on ``wvs.workspaces.state``."""

    PROVISIONING = "PROVISIONING"  # init_workspace queued or running
    ACTIVE = "ACTIVE"  # initialised; snapshots and rollbacks allowed
    INIT_FAILED = "INIT_FAILED"  # init_workspace went DEAD; retry-init allowed
    DISABLED = "DISABLED"  # read-only forever; every write answers 410


class TaskStatus(enum.StrEnum):
    """Task state machine (SPEC §4); mirrors the CHECK on ``wvs.tasks.status``."""

    PENDING = "PENDING"  # waiting for its turn in the workspace queue
    RUNNING = "RUNNING"  # claimed by a scheduler, executor call in flight
    SUCCEEDED = "SUCCEEDED"  # terminal
    FAILED = "FAILED"  # failed, will be retried once next_run_at has come
    CANCELED = "CANCELED"  # terminal
    DEAD = "DEAD"  # terminal: attempts exhausted or not retryable

    @property
    def is_terminal(self) -> bool:
        """True for states a task never leaves."""
        return self in (TaskStatus.SUCCEEDED, TaskStatus.CANCELED, TaskStatus.DEAD)


UNFINISHED = (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.FAILED)
"""Statuses of a task that still holds its workspace's queue (a FAILED task awaits its retry)."""


@attrs.frozen
class Workspace:
    """A workspace row."""

    wsid: str
    owner: str
    state: WorkspaceState
    root_path: str
    current_path: str | None
    current_snapshot_id: str | None
    created_at: datetime
    updated_at: datetime


@attrs.frozen
class Snapshot:
    """A snapshot row; ``fs_path`` is absolute."""

    snapshot_id: str
    wsid: str
    fs_path: str
    message: str | None
    created_at: datetime
    deleted_at: datetime | None = None
    labels: dict[str, str] = attrs.field(factory=dict)
    entries: int | None = None  # entries below the root, as the storage backend counted them (None: unknown)
    bytes: int | None = None  # logical size of its regular files, a hard-linked file once (None: unknown)


@attrs.frozen
class WorkspaceUsage:
    """A workspace's live (not deleted) snapshots together. ``entries`` and ``bytes`` add up the snapshots
    whose figure is known (None: none is); a snapshot's blocks shared with others are counted in each."""

    snapshots: int
    entries: int | None
    bytes: int | None


@attrs.frozen
class Task:
    """A task row: one asynchronous, idempotent, audited operation on a workspace."""

    task_id: str
    wsid: str
    op: str
    status: TaskStatus
    idempotency_key: str | None
    request_hash: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    attempt: int
    max_attempts: int
    next_run_at: datetime
    timeout_seconds: int
    cancel_requested: bool
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    request_id: str | None = None
    actor: dict[str, Any] | None = None
    worker_id: str | None = None  # the scheduler running it, while RUNNING
    lease_expires_at: datetime | None = None  # its scheduler renews this while RUNNING


@attrs.frozen
class TaskOutcome:
    """How a run ended, as the scheduler decided it: what ``wvs_core.db.tasks.end`` writes to the row."""

    status: TaskStatus  # SUCCEEDED, FAILED (retry at next_run_in), DEAD or CANCELED
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    next_run_in: float = 0.0  # seconds until a FAILED task may run again


@attrs.frozen
class AuditEvent:
    """One audit row: who did what to which workspace or task, with before/after/error."""

    event_id: int
    ts: datetime
    wsid: str | None
    actor: dict[str, Any] | None
    action: str
    request_id: str | None
    task_id: str | None
    payload: dict[str, Any] | None


@attrs.frozen
class Page:
    """One page of a keyset-paginated list."""

    items: list[Any]
    next_cursor: str | None


@attrs.frozen
class ExecutionRequest:
    """What the scheduler asks an executor to do (the gRPC ExecuteTaskRequest)."""

    task_id: str
    wsid: str
    op: str
    params: dict[str, Any]  # JSON values: each travels JSON-encoded in the gRPC map
    request_id: str = ""


@attrs.frozen
class ExecutionResult:
    """What an executor answers (the gRPC ExecuteTaskResponse)."""

    success: bool
    noop: bool = False
    error_code: str = ""
    error_message: str = ""
    results: dict[str, str] = attrs.field(factory=dict)
    retryable: bool = True  # for a failure: False when a retry cannot help (the task goes DEAD)
