"""wvs-client: the Python SDK of WVS (``Client``, ``AsyncClient``), the agent's quiesce responder
(``wvs_client.responder``) and an MCP server (``wvs-mcp``, extra ``mcp``)."""

from __future__ import annotations

from wvs_client import calls
from wvs_client.async_client import AsyncClient
from wvs_client.client import Client
from wvs_client.errors import (
    BadRequest,
    ConflictExists,
    ConflictIdempotentMismatch,
    ConflictLocked,
    ConflictSnapshotInUse,
    ExecutorError,
    ExecutorTimeout,
    Forbidden,
    Gone,
    InternalError,
    NotFound,
    PreconditionFailed,
    Unauthorized,
    WaitTimeout,
    WvsError,
    WvsUnreachable,
)
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
    TaskError,
    Usage,
    Workspace,
    WorkspaceCreated,
    to_json,
)

__all__ = [
    "Accepted",
    "AsyncClient",
    "AuditEvent",
    "BadRequest",
    "CancelAnswer",
    "Client",
    "ConflictExists",
    "ConflictIdempotentMismatch",
    "ConflictLocked",
    "ConflictSnapshotInUse",
    "Current",
    "Disabled",
    "Event",
    "ExecutorError",
    "ExecutorTimeout",
    "Forbidden",
    "Gone",
    "InternalError",
    "NotFound",
    "Op",
    "Page",
    "PreconditionFailed",
    "Retention",
    "RetentionPlan",
    "Snapshot",
    "Task",
    "TaskError",
    "Unauthorized",
    "Usage",
    "WaitTimeout",
    "Workspace",
    "WorkspaceCreated",
    "WvsError",
    "WvsUnreachable",
    "to_json",
]

# A method of a route has the docstring of the call it sends (help(Client.create_snapshot) shows it).
for _client in (Client, AsyncClient):
    for _name in calls.ROUTES.values():
        _method = getattr(_client, _name)
        if not _method.__doc__:
            _method.__doc__ = getattr(calls, _name).__doc__
