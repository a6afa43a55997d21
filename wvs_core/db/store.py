"""The control plane's database operations: workspaces, tasks, snapshots, with idempotency and audit.

Every operation takes the caller's ``Scope`` and applies it in SQL: a workspace outside it, with its tasks,
snapshots and audit rows, is absent from lists and answers WVS_NOT_FOUND exactly like a missing one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wvs_core import metrics
from wvs_core.db import tasks as task_table
from wvs_core.db.accept import Acceptor, TaskRequest
from wvs_core.db.events import list_events, record
from wvs_core.db.lockwait import Turns, retrying
from wvs_core.db.outcomes import Recorded, TaskRecorder
from wvs_core.db.pagination import keyset_page, split_page
from wvs_core.db.retention import set_own_policy
from wvs_core.db.rows import from_row
from wvs_core.db.tables import audit, snapshots, tasks, workspaces
from wvs_core.db.transaction import SnapshotReferences, snapshot_users
from wvs_core.errors import ErrorCode, WVSError
from wvs_core.events import AuditOnly, DeliveryState, Event, EventType, NewEvent, workspace_event_type
from wvs_core.models import AuditEvent, Page, Snapshot, Task, TaskStatus, Workspace, WorkspaceState, WorkspaceUsage
from wvs_core.queue import TaskQueue
from wvs_core.retention import RetentionPolicy
from wvs_core.scope import Scope

INIT_OP = "init_workspace"

T = TypeVar("T")

WorkspaceCheck = Callable[[AsyncConnection, Workspace], Awaitable[None]]
"""An endpoint's own precondition, run under the workspace lock before the task is created."""

SourceCheck = Callable[[AsyncConnection], Awaitable[None]]
"""A new workspace's precondition on another workspace (``require_source_snapshots``), run before its first
task is created, in the same transaction."""


@attrs.frozen
class Submission:
    """Who asked for a write, and the idempotency facts of the request."""

    idempotency_key: str
    request_hash: str
    request_id: str
    actor: dict[str, Any]


@attrs.frozen
class TaskSpec:
    """A task to create: its op, params and limits."""

    op: str
    params: dict[str, Any]
    max_attempts: int
    timeout_seconds: int


@attrs.frozen
class Accepted:
    """The task a write created, or the original task of an idempotent replay (``created`` False)."""

    task: Task
    created: bool


