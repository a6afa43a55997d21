"""``AsyncClient``: the asynchronous SDK, ``Client`` method for method (``wvs_client.client`` documents both)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import httpx

from wvs_client import calls
from wvs_client.calls import Call
from wvs_client.client import EVENTS_POLL
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


class AsyncClient:
    """The WVS API, asynchronously: ``Client``'s methods as coroutines, its iterators as async iterators.

    ``base_url``: else env ``WVS_API_URL``, else http://localhost:8080; ``token``: else env ``WVS_TOKEN``.
    ``timeout`` (seconds per request), ``retries`` and ``backoff``: see ``Connection``. Every method raises the
    ``WvsError`` subclass of the answer's ``WVS_…`` code, ``WvsUnreachable`` when no answer came. Use it as a
    async context manager, or ``await close()`` it.
    """

    def __init__(self, base_url: str | None = None, token: str | None = None, **settings: Any) -> None:
        self.connection = Connection.resolve(base_url, token, **settings)
        self._http = httpx.AsyncClient(
            base_url=self.connection.base_url, headers=self.connection.headers(), timeout=self.connection.timeout
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def send(self, call: Call[T]) -> T:
        """Send ``call``, retrying as ``Connection.delay`` says (the same Idempotency-Key and X-Request-Id each
        time); its result, bound to this client where it can be waited on."""
        request_id = new_request_id()
        attempt = 0
        while True:
            try:
                outcome: httpx.Response | Exception = await self._http.send(
                    self.connection.request(self._http, call, request_id)
                )
            except httpx.TransportError as error:
                outcome = error
            pause = self.connection.delay(call, attempt, outcome)
            if pause is None:
                break
            await asyncio.sleep(pause)
            attempt += 1
        if isinstance(outcome, Exception):
            raise self.connection.unreachable(outcome) from outcome
        result = read_answer(call, outcome, request_id)
        if isinstance(result, Accepted | WorkspaceCreated):
            return attrs.evolve(result, waiter=self.wait)
        return result

    async def pages(self, build: Callable[..., Call[Page[T]]], *args: Any, **kwargs: Any) -> AsyncIterator[T]:
        """Every item of the list ``build`` (a ``calls`` function taking ``cursor``) reads, page after page."""
        cursor = None
        while True:
            page = await self.send(build(*args, cursor=cursor, **kwargs))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # --- tasks -------------------------------------------------------------------------------------------------

    async def wait(
        self, task_id: str, timeout: float | None = None, on_progress: Callable[[Task], Any] | None = None
    ) -> Task:
        """Poll the task until SUCCEEDED, DEAD or CANCELED and return it. ``on_progress(task)`` is called on the
        first read and whenever status, attempt or the last attempt's error change. Raises ``WaitTimeout`` after
        ``timeout`` seconds (None: no limit)."""
        follower = TaskFollower(task_id, timeout, on_progress)
        while True:
            task = await self.send(calls.get_task(task_id))
            pause = follower.observe(task)
            if pause is None:
                return task
            await asyncio.sleep(pause)

    async def submit(
        self, wsid: str, op: str, /, *, idempotency_key: str | None = None, **params: Any
    ) -> Accepted[Awaitable[Task]]:
        """A task of any loaded op (see ``list_ops``) with ``params``."""
        return await self.send(calls.submit(wsid, op, params, idempotency_key))

    async def get_task(self, task_id: str) -> Task:
        return await self.send(calls.get_task(task_id))

    async def list_tasks(
        self,
        wsid: str | None = None,
        status: str | None = None,
        op: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Task]:
        return await self.send(calls.list_tasks(wsid, status, op, cursor, limit))

    def iter_tasks(
        self, wsid: str | None = None, status: str | None = None, op: str | None = None
    ) -> AsyncIterator[Task]:
        """Every task (newest first) across pages."""
        return self.pages(calls.list_tasks, wsid, status, op)

    async def cancel_task(self, task_id: str) -> CancelAnswer:
        return await self.send(calls.cancel_task(task_id))

    async def task_result(self, task_id: str, cursor: str | None = None, limit: int | None = None) -> Page[Any]:
        return await self.send(calls.task_result(task_id, cursor, limit))

    def iter_task_result(self, task_id: str) -> AsyncIterator[Any]:
        """Every item of a SUCCEEDED task's paged result (a diff's changes), in order."""
        return self.pages(calls.task_result, task_id)

    async def list_ops(self) -> list[Op]:
        return (await self.send(calls.list_ops())).items

    # --- workspaces -----------------------------------------------------------------------------------------------

    async def create_workspace(
        self,
        wsid: str,
        owner: str | None = None,
        init_op: str | None = None,
        init_params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> WorkspaceCreated[Awaitable[Task]]:
        return await self.send(calls.create_workspace(wsid, owner, init_op, init_params, idempotency_key))

    async def get_workspace(self, wsid: str) -> Workspace:
        return await self.send(calls.get_workspace(wsid))

    async def list_workspaces(
        self, state: str | None = None, cursor: str | None = None, limit: int | None = None
    ) -> Page[Workspace]:
        return await self.send(calls.list_workspaces(state, cursor, limit))

    def iter_workspaces(self, state: str | None = None) -> AsyncIterator[Workspace]:
        """Every workspace (newest first) across pages."""
        return self.pages(calls.list_workspaces, state)

    async def retry_init(self, wsid: str, idempotency_key: str | None = None) -> Accepted[Awaitable[Task]]:
        return await self.send(calls.retry_init(wsid, idempotency_key))

    async def disable_workspace(self, wsid: str) -> Disabled:
        return await self.send(calls.disable_workspace(wsid))

    # --- snapshots and current -----------------------------------------------------------------------------------

    async def create_snapshot(
        self,
        wsid: str,
        message: str | None = None,
        labels: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Accepted[Awaitable[Task]]:
        return await self.send(calls.create_snapshot(wsid, message, labels, idempotency_key))

    async def list_snapshots(
        self, wsid: str, labels: Mapping[str, str] | None = None, cursor: str | None = None, limit: int | None = None
    ) -> Page[Snapshot]:
        return await self.send(calls.list_snapshots(wsid, labels, cursor, limit))

    def iter_snapshots(self, wsid: str, labels: Mapping[str, str] | None = None) -> AsyncIterator[Snapshot]:
        """Every live snapshot of the workspace (newest first) across pages."""
        return self.pages(calls.list_snapshots, wsid, labels)

    async def drop_snapshot(
        self, wsid: str, snapshot_id: str, idempotency_key: str | None = None
    ) -> Accepted[Awaitable[Task]]:
        return await self.send(calls.drop_snapshot(wsid, snapshot_id, idempotency_key))

    async def fork_snapshot(
        self, wsid: str, snapshot_id: str, new_wsid: str, owner: str | None = None, idempotency_key: str | None = None
    ) -> WorkspaceCreated[Awaitable[Task]]:
        return await self.send(calls.fork_snapshot(wsid, snapshot_id, new_wsid, owner, idempotency_key))

    async def diff_snapshot(
        self, wsid: str, snapshot_id: str, against: str = "current", idempotency_key: str | None = None
    ) -> Accepted[Awaitable[Task]]:
        return await self.send(calls.diff_snapshot(wsid, snapshot_id, against, idempotency_key))

    async def get_current(self, wsid: str) -> Current:
        return await self.send(calls.get_current(wsid))

    async def set_current(
        self, wsid: str, snapshot_id: str, idempotency_key: str | None = None
    ) -> Accepted[Awaitable[Task]]:
        return await self.send(calls.set_current(wsid, snapshot_id, idempotency_key))

    async def restore_paths(
        self, wsid: str, snapshot_id: str, paths: Sequence[str], idempotency_key: str | None = None
    ) -> Accepted[Awaitable[Task]]:
        return await self.send(calls.restore_paths(wsid, snapshot_id, paths, idempotency_key))

    # --- retention, audit, events, health ---------------------------------------------------------------------

    async def get_retention(self, wsid: str) -> Retention:
        return await self.send(calls.get_retention(wsid))

    async def set_retention(self, wsid: str, policy: Mapping[str, Any] | None = None) -> Retention:
        return await self.send(calls.set_retention(wsid, policy))

    async def plan_retention(self, wsid: str) -> RetentionPlan:
        return await self.send(calls.plan_retention(wsid))

    async def list_audit(self, wsid: str, cursor: str | None = None, limit: int | None = None) -> Page[AuditEvent]:
        return await self.send(calls.list_audit(wsid, cursor, limit))

    def iter_audit(self, wsid: str) -> AsyncIterator[AuditEvent]:
        """The workspace's whole audit trail (newest first) across pages."""
        return self.pages(calls.list_audit, wsid)

    async def list_events(
        self, wsid: str | None = None, after: int | None = None, cursor: str | None = None, limit: int | None = None
    ) -> Page[Event]:
        return await self.send(calls.list_events(wsid, after, cursor, limit))

    async def events(
        self, wsid: str | None = None, after: int | None = None, follow: bool = True, poll_interval: float = EVENTS_POLL
    ) -> AsyncIterator[Event]:
        """The event log, oldest first, after the event id ``after`` (None: from the start). With ``follow`` it
        never ends: at the log's end it reads again every ``poll_interval`` seconds (a tail)."""
        while True:
            page = await self.send(calls.list_events(wsid, after, limit=100))
            for item in page.items:
                yield item
            if page.items:
                after = page.items[-1].event_id
            if page.next_cursor is None:
                if not follow:
                    return
                await asyncio.sleep(poll_interval)

    async def health(self) -> Any:
        return await self.send(calls.health())

    async def ready(self) -> Any:
        return await self.send(calls.ready())

    async def metrics(self) -> str:
        return await self.send(calls.metrics())

    async def openapi(self) -> str:
        return await self.send(calls.openapi())
