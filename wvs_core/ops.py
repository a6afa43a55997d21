"""The task-op interface: an op declares its params, its DB-side rules and its executor step.

An op object is shared by three planes. The API uses ``params_type`` to validate, the scheduler runs
the DB-side rules inside the queue's transactions, and the executor runs ``execute`` against the
filesystem. An op module therefore imports neither the database layer nor the executor.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Protocol

import attrs

from wvs_core.layout import WorkspaceLayout
from wvs_core.models import ExecutionResult, Task, Workspace, WorkspaceState
from wvs_core.quiesce import QuiesceProtocol, quiesced
from wvs_core.storage import StorageBackend


class OpFailed(Exception):
    """An executor step failed; ``reason`` is a short machine-readable cause (``QUIESCE_TIMEOUT``…)."""

    def __init__(self, reason: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable


@attrs.frozen
class ExecutionContext:
    """Everything an executor step may use: the workspace's paths, the storage and quiesce plugins."""

    task_id: str
    wsid: str
    params: Mapping[str, str]
    layout: WorkspaceLayout
    storage: StorageBackend
    quiesce: QuiesceProtocol
    quiesce_timeout: float
    request_id: str = ""

    def quiesced(self) -> AbstractAsyncContextManager[None]:
        """Hold the workspace's writers frozen for the body (fail-closed, always resumed)."""
        return quiesced(self.quiesce, self.layout, self.task_id, self.quiesce_timeout)


class WorkspaceTransaction(Protocol):
    """The database operations an op's DB-side rules may use, all inside one scheduler transaction."""

    async def get_workspace(self, wsid: str) -> Workspace:
        """The workspace row, locked for the rest of the transaction."""
        ...

    async def set_workspace_state(self, wsid: str, state: WorkspaceState, **fields: Any) -> None:
        """Move the workspace to ``state`` (audited) and update other columns given as ``fields``."""
        ...

    async def add_snapshot(self, wsid: str, snapshot_id: str, fs_path: str, message: str | None) -> None:
        """Record a snapshot that now exists on disk (idempotent for a re-run)."""
        ...


class TaskOp(abc.ABC):
    """One kind of task. Subclasses set ``name`` and ``params_type`` and implement ``execute``."""

    name: ClassVar[str]
    params_type: ClassVar[type[Any]]

    @property
    def wire_name(self) -> str:
        """The op's name in the gRPC request (``SNAPSHOT_CREATE`` for ``snapshot_create``)."""
        return self.name.upper()

    @abc.abstractmethod
    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Do the filesystem part. Must be idempotent: a re-run after a crash finishes the job.

        Raise ``OpFailed`` for an expected failure; any other exception is reported as an
        ``EXECUTOR_ERROR``.
        """

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:  # noqa: B027
        """DB-side rule run in the transaction that marks the task SUCCEEDED."""

    async def on_dead(self, tx: WorkspaceTransaction, task: Task) -> None:  # noqa: B027
        """DB-side rule run in the transaction that marks the task DEAD."""