class Store:
    """Database operations of the API. Every write is one transaction with its audit rows."""

    def __init__(self, engine: AsyncEngine, queue: TaskQueue, stopping: asyncio.Event | None = None) -> None:
        """``stopping``: set when the service begins to stop; requests waiting for a row another transaction
        holds then answer at once (``db/lockwait.py``)."""
        self.engine = engine
        # Single statements (every read, and the one-statement accept) need no BEGIN and COMMIT round trips.
        self.autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.queue = queue
        self._stopping = stopping or asyncio.Event()
        self._turns = Turns(self._stopping)
        self.acceptor = Acceptor(self.autocommit, queue.announcement(), self._turns, self._stopping)

    async def close(self) -> None:
        """Finish the accepting statements in flight; the engine stays the caller's."""
        await self.acceptor.close()

    async def ping(self) -> None:
        """Raise when the database does not answer."""
        async with self.autocommit.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # --- workspaces ---------------------------------------------------------------------------

    async def create_workspace(
        self,
        wsid: str,
        owner: str,
        root_path: str,
        spec: TaskSpec,
        submission: Submission,
        check: SourceCheck | None = None,
        *,
        scope: Scope,
    ) -> Accepted:
        """Create the workspace row and its first task (``spec``, an initializer's: ``TaskOp.initializes_workspace``),
        or replay/refuse per the idempotency rules; ``check`` (``require_source_snapshots``) runs in the same
        transaction before the task is inserted.

        A taken wsid is 409 WVS_CONFLICT_EXISTS — and only that when its workspace is outside ``scope``
        (no replay, no idempotency mismatch): a wsid is a global name, so "taken" is all that leaks.
        """

        async def created(conn: AsyncConnection) -> Accepted:
            inserted = await conn.execute(
                pg_insert(workspaces)
                .values(wsid=wsid, owner=owner, root_path=root_path)
                .on_conflict_do_nothing()  # wsid or root_path: both say "exists"
                .returning(workspaces.c.wsid)
            )
            if inserted.first() is None:
                visible = await conn.execute(
                    sa.select(workspaces.c.wsid).where(workspaces.c.wsid == wsid, _visible(scope))
                )
                replay = await self._replay(conn, wsid, spec.op, submission) if visible.first() else None
                if replay is None:
                    raise WVSError(ErrorCode.CONFLICT_EXISTS, f"workspace {wsid!r} already exists")
                return replay
            await record(
                conn,
                NewEvent(
                    type=EventType.WORKSPACE_CREATED,
                    wsid=wsid,
                    request_id=submission.request_id,
                    actor=submission.actor,
                    data={"after": {"state": WorkspaceState.PROVISIONING, "owner": owner}},
                ),
            )
            if check is not None:
                await check(conn)
            task = await self._insert_task(conn, wsid, spec, submission)
            return Accepted(task, created=True)

        return await self._transaction(
            f"workspace {wsid!r}" if check is None else f"workspace {wsid!r} or its source", created
        )

    async def get_workspace(self, wsid: str, *, scope: Scope) -> Workspace:
        """The workspace, or WVS_NOT_FOUND."""
        async with self.autocommit.connect() as conn:
            row = (await conn.execute(*_workspace_query(wsid, scope))).first()
        if row is None:
            raise WVSError(ErrorCode.NOT_FOUND, f"workspace {wsid!r} not found")
        return from_row(row, Workspace)

    async def workspace_usage(self, wsid: str) -> WorkspaceUsage:
        """What the workspace's live snapshots hold together. One aggregate over the workspace's live snapshots
        (the partial index ``ix_snapshots_live_by_workspace`` finds them): its cost grows with the live
        snapshots of that workspace, which retention bounds, never with the table."""

        def total(column: sa.Column[int]) -> sa.ColumnElement[int]:
            return sa.cast(sa.func.sum(column), sa.BigInteger)  # SUM(bigint) is numeric

        live = sa.select(sa.func.count(), total(snapshots.c.entries), total(snapshots.c.bytes)).where(
            snapshots.c.wsid == wsid, snapshots.c.deleted_at.is_(None)
        )
        async with self.autocommit.connect() as conn:
            count, entries, size = (await conn.execute(live)).one()
        return WorkspaceUsage(snapshots=count, entries=entries, bytes=size)

    async def list_workspaces(self, cursor: str | None, limit: int, state: str | None = None, *, scope: Scope) -> Page:
        """Workspaces, newest first."""
        query = workspaces.select().where(_visible(scope))
        if state:
            query = query.where(workspaces.c.state == state)
        query = keyset_page(query, workspaces.c.created_at, workspaces.c.wsid, cursor, limit)
        async with self.autocommit.connect() as conn:
            rows = [from_row(row, Workspace) for row in await conn.execute(query)]
        items, next_cursor = split_page(rows, limit, "created_at", "wsid")
        return Page(items, next_cursor)

    # --- tasks --------------------------------------------------------------------------------

    async def submit_task(
        self, wsid: str, spec: TaskSpec, submission: Submission, check: WorkspaceCheck | None = None, *, scope: Scope
    ) -> Accepted:
        """Create a task on an ACTIVE workspace, or replay/refuse per the idempotency rules.

        The workspace row is locked for the transaction, so tasks of one workspace are created (and
        committed) one after the other: creation order is the order schedulers see them in. Without a
        ``check`` it takes part of one statement, a transaction of its own, with the other requests accepted
        meanwhile (``db/accept.py``).
        """
        if check is None:
            return await self._accept(wsid, spec, submission, scope)

        async def checked(conn: AsyncConnection) -> Accepted:
            workspace = await self._lock_workspace(conn, wsid, scope)
            replay = await self._replay(conn, wsid, spec.op, submission)
            if replay is not None:
                return replay
            _require_state(workspace.wsid, workspace.state, WorkspaceState.ACTIVE)
            await check(conn, workspace)
            task = await self._insert_task(conn, wsid, spec, submission)
            return Accepted(task, created=True)

        return await self._transaction(f"workspace {wsid!r}", checked)

    async def set_retention_policy(
        self, wsid: str, policy: RetentionPolicy | None, actor: dict[str, Any], request_id: str, *, scope: Scope
    ) -> None:
        """Store (None: clear) the workspace's own retention policy; WVS_NOT_FOUND without the workspace,
        WVS_GONE when it is DISABLED."""

        async def stored(conn: AsyncConnection) -> None:
            workspace = await self._lock_workspace(conn, wsid, scope)
            if workspace.state == WorkspaceState.DISABLED:
                raise WVSError(ErrorCode.GONE, f"workspace {wsid!r} is disabled")
            await set_own_policy(conn, wsid, policy, actor, request_id)

        await self._transaction(f"workspace {wsid!r}", stored)

    async def last_initializer(self, wsid: str, ops: Collection[str], *, scope: Scope) -> Task | None:
        """The newest task of ``wsid`` of one of the initializer ``ops`` (what made, or failed to make, its
        first live tree); None when it has none. WVS_NOT_FOUND without the workspace."""
        await self.get_workspace(wsid, scope=scope)
        async with self.autocommit.connect() as conn:
            return await task_table.newest_of(conn, wsid, ops)

    async def retry_init(
        self, wsid: str, spec: TaskSpec, submission: Submission, check: SourceCheck | None = None, *, scope: Scope
    ) -> Accepted:
        """INIT_FAILED → PROVISIONING with a new initializer task (``spec``: the one that failed, repeated with
        fresh server-chosen params); ``check`` runs in the same transaction before the task is inserted."""

        async def retried(conn: AsyncConnection) -> Accepted:
            workspace = await self._lock_workspace(conn, wsid, scope)
            replay = await self._replay(conn, wsid, spec.op, submission)
            if replay is not None:
                return replay
            _require_state(workspace.wsid, workspace.state, WorkspaceState.INIT_FAILED)
            await self._set_state(conn, workspace, WorkspaceState.PROVISIONING, submission.request_id, submission.actor)
            if check is not None:
                await check(conn)
            task = await self._insert_task(conn, wsid, spec, submission)
            return Accepted(task, created=True)

        return await self._transaction(f"workspace {wsid!r}", retried)

    async def disable(self, wsid: str, request_id: str, actor: dict[str, Any], *, scope: Scope) -> Workspace:
        """Make the workspace read-only for good; refused while it has unfinished tasks; repeatable."""

        async def disabled(conn: AsyncConnection) -> Workspace:
            workspace = await self._lock_workspace(conn, wsid, scope)
            if workspace.state == WorkspaceState.DISABLED:
                return workspace
            busy = await task_table.first_unfinished(conn, wsid)
            if busy is not None:
                raise WVSError(ErrorCode.CONFLICT_LOCKED, f"workspace {wsid!r} has unfinished tasks (e.g. {busy})")
            return await self._set_state(conn, workspace, WorkspaceState.DISABLED, request_id, actor)

        return await self._transaction(f"workspace {wsid!r}", disabled)

    async def cancel_task(
        self, task_id: str, request_id: str, actor: dict[str, Any], recorder: TaskRecorder, *, scope: Scope
    ) -> Task:
        """PENDING (or FAILED awaiting retry) → CANCELED now, recorded with the op's ``on_canceled`` rule;
        RUNNING → ``cancel_requested`` (its scheduler records how it ends); else 409."""

        async def canceled(conn: AsyncConnection) -> tuple[Task, Recorded | None]:
            visible = _in_visible_workspace(tasks.c.wsid, scope)
            task = await task_table.get(conn, task_id, visible)
            if task is None:
                raise WVSError(ErrorCode.NOT_FOUND, f"task {task_id!r} not found")
            # The workspace's row first, as every writer of its tasks takes it (its event needs it too), then
            # the task's row, each NOWAIT: a request never waits holding a connection (db/lockwait.py).
            await self._lock_workspace(conn, task.wsid, scope)
            task = await task_table.get(conn, task_id, visible, lock=True)
            if task is None:
                raise WVSError(ErrorCode.NOT_FOUND, f"task {task_id!r} not found")
            if task.status.is_terminal:
                raise WVSError(ErrorCode.CONFLICT_LOCKED, f"task {task_id} already ended {task.status}")
            updated = await task_table.cancel(conn, task)
            # The request's id, not the task's: these rows record who canceled.
            if updated.status == TaskStatus.CANCELED:
                recorded = await recorder.ended(conn, updated, task.status, actor, request_id=request_id)
                await self.queue.announce(conn)  # the workspace's next task may start
                return updated, recorded
            after = {"status": updated.status, "cancel_requested": True}
            data = {"before": {"status": task.status}, "after": after}
            event = NewEvent.of_task(AuditOnly.CANCEL_REQUESTED, updated, actor, data)
            await record(conn, attrs.evolve(event, request_id=request_id))
            return updated, None

        updated, recorded = await self._transaction(f"task {task_id!r}", canceled)
        if recorded is not None:
            recorded.count()
        return updated

    async def get_task(self, task_id: str, *, scope: Scope) -> Task:
        """The task, or WVS_NOT_FOUND."""
        async with self.autocommit.connect() as conn:
            task = await task_table.get(conn, task_id, _in_visible_workspace(tasks.c.wsid, scope))
        if task is None:
            raise WVSError(ErrorCode.NOT_FOUND, f"task {task_id!r} not found")
        return task

    async def list_tasks(
        self, cursor: str | None, limit: int, wsid: str | None, status: str | None, op: str | None, *, scope: Scope
    ) -> Page:
        """Tasks, newest first, optionally filtered; WVS_NOT_FOUND when ``wsid`` names no workspace ``scope`` sees."""
        if wsid is not None:
            await self.get_workspace(wsid, scope=scope)
        visible = _in_visible_workspace(tasks.c.wsid, scope)
        async with self.autocommit.connect() as conn:
            rows = await task_table.newest(conn, visible, cursor, limit, wsid=wsid, status=status, op=op)
        items, next_cursor = split_page(rows, limit, "created_at", "task_id")
        return Page(items, next_cursor)

    # --- snapshots ----------------------------------------------------------------------------

    async def list_snapshots(
        self, wsid: str, cursor: str | None, limit: int, labels: Mapping[str, str] | None = None, *, scope: Scope
    ) -> Page:
        """Live (not deleted) snapshots of a workspace, newest first, those carrying every one of ``labels``
        when given; WVS_NOT_FOUND without the workspace.

        The label filter (``labels @> :labels``) is checked on the rows of the live-snapshots index walk, in
        the list's order: a page costs the rows walked until it is full — a few pages when the labels are
        common, up to every live snapshot of the workspace when none matches (a GIN index would find rare
        labels at once but would have to gather and sort all of them, whatever the page size)."""
        await self.get_workspace(wsid, scope=scope)
        query = snapshots.select().where(snapshots.c.wsid == wsid, snapshots.c.deleted_at.is_(None))
        if labels:
            query = query.where(snapshots.c.labels.contains(dict(labels)))
        query = keyset_page(query, snapshots.c.created_at, snapshots.c.snapshot_id, cursor, limit)
        async with self.autocommit.connect() as conn:
            rows = [from_row(row, Snapshot) for row in await conn.execute(query)]
        items, next_cursor = split_page(rows, limit, "created_at", "snapshot_id")
        return Page(items, next_cursor)

    async def list_audit(self, wsid: str, cursor: str | None, limit: int, *, scope: Scope) -> Page:
        """Audit events of a workspace, newest first; WVS_NOT_FOUND without the workspace."""
        await self.get_workspace(wsid, scope=scope)
        query = keyset_page(audit.select().where(audit.c.wsid == wsid), audit.c.ts, audit.c.event_id, cursor, limit)
        async with self.autocommit.connect() as conn:
            rows = [from_row(row, AuditEvent) for row in await conn.execute(query)]
        items, next_cursor = split_page(rows, limit, "ts", "event_id")
        return Page(items, next_cursor)

    async def list_events(
        self, wsid: str | None, after: int, limit: int, *, scope: Scope
    ) -> list[tuple[Event, list[DeliveryState]]]:
        """Events after ``after``, oldest first, with their delivery states (see ``db.events.list_events``);
        WVS_NOT_FOUND when ``wsid`` names no workspace ``scope`` sees."""
        if wsid is not None:
            await self.get_workspace(wsid, scope=scope)
        async with self.autocommit.connect() as conn:
            return await list_events(conn, wsid, after, limit, scope)

    # --- helpers ------------------------------------------------------------------------------

    async def _transaction(self, what: str, body: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``body`` in a transaction, tried again in a new one — after a pause holding no connection — while it
        meets a row another transaction holds (``db/lockwait.py``); 409 WVS_CONFLICT_LOCKED, naming ``what``,
        after ``LOCK_PATIENCE``. The requests of this process for the same ``what`` take turns."""

        async def attempt() -> T:
            async with self.engine.begin() as conn:
                return await body(conn)

        async with self._turns.turn(what) as patience:
            return await retrying(attempt, what, patience, self._stopping)

    async def _lock_workspace(self, conn: AsyncConnection, wsid: str, scope: Scope) -> Workspace:
        """The workspace's row, held until the transaction ends; NOWAIT: a row held elsewhere raises at once
        (``_transaction`` tries again)."""
        query, params = _workspace_query(wsid, scope)
        row = (await conn.execute(query.with_for_update(nowait=True), params)).first()
        if row is None:
            raise WVSError(ErrorCode.NOT_FOUND, f"workspace {wsid!r} not found")
        return from_row(row, Workspace)

    async def _set_state(
        self, conn: AsyncConnection, workspace: Workspace, state: WorkspaceState, request_id: str, actor: dict[str, Any]
    ) -> Workspace:
        row = (
            await conn.execute(
                workspaces.update()
                .where(workspaces.c.wsid == workspace.wsid)
                .values(state=state, updated_at=sa.func.clock_timestamp())
                .returning(*workspaces.c)
            )
        ).one()
        await record(
            conn,
            NewEvent(
                type=workspace_event_type(state),
                wsid=workspace.wsid,
                request_id=request_id,
                actor=actor,
                data={"before": {"state": workspace.state}, "after": {"state": state}},
            ),
        )
        metrics.WORKSPACE_TRANSITIONS.labels(workspace.state, state).inc()
        return from_row(row, Workspace)

    async def _accept(self, wsid: str, spec: TaskSpec, submission: Submission, scope: Scope) -> Accepted:
        acceptance = await self.acceptor.accept(
            TaskRequest(
                wsid,
                spec.op,
                spec.params,
                max_attempts=spec.max_attempts,
                timeout_seconds=spec.timeout_seconds,
                idempotency_key=submission.idempotency_key,
                request_hash=submission.request_hash,
                request_id=submission.request_id,
                actor=submission.actor,
                owners=None if scope.owners is None else tuple(sorted(scope.owners)),
            )
        )
        if acceptance.workspace_state is None:
            raise WVSError(ErrorCode.NOT_FOUND, f"workspace {wsid!r} not found")
        if acceptance.task is None:
            _require_state(wsid, acceptance.workspace_state, WorkspaceState.ACTIVE)
            # ACTIVE, yet nothing inserted: an identical request committed first.
            async with self.autocommit.connect() as conn:
                replay = await self._replay(conn, wsid, spec.op, submission)
            if replay is None:
                raise RuntimeError(f"no task of {wsid!r} holds the Idempotency-Key its insert conflicted on")
            return replay
        if not acceptance.created:
            return _replayed(acceptance.task, submission)
        return Accepted(acceptance.task, created=True)

    async def _replay(self, conn: AsyncConnection, wsid: str, op: str, submission: Submission) -> Accepted | None:
        task = await task_table.find_by_key(conn, wsid, op, submission.idempotency_key)
        return None if task is None else _replayed(task, submission)

    async def _insert_task(self, conn: AsyncConnection, wsid: str, spec: TaskSpec, submission: Submission) -> Task:
        task = await task_table.insert(
            conn,
            wsid,
            spec.op,
            spec.params,
            max_attempts=spec.max_attempts,
            timeout_seconds=spec.timeout_seconds,
            idempotency_key=submission.idempotency_key,
            request_hash=submission.request_hash,
            request_id=submission.request_id,
            actor=submission.actor,
        )
        data = {"after": {"status": TaskStatus.PENDING, "params": spec.params}}
        await record(conn, NewEvent.of_task(EventType.TASK_CREATED, task, submission.actor, data))
        await self.queue.announce(conn)
        return task


# A workspace by its wsid, for everyone and for a token's owners; built once (a request only binds values).
_WORKSPACE = workspaces.select().where(workspaces.c.wsid == sa.bindparam("wsid"))
_OWNED_WORKSPACE = _WORKSPACE.where(workspaces.c.owner.in_(sa.bindparam("owners", expanding=True)))


def _workspace_query(wsid: str, scope: Scope) -> tuple[sa.Select[Any], dict[str, Any]]:
    """The statement and parameters that read the workspace ``wsid`` if it is in ``scope``."""
    if scope.owners is None:
        return _WORKSPACE, {"wsid": wsid}
    return _OWNED_WORKSPACE, {"wsid": wsid, "owners": sorted(scope.owners)}


def _visible(scope: Scope) -> sa.ColumnElement[bool]:
    """SQL: the ``workspaces`` row is in ``scope``."""
    return sa.true() if scope.owners is None else workspaces.c.owner.in_(sorted(scope.owners))


def _in_visible_workspace(wsid: sa.ColumnElement[str], scope: Scope) -> sa.ColumnElement[bool]:
    """SQL: the row's workspace (its ``wsid`` column) is in ``scope``."""
    if scope.owners is None:
        return sa.true()
    return wsid.in_(sa.select(workspaces.c.wsid).where(_visible(scope)))


def _replayed(task: Task, submission: Submission) -> Accepted:
    """The task an earlier request with the submission's Idempotency-Key created, if it was the same request;
    409 WVS_CONFLICT_IDEMPOTENT_MISMATCH otherwise."""
    if task.request_hash != submission.request_hash:
        raise WVSError(
            ErrorCode.CONFLICT_IDEMPOTENT_MISMATCH,
            "this Idempotency-Key was already used with a different request",
        )
    return Accepted(task, created=False)


def _require_state(wsid: str, state: WorkspaceState, wanted: WorkspaceState) -> None:
    """410 for a DISABLED workspace, 412 for any other state than ``wanted``."""
    if state == WorkspaceState.DISABLED:
        raise WVSError(ErrorCode.GONE, f"workspace {wsid!r} is disabled")
    if state != wanted:
        raise WVSError(ErrorCode.PRECONDITION_FAILED, f"workspace {wsid!r} is {state}, not {wanted}")


def require_snapshots(
    references: list[str], drops: list[str], snapshot_references: SnapshotReferences
) -> WorkspaceCheck | None:
    """A new task's check of its op's declarations (``TaskOp.references``, ``TaskOp.drops``): every snapshot it
    names belongs to the workspace and is not deleted (404 WVS_NOT_FOUND), and none it drops is current or
    referenced by an unfinished task (409 WVS_CONFLICT_SNAPSHOT_IN_USE, judged by ``snapshot_references``).
    None when the op names no snapshot: there is nothing to check."""
    named = list(dict.fromkeys([*references, *drops]))
    if not named:
        return None

    async def check(conn: AsyncConnection, workspace: Workspace) -> None:
        found = set(
            (
                await conn.execute(
                    sa.select(snapshots.c.snapshot_id).where(
                        snapshots.c.wsid == workspace.wsid,
                        snapshots.c.snapshot_id.in_(named),
                        snapshots.c.deleted_at.is_(None),
                    )
                )
            ).scalars()
        )
        if missing := [snapshot_id for snapshot_id in named if snapshot_id not in found]:
            raise WVSError(ErrorCode.NOT_FOUND, f"snapshot {missing[0]} not found in workspace {workspace.wsid!r}")
        for snapshot_id in drops:
            if users := await snapshot_users(conn, workspace.wsid, snapshot_id, snapshot_references):
                raise WVSError(
                    ErrorCode.CONFLICT_SNAPSHOT_IN_USE, f"snapshot {snapshot_id} is in use by {', '.join(users)}"
                )

    return check


def require_source_snapshots(source_wsid: str, references: list[str], scope: Scope) -> SourceCheck:
    """A new workspace's check of its initializer's declarations (``TaskOp.source_workspace``,
    ``TaskOp.references``): the source workspace is in ``scope`` and every snapshot named is one of its live
    snapshots (else 404 WVS_NOT_FOUND). The source's row is held (``FOR SHARE``) until the commit, so a drop
    of one of those snapshots is judged either before (the snapshot is gone: 404 here) or after it (the new
    task counts as a reference: ``snapshot_users``)."""

    async def check(conn: AsyncConnection) -> None:
        query, params = _workspace_query(source_wsid, scope)
        if (await conn.execute(query.with_for_update(read=True, nowait=True), params)).first() is None:
            raise WVSError(ErrorCode.NOT_FOUND, f"workspace {source_wsid!r} not found")
        found = set(
            (
                await conn.execute(
                    sa.select(snapshots.c.snapshot_id).where(
                        snapshots.c.wsid == source_wsid,
                        snapshots.c.snapshot_id.in_(references),
                        snapshots.c.deleted_at.is_(None),
                    )
                )
            ).scalars()
        )
        if missing := [snapshot_id for snapshot_id in references if snapshot_id not in found]:
            raise WVSError(ErrorCode.NOT_FOUND, f"snapshot {missing[0]} not found in workspace {source_wsid!r}")

    return check
