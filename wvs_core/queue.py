"""The queue interface: which tasks a claim takes, and waking the schedulers that wait for them.

Core owns the ``wvs.tasks`` table: its schema, its migrations and every statement that writes or lists it
(``wvs_core.db.tasks``). A queue plugin decides two things only — which runnable rows a claim takes, and how a
waiting scheduler learns that there may be work (docs/architecture.md, "Who owns the task table").
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # the executor loads this module and must not load the database layer
    from sqlalchemy import TextClause
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class TaskQueue(abc.ABC):
    """Picks the tasks a scheduler runs next, and wakes schedulers when there may be some.

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
    def choice(self) -> TextClause:
        """The SQL that picks up to ``:limit`` (>= 1; its only parameter) tasks to run next: a ``SELECT`` of
        their ``task_id``s.

        Core runs it as the first step of the one statement that claims them (``WITH picked AS (<choice>)
        SELECT … FROM wvs.tasks … FOR UPDATE``, ``wvs_core.db.tasks.claim``), so picking costs no round trip of
        its own; ``:limit`` is written into that SQL as a literal (one plan kept per limit).
        Each task must be runnable (PENDING, or FAILED whose ``next_run_at`` has come), the oldest unfinished
        task of its workspace by ``(created_at, task_id)``, in a workspace with no RUNNING task — at most one
        task per workspace. Core keeps each workspace's oldest unfinished task on its row
        (``wvs.workspaces.head_task_id``, ``head_created_at``, and ``head_run_at``: NULL while that task runs),
        so a choice can read heads instead of backlogs. Until the transaction ends, no other claim may pick
        these tasks or another task of their workspaces (lock them); the same transaction marks them RUNNING,
        and from then on a RUNNING status holds its workspace. Never wait on a lock someone else holds — skip
        that workspace (a submit or a task's end holds its row for a moment). Built once: core caches the
        claiming statement by its text. Tell the time with ``clock_timestamp()``, never ``now()``: the claiming
        transaction may have begun up to ``worker.poll_interval`` earlier (``wvs_core.db.driver``).
        """

    @abc.abstractmethod
    def announcement(self) -> TextClause:
        """The SQL that wakes waiting schedulers once the transaction running it commits (never before: a woken
        scheduler must find the work): a ``SELECT`` whose parameters are bound (``bindparams``), typically of
        ``pg_notify``. Core runs it when a task is created, ends, or goes back to waiting — on its own
        (``announce``), or written into a larger statement as a subquery (the accepting statement,
        ``wvs_core.db.accept``). Built once."""

    async def announce(self, connection: AsyncConnection) -> None:
        """Run ``announcement`` in the caller's transaction."""
        await connection.execute(self.announcement())

    @abc.abstractmethod
    async def wait_for_work(self, timeout: float) -> None:
        """Return when work may have arrived (an announcement since the previous call), or after ``timeout``
        seconds. A spurious wake-up costs one empty claim; a missed one, at most ``timeout``."""
