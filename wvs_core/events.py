"""Events (SPEC §14): what changed, in the shape notifiers and ``GET /v1/events`` hand out.

Every state change of a task, workspace or snapshot is recorded through one door,
``wvs_core.db.events.record``, as an audit row in the transaction that makes the change: the audit table is
the outbox a dispatcher tails. A few audit rows are not events (``AuditOnly``): they record who asked for
something, but nothing changed state yet. Ops add event types of their own (``TaskOp.event_types``); every
audit row that is not audit-only is an event.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from wvs_core.models import Task, TaskStatus, WorkspaceState


class EventType(enum.StrEnum):
    """Every event type; mirrors what ``wvs.audit.action`` holds for an event."""

    TASK_CREATED = "task.created"  # PENDING, through the API
    TASK_STARTED = "task.started"  # claimed: RUNNING, attempt counted
    TASK_SUCCEEDED = "task.succeeded"
    TASK_FAILED = "task.failed"  # will be retried at next_run_at
    TASK_DEAD = "task.dead"
    TASK_CANCELED = "task.canceled"
    TASK_RELEASED = "task.released"  # RUNNING → PENDING at a graceful shutdown, attempt uncounted
    WORKSPACE_CREATED = "workspace.created"  # PROVISIONING
    WORKSPACE_PROVISIONING = "workspace.provisioning"  # INIT_FAILED → PROVISIONING (retry-init)
    WORKSPACE_ACTIVE = "workspace.active"
    WORKSPACE_INIT_FAILED = "workspace.init_failed"
    WORKSPACE_DISABLED = "workspace.disabled"
    WORKSPACE_TAMPERED = "workspace.tampered"  # a task found the agent view not as WVS made it
    SNAPSHOT_CREATED = "snapshot.created"
    SNAPSHOT_DROPPED = "snapshot.dropped"  # deleted_at set; the tree is removed after
    CURRENT_CHANGED = "current.changed"  # current_snapshot_id / current_path moved (rollback, fsck repair)


class AuditOnly(enum.StrEnum):
    """Audit rows that are not events: nothing changed state (yet)."""

    CANCEL_REQUESTED = "task.cancel_requested"  # a RUNNING task will stop at its next safe point
    SNAPSHOT_MOVED = "fsck.snapshot_moved"  # the layout migration moved a tree; the snapshot is unchanged
    RETENTION_SET = "workspace.retention_set"  # the workspace's own retention policy was set or cleared


EVENT_TYPES = frozenset(EventType)
AUDIT_ONLY = frozenset(AuditOnly)
EVENT_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}")
"""What an event type (or an audit-only action) looks like, whole (``fullmatch``): ``<noun>.<verb>``, lower case."""


def check_op_event_types(op: str, declared: Mapping[str, str], taken: Mapping[str, str]) -> None:
    """Raise ValueError unless each type ``op`` declares is well formed (``EVENT_TYPE_NAME``), no core event type
    or audit-only action, and not in ``taken`` (a type another op declared, mapped to that op's name)."""
    for name in declared:
        if not EVENT_TYPE_NAME.fullmatch(name):
            raise ValueError(f"op {op}: event type {name!r} is not <noun>.<verb> in lower case")
        if name in EVENT_TYPES or name in AUDIT_ONLY:
            raise ValueError(f"op {op}: event type {name!r} is one of the core's")
        if name in taken:
            raise ValueError(f"op {op}: event type {name!r} is declared by op {taken[name]} too")


_TASK_EVENTS = {
    TaskStatus.RUNNING: EventType.TASK_STARTED,
    TaskStatus.SUCCEEDED: EventType.TASK_SUCCEEDED,
    TaskStatus.FAILED: EventType.TASK_FAILED,
    TaskStatus.DEAD: EventType.TASK_DEAD,
    TaskStatus.CANCELED: EventType.TASK_CANCELED,
    TaskStatus.PENDING: EventType.TASK_RELEASED,
}

_WORKSPACE_EVENTS = {
    WorkspaceState.PROVISIONING: EventType.WORKSPACE_PROVISIONING,
    WorkspaceState.ACTIVE: EventType.WORKSPACE_ACTIVE,
    WorkspaceState.INIT_FAILED: EventType.WORKSPACE_INIT_FAILED,
    WorkspaceState.DISABLED: EventType.WORKSPACE_DISABLED,
}


def task_event_type(status: TaskStatus) -> EventType:
    """The event of a task entering ``status`` (PENDING again: released)."""
    return _TASK_EVENTS[status]


def workspace_event_type(state: WorkspaceState) -> EventType:
    """The event of a workspace entering ``state`` (its creation is ``workspace.created`` instead)."""
    return _WORKSPACE_EVENTS[state]


@attrs.frozen
class NewEvent:
    """A change to record: an ``EventType``, an op's declared type, or an ``AuditOnly`` action, with its facts."""

    type: str = attrs.field()
    wsid: str = attrs.field()
    actor: dict[str, Any] | None = attrs.field()
    data: dict[str, Any] = attrs.field(factory=dict)
    task_id: str | None = None
    request_id: str | None = None

    @type.validator
    def _well_formed(self, _attribute: attrs.Attribute[str], value: str) -> None:
        # The core records its own enums; an op's types are checked against its declaration when recorded.
        if not EVENT_TYPE_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is neither an event type nor an audit-only action")

    @classmethod
    def of_task(cls, type_: str, task: Task, actor: dict[str, Any] | None, data: dict[str, Any]) -> NewEvent:
        """An event about ``task``: its wsid, id and request id, and ``op`` in the data."""
        return cls(
            type=type_,
            wsid=task.wsid,
            task_id=task.task_id,
            request_id=task.request_id,
            actor=actor,
            data={"op": task.op, **data},
        )


@attrs.frozen
class Event:
    """A recorded event, as notifiers receive it and ``GET /v1/events`` lists it."""

    event_id: int
    type: str
    ts: datetime
    wsid: str | None
    task_id: str | None
    actor: dict[str, Any] | None
    request_id: str | None
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """``{event_id, type, ts, wsid, task_id, actor, request_id, data}``, JSON-ready."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "ts": self.ts.isoformat(),
            "wsid": self.wsid,
            "task_id": self.task_id,
            "actor": self.actor,
            "request_id": self.request_id,
            "data": self.data,
        }


@attrs.frozen
class DeliveryState:
    """Where one event stands with one subscription of the dispatcher: ``pending`` (not settled yet),
    ``retrying``, ``delivered``, ``failed`` (given up after the retry period) or ``skipped`` (not for this
    subscription: another type, or older than the subscription)."""

    subscription: str
    state: str
    attempts: int = 0
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None
