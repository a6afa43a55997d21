"""What WVS answers, as attrs classes. Each is read with ``from_json``, which keeps fields a newer WVS adds in
``extra`` instead of failing, and gives fields an older WVS lacks their default; times are aware datetimes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

T = TypeVar("T")
W = TypeVar("W")

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "DEAD", "CANCELED"})
"""A task in one of these never changes again (FAILED is retried)."""


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _known(cls: type[Any], data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    names = {field.name for field in attrs.fields(cls)}
    known = {key: value for key, value in data.items() if key in names and key != "extra"}
    return known, {key: value for key, value in data.items() if key not in names}


class _FromJson:
    """``from_json(data)``: the fields this class knows, the rest in ``extra``."""

    @classmethod
    def from_json(cls: type[T], data: Mapping[str, Any]) -> T:
        known, extra = _known(cls, data)
        return cls(**known, **{"extra": extra})


@attrs.frozen(kw_only=True)
class Usage(_FromJson):
    """What a workspace's live snapshots hold together (entries and bytes None when no figure is known)."""

    snapshots: int = 0
    entries: int | None = None
    bytes: int | None = None
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


def _usage(value: Any) -> Usage | None:
    return Usage.from_json(value) if isinstance(value, Mapping) else value


@attrs.frozen(kw_only=True)
class Workspace(_FromJson):
    """A workspace; ``state`` ∈ PROVISIONING, ACTIVE, INIT_FAILED, DISABLED. ``usage`` is only in ``get_workspace``."""

    wsid: str
    owner: str | None = None
    state: str = ""
    root_path: str | None = None
    current_path: str | None = None
    current_snapshot_id: str | None = None
    created_at: datetime | None = attrs.field(default=None, converter=_time)
    updated_at: datetime | None = attrs.field(default=None, converter=_time)
    usage: Usage | None = attrs.field(default=None, converter=_usage)
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class Snapshot(_FromJson):
    """A live snapshot; ``entries`` and ``bytes`` (logical size) are None when unknown."""

    snapshot_id: str
    message: str | None = None
    labels: dict[str, str] = attrs.field(factory=dict)
    entries: int | None = None
    bytes: int | None = None
    fs_path: str | None = None
    created_at: datetime | None = attrs.field(default=None, converter=_time)
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class Current(_FromJson):
    """Where ``current`` points: the live tree, and the snapshot it was restored from (None: none)."""

    wsid: str
    current_path: str | None = None
    current_snapshot_id: str | None = None
    updated_at: datetime | None = attrs.field(default=None, converter=_time)
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class TaskError(_FromJson):
    """Why a task's last attempt failed: ``code`` (a WVS_… code), ``reason`` (the op's, e.g. QUIESCE_TIMEOUT),
    ``message``, and the ``attempt`` it ended."""

    code: str
    message: str = ""
    reason: str | None = None
    attempt: int | None = None
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        return f"{self.code}{reason}: {self.message}"


def _task_error(value: Any) -> TaskError | None:
    return TaskError.from_json(value) if isinstance(value, Mapping) else value


@attrs.frozen(kw_only=True)
class Task(_FromJson):
    """A task; ``status`` ∈ PENDING, RUNNING, SUCCEEDED, FAILED (retried), CANCELED, DEAD. ``error`` is the last
    failed attempt's; ``result`` the op's answer once SUCCEEDED."""

    task_id: str
    wsid: str = ""
    op: str = ""
    status: str = ""
    attempt: int = 0
    max_attempts: int | None = None
    params: dict[str, Any] = attrs.field(factory=dict)
    result: dict[str, Any] | None = None
    error: TaskError | None = attrs.field(default=None, converter=_task_error)
    idempotency_key: str | None = None
    request_id: str | None = None
    cancel_requested: bool = False
    timeout_seconds: int | None = None
    worker_id: str | None = None
    created_at: datetime | None = attrs.field(default=None, converter=_time)
    started_at: datetime | None = attrs.field(default=None, converter=_time)
    ended_at: datetime | None = attrs.field(default=None, converter=_time)
    next_run_at: datetime | None = attrs.field(default=None, converter=_time)
    lease_expires_at: datetime | None = attrs.field(default=None, converter=_time)
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)

    @property
    def terminal(self) -> bool:
        """True once SUCCEEDED, DEAD or CANCELED."""
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        """True when SUCCEEDED."""
        return self.status == "SUCCEEDED"


