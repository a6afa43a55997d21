"""The queue interface: which task a claim takes, and waking the schedulers that wait for one.

Core owns the ``wvs.tasks`` table: its schema, its migrations and every statement that writes or lists it
(``wvs_core.db.tasks``). A queue plugin decides two things only — which runnable row a claim takes, and how a
waiting scheduler learns that there may be work (docs/architecture.md, "Who owns the task table").
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # the executor loads this module and must not load the database layer
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class TaskQueue(abc.ABC):
    """Picks the task a scheduler runs next, and wakes schedulers when there may be one.

    Guarantees a queue must give (``tests/queue_conformance.py`` checks them): a task is claimed by one
    scheduler at a time; a workspace never has two RUNNING tasks; a workspace's tasks are claimed in creation
    order (a FAILED task waiting for its retry blocks the tasks created after it). Subclasses set ``name``
    (``plugins.queue`` in the config) and take their ``[plugins.settings.<name>]`` table as ``settings``.
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
    async def claim(self, connection: AsyncConnection) -> str | None:
        """Within the caller's transaction, pick the task to run next and return its ``task_id``; None when
        nothing can run now.

        The task must be runnable (PENDING, or FAILED whose ``next_run_at`` has come), the oldest unfinished
        task of its workspace by ``(created_at, task_id)``, and its workspace must have no RUNNING task. Until
        the transaction ends, no other claim may return it or another task of its workspace (lock them);
        core marks it RUNNING in the same transaction, and from then on its RUNNING status holds the
        workspace. Never wait on a lock another claim holds: skip that task. Raises only database errors.
        """

    @abc.abstractmethod
    async def announce(self, connection: AsyncConnection) -> None:
        """Within the caller's transaction, wake waiting schedulers once it commits (never before: a woken
        scheduler must find the work). Core calls it when a task is created, ends, or goes back to waiting."""

    @abc.abstractmethod
    async def wait_for_work(self, timeout: float) -> None:
        """Return when work may have arrived (an announcement since the previous call), or after ``timeout``
        seconds. A spurious wake-up costs one empty claim; a missed one, at most ``timeout``."""
