"""``Client``: the synchronous SDK. Each method sends the ``Call`` of the same name in ``wvs_client.calls`` (which
documents it); ``AsyncClient`` mirrors it method for method."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import httpx

from wvs_client import calls
from wvs_client.calls import Call
from wvs_client.following import TaskFollower
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
)
from wvs_client.transport import Connection, new_request_id, read_answer

T = TypeVar("T")
EVENTS_POLL = 1.0  # seconds between two reads of the event log once it has been read to its end


class Client:
    """The WVS API, synchronously.

    ``base_url``: else env ``WVS_API_URL``, else http://localhost:8080; ``token``: else env ``WVS_TOKEN``.
    ``timeout`` (seconds per request), ``retries`` and ``backoff``: see ``Connection``. Every method raises the
    ``WvsError`` subclass of the answer's ``WVS_…`` code, ``WvsUnreachable`` when no answer came. Use it as a
    context manager, or ``close()`` it.
    """

    def __init__(self, base_url: str | None = None, token: str | None = None, **settings: Any) -> None:
        self.connection = Connection.resolve(base_url, token, **settings)
        self._http = httpx.Client(
            base_url=self.connection.base_url, headers=self.connection.headers(), timeout=self.connection.timeout
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def send(self, call: Call[T]) -> T:
        """Send ``call``, retrying as ``Connection.delay`` says (the same Idempotency-Key and X-Request-Id each
        time); its result, bound to this client where it can be waited on."""
        request_id = new_request_id()
        attempt = 0
        while True:
            try:
                outcome: httpx.Response | Exception = self._http.send(
                    self.connection.request(self._http, call, request_id)
                )
            except httpx.TransportError as error:
                outcome = error
            pause = self.connection.delay(call, attempt, outcome)
            if pause is None:
                break
            time.sleep(pause)
            attempt += 1
        if isinstance(outcome, Exception):
            raise self.connection.unreachable(outcome) from outcome
        result = read_answer(call, outcome, request_id)
        if isinstance(result, Accepted | WorkspaceCreated):
            return attrs.evolve(result, waiter=self.wait)
        return result

    def pages(self, build: Callable[..., Call[Page[T]]], *args: Any, **kwargs: Any) -> Iterator[T]:
        """Every item of the list ``build`` (a ``calls`` function taking ``cursor``) reads, page after page."""
        cursor = None
        while True:
            page = self.send(build(*args, cursor=cursor, **kwargs))
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # --- tasks -------------------------------------------------------------------------------------------------

    def wait(
        self, task_id: str, timeout: float | None = None, on_progress: Callable[[Task], Any] | None = None
    ) -> Task:
        """Poll the task until SUCCEEDED, DEAD or CANCELED and return it. ``on_progress(task)`` is called on the
        first read and whenever status, attempt or the last attempt's error change. Raises ``WaitTimeout`` after
        ``timeout`` seconds (None: no limit)."""
        follower = TaskFollower(task_id, timeout, on_progress)
        while True:
            task = self.send(calls.get_task(task_id))
            pause = follower.observe(task)
            if pause is None:
                return task
            time.sleep(pause)

    def submit(self, wsid: str, op: str, /, *, idempotency_key: str | None = None, **params: Any) -> Accepted[Task]:
        """A task of any loaded op (see ``list_ops``) with ``params``."""
        return self.send(calls.submit(wsid, op, params, idempotency_key))

    def get_task(self, task_id: str) -> Task:
        return self.send(calls.get_task(task_id))

    def list_tasks(
        self,
        wsid: str | None = None,
        status: str | None = None,
        op: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Task]:
        return self.send(calls.list_tasks(wsid, status, op, cursor, limit))

    def iter_tasks(self, wsid: str | None = None, status: str | None = None, op: str | None = None) -> Iterator[Task]:
        """Every task (newest first) across pages."""
        return self.pages(calls.list_tasks, wsid, status, op)

    def cancel_task(self, task_id: str) -> CancelAnswer:
        return self.send(calls.cancel_task(task_id))

    def task_result(self, task_id: str, cursor: str | None = None, limit: int | None = None) -> Page[Any]:
        return self.send(calls.task_result(task_id, cursor, limit))

    def iter_task_result(self, task_id: str) -> Iterator[Any]:
        """Every item of a SUCCEEDED task's paged result (a diff's changes), in order."""
        return self.pages(calls.task_result, task_id)

    def list_ops(self) -> list[Op]:
        return self.send(calls.list_ops()).items

    # --- workspaces -----------------------------------------------------------------------------------------------

    def create_workspace(
        self,
        wsid: str,
        owner: str | None = None,
        init_op: str | None = None,
        init_params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> WorkspaceCreated[Task]:
        return self.send(calls.create_workspace(wsid, owner, init_op, init_params, idempotency_key))

    def get_workspace(self, wsid: str) -> Workspace:
        return self.send(calls.get_workspace(wsid))

    def list_workspaces(
        self, state: str | None = None, cursor: str | None = None, limit: int | None = None
    ) -> Page[Workspace]:
        return self.send(calls.list_workspaces(state, cursor, limit))

    def iter_workspaces(self, state: str | None = None) -> Iterator[Workspace]:
        """Every workspace (newest first) across pages."""
        return self.pages(calls.list_workspaces, state)

    def retry_init(self, wsid: str, idempotency_key: str | None = None) -> Accepted[Task]:
        return self.send(calls.retry_init(wsid, idempotency_key))

    def disable_workspace(self, wsid: str) -> Disabled:
        return self.send(calls.disable_workspace(wsid))

    # --- snapshots and current -----------------------------------------------------------------------------------

    def create_snapshot(
        self,
        wsid: str,
        message: str | None = None,
        labels: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Accepted[Task]:
        return self.send(calls.create_snapshot(wsid, message, labels, idempotency_key))

    def list_snapshots(
        self, wsid: str, labels: Mapping[str, str] | None = None, cursor: str | None = None, limit: int | None = None
    ) -> Page[Snapshot]:
        return self.send(calls.list_snapshots(wsid, labels, cursor, limit))

    def iter_snapshots(self, wsid: str, labels: Mapping[str, str] | None = None) -> Iterator[Snapshot]:
        """Every live snapshot of the workspace (newest first) across pages."""
        return self.pages(calls.list_snapshots, wsid, labels)

    def drop_snapshot(self, wsid: str, snapshot_id: str, idempotency_key: str | None = None) -> Accepted[Task]:
        return self.send(calls.drop_snapshot(wsid, snapshot_id, idempotency_key))

    def fork_snapshot(
        self, wsid: str, snapshot_id: str, new_wsid: str, owner: str | None = None, idempotency_key: str | None = None
    ) -> WorkspaceCreated[Task]:
        return self.send(calls.fork_snapshot(wsid, snapshot_id, new_wsid, owner, idempotency_key))

    def diff_snapshot(
        self, wsid: str, snapshot_id: str, against: str = "current", idempotency_key: str | None = None
    ) -> Accepted[Task]:
        return self.send(calls.diff_snapshot(wsid, snapshot_id, against, idempotency_key))

    def get_current(self, wsid: str) -> Current:
        return self.send(calls.get_current(wsid))

    def set_current(self, wsid: str, snapshot_id: str, idempotency_key: str | None = None) -> Accepted[Task]:
        return self.send(calls.set_current(wsid, snapshot_id, idempotency_key))

    def restore_paths(
        self, wsid: str, snapshot_id: str, paths: Sequence[str], idempotency_key: str | None = None
    ) -> Accepted[Task]:
        return self.send(calls.restore_paths(wsid, snapshot_id, paths, idempotency_key))

    # --- retention, audit, events, health ---------------------------------------------------------------------

    def get_retention(self, wsid: str) -> Retention:
        return self.send(calls.get_retention(wsid))

    def set_retention(self, wsid: str, policy: Mapping[str, Any] | None = None) -> Retention:
        return self.send(calls.set_retention(wsid, policy))

    def plan_retention(self, wsid: str) -> RetentionPlan:
        return self.send(calls.plan_retention(wsid))

    def list_audit(self, wsid: str, cursor: str | None = None, limit: int | None = None) -> Page[AuditEvent]:
        return self.send(calls.list_audit(wsid, cursor, limit))

    def iter_audit(self, wsid: str) -> Iterator[AuditEvent]:
        """The workspace's whole audit trail (newest first) across pages."""
        return self.pages(calls.list_audit, wsid)

    def list_events(
        self, wsid: str | None = None, after: int | None = None, cursor: str | None = None, limit: int | None = None
    ) -> Page[Event]:
        return self.send(calls.list_events(wsid, after, cursor, limit))

    def events(
        self, wsid: str | None = None, after: int | None = None, follow: bool = True, poll_interval: float = EVENTS_POLL
    ) -> Iterator[Event]:
        """The event log, oldest first, after the event id ``after`` (None: from the start). With ``follow`` it
        never ends: at the log's end it reads again every ``poll_interval`` seconds (a tail)."""
        while True:
            page = self.send(calls.list_events(wsid, after, limit=100))
            yield from page.items
            if page.items:
                after = page.items[-1].event_id
            if page.next_cursor is None:
                if not follow:
                    return
                time.sleep(poll_interval)

    def health(self) -> Any:
        return self.send(calls.health())

    def ready(self) -> Any:
        return self.send(calls.ready())

    def metrics(self) -> str:
        return self.send(calls.metrics())

    def openapi(self) -> str:
        return self.send(calls.openapi())
