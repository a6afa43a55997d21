"""Every route of the WVS API as a ``Call``: what to send and how to read the answer, written once for ``Client``
and ``AsyncClient``. ``ROUTES`` maps each (method, path) of the OpenAPI document to the function building its call
(a test compares it with the document a running WVS serves)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import attrs

from wvs_client.models import (
    Accepted,
    AuditEvent,
    CancelAnswer,
    Current,
    Disabled,
    Event,
    Op,
    Page,
    Retention,
    RetentionPlan,
    Snapshot,
    Task,
    Workspace,
    WorkspaceCreated,
    page_of,
)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

ROUTES: dict[tuple[str, str], str] = {}
"""(method, path template) → the name of the function in this module building the route's call; ``Client`` and
``AsyncClient`` expose a method of each name."""


@attrs.frozen
class Call(Generic[T]):
    """One request and how to read its answer.

    ``idempotency_key`` is set on asynchronous writes, once per call, so every retry of the call sends the same
    one; ``repeatable`` says whether sending it again after it may have arrived is harmless (reads, PUT/DELETE,
    keyed writes), which is when the client retries answers lost or refused by a proxy.
    """

    method: str
    path: str
    read: Callable[[Any], T]
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None
    idempotency_key: str | None = None
    repeatable: bool = True
    text: bool = False  # the answer is text (the OpenAPI document, metrics), not JSON


def route(method: str, path: str) -> Callable[[F], F]:
    """Register the decorated call builder as the SDK's coverage of ``method path``."""

    def register(builder: F) -> F:
        ROUTES[(method, path)] = builder.__name__
        return builder

    return register


def new_idempotency_key() -> str:
    """A fresh Idempotency-Key: a random UUID (version 4, RFC 9562) — unguessable, and nothing needs it sorted."""
    return str(uuid.uuid4())


def _path(template: str, **values: str) -> str:
    """``template`` with each value as one path segment: percent-encoded, ``.`` and ``..`` too — sent as they are,
    URL normalization removes them, and ``/snapshots/..`` would name another route (the workspace itself)."""
    return template.format(**{name: _segment(str(value)) for name, value in values.items()})


