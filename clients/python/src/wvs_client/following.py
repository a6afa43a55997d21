"""Following a task to its end, for both clients: when a change is worth reporting, how long to pause."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from wvs_client.errors import WaitTimeout
from wvs_client.models import Task

FIRST_POLL = 0.05  # seconds; a quick task is seen ending at once
LONGEST_POLL = 1.0  # a task that takes minutes is read once a second


class TaskFollower:
    """Reads of one task, judged: ``observe(task)`` calls ``on_progress`` when status, attempt or error changed,
    and answers how many seconds to pause before the next read — None once the task is terminal. Raises
    ``WaitTimeout`` when ``timeout`` seconds have passed since the first read."""

    def __init__(self, task_id: str, timeout: float | None, on_progress: Callable[[Task], Any] | None) -> None:
        self.task_id = task_id
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.on_progress = on_progress
        self.interval = FIRST_POLL
        self._seen: tuple[Any, ...] | None = None

    def observe(self, task: Task) -> float | None:
        """The pause before the next read of ``task``, or None when it has ended."""
        state = (task.status, task.attempt, task.error)
        if state != self._seen:
            self._seen = state
            self.interval = FIRST_POLL
            if self.on_progress is not None:
                self.on_progress(task)
        if task.terminal:
            return None
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline:
            last = f"; its last attempt failed: {task.error}" if task.error else ""
            raise WaitTimeout(
                f"task {self.task_id} is still {task.status} (attempt {task.attempt}{last}); it goes on in WVS "
                f"(cancel it: POST /v1/tasks/{self.task_id}:cancel)",
                task,
            )
        pause = self.interval
        self.interval = min(self.interval * 2, LONGEST_POLL)
        return pause if self.deadline is None else min(pause, self.deadline - now)
