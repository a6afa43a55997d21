"""Following a task for ``wvsctl --wait`` and ``task watch``: live progress on stderr, and why each attempt failed.

On a terminal, a spinner shows the task's status, attempt and elapsed time; elsewhere (pipes, logs, tests) each
change is one plain line. Either way every failed attempt is printed as it is seen, with its error code, reason
and message, and when the next attempt comes. A task of an op that quiesces (``quiesces`` in ``GET /v1/ops``)
still RUNNING after FREEZE_NOTICE_AFTER seconds gets one line saying it may be waiting for the agent's freeze.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from wvs_client import Client, Task, TaskError

FREEZE_NOTICE_AFTER = 3.0  # seconds a quiescing task runs before wvsctl says it may wait for the agent's freeze
UNKNOWN_ROOT = "<workspace root>"


def hints(workspace_root: str) -> dict[str, str]:
    """What a failure reason means for the person waiting, when the reason alone does not say what to do."""
    return {
        "QUIESCE_TIMEOUT": "no agent answered the freeze request within executor.quiesce_timeout: run "
        f"`wvs agent {workspace_root}` where the agent runs (docs/operations.md, Giving an agent its workspace)",
    }


class TaskProgress:
    """The ``on_progress`` callback of ``Client.wait`` that shows a followed task; use it as a context manager
    (the spinner runs inside). ``quiet``: show nothing (``--json`` prints only the final task). ``quiesces``: the
    task's op may wait for the agent's freeze; ``workspace_root``: the task's workspace root, for the hints."""

    def __init__(self, quiet: bool, quiesces: bool = False, workspace_root: str = UNKNOWN_ROOT) -> None:
        self.quiet = quiet
        self.quiesces = quiesces
        self.workspace_root = workspace_root
        self._notice: threading.Timer | None = None
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal and not quiet
        self.started = time.monotonic()
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=self.console, transient=True
        )
        self._bar: TaskID | None = None
        self._introduced = False
        self._seen: tuple[str, int] | None = None
        self._failure: TaskError | None = None
        self._hinted: set[str] = set()

    def __enter__(self) -> TaskProgress:
        if self.live:
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._notice is not None:
            self._notice.cancel()
        if self.live:
            self._progress.stop()

    def __call__(self, task: Task) -> None:
        if self.quiet:
            return
        state = (task.status, task.attempt)
        if state != self._seen:
            self._seen = state
            self._show_state(task)
            self._time_freeze_notice(task)
        if task.error is not None and task.error != self._failure:
            self._failure = task.error
            self._show_failure(task, task.error)

    def _show_state(self, task: Task) -> None:
        if not self._introduced:
            self._introduced = True
            self._line(
                f"following task {task.task_id} ({task.op} on {task.wsid}); Ctrl-C stops following, not the task"
            )
        attempt = f"attempt {task.attempt}/{task.max_attempts or '?'}"
        if not self.live:
            self._line(f"{task.status:<9} {attempt}")
        elif self._bar is None:
            self._bar = self._progress.add_task(f"{task.op}  {task.status}  {attempt}", total=None)
        else:
            self._progress.update(self._bar, description=f"{task.op}  {task.status}  {attempt}")

    def _time_freeze_notice(self, task: Task) -> None:
        """Once per attempt of a quiescing op: a line FREEZE_NOTICE_AFTER seconds into RUNNING, unless it moved on."""
        if self._notice is not None:
            self._notice.cancel()
            self._notice = None
        if self.quiesces and task.status == "RUNNING":
            state = self._seen
            self._notice = threading.Timer(FREEZE_NOTICE_AFTER, self._show_freeze_notice, (task, state))
            self._notice.daemon = True
            self._notice.start()

    def _show_freeze_notice(self, task: Task, state: tuple[str, int] | None) -> None:
        if self._seen == state:
            self._line(
                f"  {task.op} waits for the agent of {task.wsid} to confirm the freeze (up to "
                f"executor.quiesce_timeout, EXECUTOR_QUIESCE_TIMEOUT): is `wvs agent {self.workspace_root}` running?"
            )

    def _show_failure(self, task: Task, error: TaskError) -> None:
        attempt = error.attempt if error.attempt is not None else task.attempt
        line = f"  attempt {attempt}/{task.max_attempts or '?'} failed: {error}"
        if task.status == "FAILED" and task.next_run_at is not None and task.ended_at is not None:
            line += f"; next attempt in {(task.next_run_at - task.ended_at).total_seconds():.1f}s"
        self._line(line)
        reason = error.reason or ""
        hint = hints(self.workspace_root).get(reason)
        if hint is not None and reason not in self._hinted:
            self._hinted.add(reason)
            self._line(f"  ({hint})")

    def _line(self, text: str) -> None:
        self.console.print(f"[{time.monotonic() - self.started:6.1f}s] {text}", markup=False)


def follow(api: Client, task_id: str, quiet: bool = False) -> Task:
    """Wait for task ``task_id`` to end (SUCCEEDED, DEAD or CANCELED), showing its progress unless ``quiet``;
    the final task. Ctrl-C stops following (exit 130) and says how to follow it again; the task goes on."""
    try:
        with _progress_of(api, task_id, quiet) as progress:
            return api.wait(task_id, on_progress=progress)
    except KeyboardInterrupt:
        click.echo(
            f"stopped following task {task_id}, which goes on; follow it with: wvsctl task watch {task_id}", err=True
        )
        raise SystemExit(130) from None


def _progress_of(api: Client, task_id: str, quiet: bool) -> TaskProgress:
    """The progress display for ``task_id``: told whether its op quiesces (``GET /v1/ops``) and, if so, where its
    workspace's root is (the workspace's ``root_path``)."""
    if quiet:
        return TaskProgress(quiet)
    task = api.get_task(task_id)
    quiesces = any(op.name == task.op and op.quiesces for op in api.list_ops())
    root = api.get_workspace(task.wsid).root_path if quiesces else None
    return TaskProgress(quiet, quiesces, root or UNKNOWN_ROOT)