def _segment(value: str) -> str:
    encoded = quote(value, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def _query(**values: Any) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for name, value in values.items():
        if value is None:
            continue
        for item in value if isinstance(value, list | tuple) else [value]:
            pairs.append((name, str(item)))
    return tuple(pairs)


def _write(
    method: str, template: str, read: Callable[[Any], T], key: str | None, body: Any = None, **path: str
) -> Call[T]:
    return Call(
        method,
        _path(template, **path),
        read,
        body=body if body is not None else {},
        idempotency_key=key or new_idempotency_key(),
    )


def _identity(data: Any) -> Any:
    return data


# --- health and the document --------------------------------------------------------------------------------


@route("GET", "/healthz")
def health() -> Call[Any]:
    """``{"status": "ok"}`` while the API runs."""
    return Call("GET", "/healthz", _identity)


@route("GET", "/readyz")
def ready() -> Call[Any]:
    """``{"status": "ok"}`` when the API reaches its database (else 503, raised)."""
    return Call("GET", "/readyz", _identity)


@route("GET", "/metrics")
def metrics() -> Call[str]:
    """The API's Prometheus metrics, as text."""
    return Call("GET", "/metrics", str, text=True)


@route("GET", "/v1/openapi.yaml")
def openapi() -> Call[str]:
    """The OpenAPI document WVS serves (YAML text): the core routes and those of its loaded ops."""
    return Call("GET", "/v1/openapi.yaml", str, text=True)


# --- workspaces ------------------------------------------------------------------------------------------------


@route("POST", "/v1/workspaces")
def create_workspace(
    wsid: str,
    owner: str | None = None,
    init_op: str | None = None,
    init_params: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call[WorkspaceCreated[Any]]:
    """Create ``wsid`` (PROVISIONING until its first task ends). ``owner`` defaults to the token's subject (required
    without auth); ``init_op`` an op that initializes a workspace (default ``init_workspace``) with ``init_params``."""
    body: dict[str, Any] = {"wsid": wsid}
    if owner is not None:
        body["owner"] = owner
    if init_op is not None:
        body["init"] = {"op": init_op, "params": dict(init_params or {})}
    return _write("POST", "/v1/workspaces", WorkspaceCreated.from_json, idempotency_key, body)


@route("GET", "/v1/workspaces")
def list_workspaces(
    state: str | None = None, cursor: str | None = None, limit: int | None = None
) -> Call[Page[Workspace]]:
    """A page of workspaces, newest first, optionally in one ``state``."""
    return Call("GET", "/v1/workspaces", page_of(Workspace.from_json), _query(state=state, cursor=cursor, limit=limit))


@route("GET", "/v1/workspaces/{wsid}")
def get_workspace(wsid: str) -> Call[Workspace]:
    """One workspace, with ``usage``."""
    return Call("GET", _path("/v1/workspaces/{wsid}", wsid=wsid), Workspace.from_json)


@route("DELETE", "/v1/workspaces/{wsid}")
def disable_workspace(wsid: str) -> Call[Disabled]:
    """Disable (synchronous; repeating it is harmless). ConflictLocked while it has unfinished tasks."""
    return Call("DELETE", _path("/v1/workspaces/{wsid}", wsid=wsid), Disabled.from_json)


@route("POST", "/v1/workspaces/{wsid}/retry-init")
def retry_init(wsid: str, idempotency_key: str | None = None) -> Call[Accepted[Any]]:
    """A new init task for a workspace in INIT_FAILED (else PreconditionFailed)."""
    return _write("POST", "/v1/workspaces/{wsid}/retry-init", Accepted.from_json, idempotency_key, wsid=wsid)


# --- snapshots and current -------------------------------------------------------------------------------------


@route("POST", "/v1/workspaces/{wsid}/snapshots")
def create_snapshot(
    wsid: str,
    message: str | None = None,
    labels: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
) -> Call[Accepted[Any]]:
    """Snapshot ``current`` under quiesce; the answer names the ``snapshot_id`` at once. ``labels``: at most 16
    ``{key: value}``."""
    body: dict[str, Any] = {}
    if message is not None:
        body["message"] = message
    if labels is not None:
        body["labels"] = dict(labels)
    return _write("POST", "/v1/workspaces/{wsid}/snapshots", Accepted.from_json, idempotency_key, body, wsid=wsid)


@route("GET", "/v1/workspaces/{wsid}/snapshots")
def list_snapshots(
    wsid: str, labels: Mapping[str, str] | None = None, cursor: str | None = None, limit: int | None = None
) -> Call[Page[Snapshot]]:
    """A page of the workspace's live snapshots, newest first; only those carrying every one of ``labels``. Raises
    ValueError for a key holding ``=``: sent as ``label=key=value`` it would filter on another key."""
    for key in labels or {}:
        if "=" in key:
            raise ValueError(f"label key {key!r} holds '=': no label has such a key")
    label = [f"{key}={value}" for key, value in (labels or {}).items()] or None
    return Call(
        "GET",
        _path("/v1/workspaces/{wsid}/snapshots", wsid=wsid),
        page_of(Snapshot.from_json),
        _query(label=label, cursor=cursor, limit=limit),
    )


@route("DELETE", "/v1/workspaces/{wsid}/snapshots/{snapshot_id}")
def drop_snapshot(wsid: str, snapshot_id: str, idempotency_key: str | None = None) -> Call[Accepted[Any]]:
    """Drop a snapshot; ConflictSnapshotInUse when it is current or an unfinished task uses it."""
    return Call(
        "DELETE",
        _path("/v1/workspaces/{wsid}/snapshots/{snapshot_id}", wsid=wsid, snapshot_id=snapshot_id),
        Accepted.from_json,
        idempotency_key=idempotency_key or new_idempotency_key(),
    )


@route("POST", "/v1/workspaces/{wsid}/snapshots/{snapshot_id}:fork")
def fork_snapshot(
    wsid: str, snapshot_id: str, new_wsid: str, owner: str | None = None, idempotency_key: str | None = None
) -> Call[WorkspaceCreated[Any]]:
    """A new workspace ``new_wsid`` whose first live tree is a clone of the snapshot."""
    body: dict[str, Any] = {"wsid": new_wsid}
    if owner is not None:
        body["owner"] = owner
    return _write(
        "POST",
        "/v1/workspaces/{wsid}/snapshots/{snapshot_id}:fork",
        WorkspaceCreated.from_json,
        idempotency_key,
        body,
        wsid=wsid,
        snapshot_id=snapshot_id,
    )


@route("POST", "/v1/workspaces/{wsid}/snapshots/{snapshot_id}:diff")
def diff_snapshot(
    wsid: str, snapshot_id: str, against: str = "current", idempotency_key: str | None = None
) -> Call[Accepted[Any]]:
    """A ``snapshot_diff`` task from the snapshot to ``against`` (a snapshot id or ``current``); once SUCCEEDED its
    result holds ``summary`` and the changes are read with ``iter_task_result``."""
    return _write(
        "POST",
        "/v1/workspaces/{wsid}/snapshots/{snapshot_id}:diff",
        Accepted.from_json,
        idempotency_key,
        {"against": against},
        wsid=wsid,
        snapshot_id=snapshot_id,
    )


@route("GET", "/v1/workspaces/{wsid}/current")
def get_current(wsid: str) -> Call[Current]:
    """Where ``current`` points."""
    return Call("GET", _path("/v1/workspaces/{wsid}/current", wsid=wsid), Current.from_json)


@route("POST", "/v1/workspaces/{wsid}/current:set")
def set_current(wsid: str, snapshot_id: str, idempotency_key: str | None = None) -> Call[Accepted[Any]]:
    """Roll back: ``current`` becomes a clone of the snapshot (the tree it replaces is kept as a snapshot)."""
    return _write(
        "POST",
        "/v1/workspaces/{wsid}/current:set",
        Accepted.from_json,
        idempotency_key,
        {"snapshot_id": snapshot_id},
        wsid=wsid,
    )


@route("POST", "/v1/workspaces/{wsid}/current:restore")
def restore_paths(
    wsid: str, snapshot_id: str, paths: Sequence[str], idempotency_key: str | None = None
) -> Call[Accepted[Any]]:
    """Put ``paths`` (relative to ``current``) back as the snapshot has them; a path it lacks is removed."""
    return _write(
        "POST",
        "/v1/workspaces/{wsid}/current:restore",
        Accepted.from_json,
        idempotency_key,
        {"snapshot_id": snapshot_id, "paths": list(paths)},
        wsid=wsid,
    )


# --- retention, audit --------------------------------------------------------------------------------------------


@route("GET", "/v1/workspaces/{wsid}/retention")
def get_retention(wsid: str) -> Call[Retention]:
    """The workspace's retention policy and the one that applies."""
    return Call("GET", _path("/v1/workspaces/{wsid}/retention", wsid=wsid), Retention.from_json)


@route("PUT", "/v1/workspaces/{wsid}/retention")
def set_retention(wsid: str, policy: Mapping[str, Any] | None = None) -> Call[Retention]:
    """Set the workspace's policy (restic ``keep_*`` rules); None or ``{}`` clears it (the config's applies)."""
    return Call(
        "PUT", _path("/v1/workspaces/{wsid}/retention", wsid=wsid), Retention.from_json, body=dict(policy or {})
    )


@route("GET", "/v1/workspaces/{wsid}/retention:plan")
def plan_retention(wsid: str) -> Call[RetentionPlan]:
    """What the policy would drop now and why the rest is kept; changes nothing."""
    return Call("GET", _path("/v1/workspaces/{wsid}/retention:plan", wsid=wsid), RetentionPlan.from_json)


@route("GET", "/v1/workspaces/{wsid}/audit")
def list_audit(wsid: str, cursor: str | None = None, limit: int | None = None) -> Call[Page[AuditEvent]]:
    """A page of the workspace's audit trail, newest first."""
    return Call(
        "GET",
        _path("/v1/workspaces/{wsid}/audit", wsid=wsid),
        page_of(AuditEvent.from_json),
        _query(cursor=cursor, limit=limit),
    )


# --- ops and tasks -------------------------------------------------------------------------------------------------


@route("GET", "/v1/ops")
def list_ops() -> Call[Page[Op]]:
    """Every loaded op with its params' JSON Schema (one page)."""
    return Call("GET", "/v1/ops", page_of(Op.from_json))


@route("POST", "/v1/workspaces/{wsid}/tasks")
def submit(wsid: str, op: str, params: Mapping[str, Any], idempotency_key: str | None = None) -> Call[Accepted[Any]]:
    """A task of any loaded op (a plugin's too) with ``params`` as its schema says."""
    return _write(
        "POST",
        "/v1/workspaces/{wsid}/tasks",
        Accepted.from_json,
        idempotency_key,
        {"op": op, "params": dict(params)},
        wsid=wsid,
    )


@route("GET", "/v1/tasks")
def list_tasks(
    wsid: str | None = None,
    status: str | None = None,
    op: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Call[Page[Task]]:
    """A page of tasks, newest first, optionally of one workspace, status or op."""
    return Call(
        "GET", "/v1/tasks", page_of(Task.from_json), _query(wsid=wsid, status=status, op=op, cursor=cursor, limit=limit)
    )


@route("GET", "/v1/tasks/{task_id}")
def get_task(task_id: str) -> Call[Task]:
    """One task."""
    return Call("GET", _path("/v1/tasks/{task_id}", task_id=task_id), Task.from_json)


@route("POST", "/v1/tasks/{task_id}:cancel")
def cancel_task(task_id: str) -> Call[CancelAnswer]:
    """Cancel: PENDING ends CANCELED at once, RUNNING at its next safe point; ConflictLocked once it ended.
    Not repeated after it may have arrived: a second cancel of a canceled task is ConflictLocked."""
    return Call(
        "POST", _path("/v1/tasks/{task_id}:cancel", task_id=task_id), CancelAnswer.from_json, body={}, repeatable=False
    )


@route("GET", "/v1/tasks/{task_id}/result")
def task_result(task_id: str, cursor: str | None = None, limit: int | None = None) -> Call[Page[Any]]:
    """A page of the list in a SUCCEEDED task's result (a diff's changes: ``{path, change, size_before, …}``)."""
    return Call(
        "GET",
        _path("/v1/tasks/{task_id}/result", task_id=task_id),
        page_of(_identity),
        _query(cursor=cursor, limit=limit),
    )


@route("GET", "/v1/events")
def list_events(
    wsid: str | None = None, after: int | None = None, cursor: str | None = None, limit: int | None = None
) -> Call[Page[Event]]:
    """A page of the event log, oldest first after the event id ``after``; ``next_cursor`` None means the log
    ends here for now."""
    return Call(
        "GET", "/v1/events", page_of(Event.from_json), _query(wsid=wsid, after=after, cursor=cursor, limit=limit)
    )
