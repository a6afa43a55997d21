"""The queue interface: how schedulers claim tasks and record their outcome."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from wvs_core.models import Task, TaskStatus

if TYPE_CHECKING:  # the executor loads this module and must not load the database layer
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

InTransaction = Callable[["AsyncConnection", Task], Awaitable[None]]
"""A callback run inside the queue's transaction, with the task row as it was just written."""


@attrs.frozen
class TaskOutcome:
    """How a run ended, as the scheduler decided it."""

    status: TaskStatus  # SUCCEEDED, FAILED (retry at next_run_in), DEAD or CANCELED
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    next_run_in: float = 0.0  # seconds until a FAILED task may run again


class LeaseLost(Exception):
    """The task is no longer RUNNING for this scheduler (its lease expired and it was reaped)."""


class TaskQueue(abc.ABC):
    """Claims runnable tasks one workspace at a time and records how they ended.

    Guarantees a queue must give: a task is claimed by one scheduler at a time; a workspace never has
    two RUNNING tasks; a workspace's tasks are claimed in creation order (a FAILED task waiting for
    its retry blocks the tasks created after it). Subclasses set ``name`` (``plugins.queue`` in the
    config) and take their ``[plugins.settings.<name>]`` table as ``settings``.
    """

    name: ClassVar[str]

    def __init__(self, engine: AsyncEngine, settings: Mapping[str, Any]) -> None:
        self.engine = engine
        self.settings = settings

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open whatever the queue needs to wait for work (a LISTEN connection…)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``start`` opened."""

    @abc.abstractmethod
    async def announce(self, connection: AsyncConnection) -> None:
        """Within the caller's transaction, wake waiting schedulers once it commits."""

    @abc.abstractmethod
    async def claim(self, worker_id: str, lease: float, on_claimed: InTransaction) -> Task | None:
        """Move the next runnable task to RUNNING for ``worker_id`` with a ``lease`` (seconds), or None."""

    @abc.abstractmethod
    async def renew(self, worker_id: str, task_ids: list[str], lease: float) -> set[str]:
        """Extend the leases ``worker_id`` holds; returns the ids it still holds (others were lost)."""

    @abc.abstractmethod
    async def finish(self, task: Task, outcome: TaskOutcome, on_finished: InTransaction) -> Task:
        """Record ``outcome`` for a RUNNING task still held by its worker; ``on_finished`` runs in the same
        transaction. Raises LeaseLost when the task is no longer held."""

    @abc.abstractmethod
    async def reap(self, decide: Callable[[Task], TaskOutcome], on_finished: InTransaction) -> list[Task]:
        """End RUNNING tasks whose lease expired (their scheduler died) with the outcome ``decide`` picks."""

    @abc.abstractmethod
    async def release(self, task: Task, on_released: InTransaction) -> None:
        """Give a RUNNING task back to the queue as PENDING, its attempt uncounted (graceful shutdown)."""

    @abc.abstractmethod
    async def wait_for_work(self, timeout: float) -> None:
        """Return when work may have arrived (a wake-up) or after ``timeout`` seconds."""

    @abc.abstractmethod
    async def cancel_requested(self, task_id: str) -> bool:
        """True once someone asked to cancel this RUNNING task."""

    @abc.abstractmethod
    async def depth(self) -> int:
        """Number of tasks waiting to run (PENDING or FAILED awaiting retry)."""