@attrs.frozen(kw_only=True)
class Accepted(_FromJson, Generic[W]):
    """A write WVS accepted: its task, ``status`` PENDING (or the original's, when a key was replayed), and what
    the route answers besides (``snapshot_id`` of a new snapshot; ``op`` and ``params`` from ``submit``).

    ``wait()`` follows the task to its end: a ``Task`` from ``Client``, an awaitable of one from ``AsyncClient``.
    """

    task_id: str
    status: str = "PENDING"
    snapshot_id: str | None = None
    op: str | None = None
    params: dict[str, Any] | None = None
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)
    waiter: Callable[..., W] | None = attrs.field(default=None, repr=False, eq=False)

    def wait(self, timeout: float | None = None, on_progress: Callable[[Task], Any] | None = None) -> W:
        """Follow the task until SUCCEEDED, DEAD or CANCELED; see ``Client.wait``."""
        if self.waiter is None:
            raise RuntimeError("this answer was not made by a client")
        return self.waiter(self.task_id, timeout=timeout, on_progress=on_progress)


@attrs.frozen(kw_only=True)
class WorkspaceCreated(_FromJson, Generic[W]):
    """A workspace being created (PROVISIONING) and its first task; ``wait()`` follows that task."""

    wsid: str
    state: str = "PROVISIONING"
    init_task_id: str = ""
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)
    waiter: Callable[..., W] | None = attrs.field(default=None, repr=False, eq=False)

    def wait(self, timeout: float | None = None, on_progress: Callable[[Task], Any] | None = None) -> W:
        """Follow the init task until SUCCEEDED, DEAD or CANCELED; see ``Client.wait``."""
        if self.waiter is None:
            raise RuntimeError("this answer was not made by a client")
        return self.waiter(self.init_task_id, timeout=timeout, on_progress=on_progress)


@attrs.frozen(kw_only=True)
class Disabled(_FromJson):
    """The answer of disabling a workspace."""

    wsid: str
    state: str = "DISABLED"
    updated_at: datetime | None = attrs.field(default=None, converter=_time)
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class CancelAnswer(_FromJson):
    """A cancel: CANCELED at once (it was PENDING), or ``cancel_requested`` (RUNNING; it stops at a safe point)."""

    task_id: str
    status: str = ""
    cancel_requested: bool = False
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class Op(_FromJson):
    """A loaded op and the JSON Schema of its params (``readOnly`` fields are chosen by the server); ``quiesces``:
    its tasks may wait for the workspace's agent to confirm a freeze."""

    name: str
    description: str = ""
    params_schema: dict[str, Any] = attrs.field(factory=dict)
    quiesces: bool = False
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class Event(_FromJson):
    """One event of the log (SPEC §14): ``type`` such as ``task.succeeded``, ``data`` its details,
    ``deliveries`` where it stands with each notifier."""

    event_id: int
    type: str
    ts: datetime | None = attrs.field(default=None, converter=_time)
    wsid: str | None = None
    task_id: str | None = None
    actor: dict[str, Any] | None = None
    request_id: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict)
    deliveries: list[dict[str, Any]] = attrs.field(factory=list)
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class AuditEvent(_FromJson):
    """One row of a workspace's audit trail: who (``actor``) did what (``action``), ``payload`` before/after."""

    event_id: int
    action: str
    ts: datetime | None = attrs.field(default=None, converter=_time)
    wsid: str | None = None
    actor: dict[str, Any] | None = None
    request_id: str | None = None
    task_id: str | None = None
    payload: dict[str, Any] | None = None
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class Retention(_FromJson):
    """A workspace's own retention ``policy`` (None: it has none), the ``effective`` one, whose ``source`` is
    ``workspace`` or ``config``, and a one-line ``description``. Policies are dicts of restic-like rules
    (``keep_last``, ``keep_daily``, …, ``keep_within``, ``keep_labels``)."""

    wsid: str
    policy: dict[str, Any] | None = None
    effective: dict[str, Any] = attrs.field(factory=dict)
    source: str = ""
    description: str = ""
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen(kw_only=True)
class RetentionPlan(_FromJson):
    """What the policy would do now: ``keep`` items ``{snapshot_id, reasons}``, ``drop`` items ``{snapshot_id}``."""

    keep: list[dict[str, Any]] = attrs.field(factory=list)
    drop: list[dict[str, Any]] = attrs.field(factory=list)
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


@attrs.frozen
class Page(Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` for the next (None: this is the last)."""

    items: list[T]
    next_cursor: str | None


def page_of(read: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], Page[T]]:
    """The reader of a page whose items ``read`` reads."""

    def read_page(data: Any) -> Page[T]:
        return Page([read(item) for item in data["items"]], data.get("next_cursor"))

    return read_page


NOT_JSON_FIELDS = frozenset({"extra", "waiter"})  # kept beside a model's fields, never one of WVS's


def to_json(value: Any) -> Any:
    """What the SDK read, as JSON again: a model as the object WVS sent (its fields, then those in ``extra``;
    a field the answer lacked is ``null``), a ``Page`` as ``{items, next_cursor}``, times in ISO 8601;
    anything else as it is."""
    if attrs.has(type(value)):
        data = {
            field.name: to_json(getattr(value, field.name))
            for field in attrs.fields(type(value))
            if field.name not in NOT_JSON_FIELDS
        }
        return {**data, **to_json(getattr(value, "extra", {}))}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value
