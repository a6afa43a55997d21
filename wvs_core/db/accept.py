"""Accepting tasks in batches: what ``POST /v1/workspaces/{wsid}/tasks`` and its aliases do when the op declares
no snapshot to check first (``Store.submit_task``; ops that do take the general path).

Group commit. The requests that arrive while a statement is in flight wait for it to end, then go together in
the next one: an idle API sends a request alone at once, a busy one sends one statement — one commit, one
``task.created`` append and one wake-up — for many. Each statement is a transaction of its own (no BEGIN and
COMMIT round trips) and does, under the same rules as the general path: lock the requests' workspace rows (in
wsid order); insert the task of each request whose workspace is ACTIVE and in its scope, unless a task already
holds its Idempotency-Key — then find that one; append the ``task.created`` events through
``wvs.record_events`` (which also wakes the event dispatcher, see ``db/events.py``) and run the queue's
announcement (``TaskQueue.announcement``): both wake-ups leave at the commit.

Tasks one statement creates share its ``created_at``, taken once every lock is held, and are ordered by their
``task_id``s, UUIDv7s made in the order the requests arrived: a workspace's tasks stay in arrival order.

A statement never waits for a lock: a workspace whose row another transaction holds (a task ending, a fork's
check) is skipped, and its requests go again in a later statement, after a pause in which they hold no
connection (``db/lockwait.py``): one held workspace holds up no other, nor takes the API's pool. A batch the
database refuses for a reason other than the connection (a fault in one request's row) is sent again one
request per statement, so that only the faulty request fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Coroutine, Sequence
from typing import Any

import asyncpg
import attrs
from sqlalchemy import TextClause
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from wvs_core.db.driver import driver
from wvs_core.db.engine import database_unavailable
from wvs_core.db.events import CHANNEL
from wvs_core.db.lockwait import RowHeld, Turns, held_too_long
from wvs_core.db.rows import task_from_row
from wvs_core.events import EventType
from wvs_core.ids import uuid7
from wvs_core.models import Task, TaskStatus, WorkspaceState

MAX_BATCH = 256  # requests per statement: bounds its parameter (about 1 KiB each) and its row locks

# $1: the requests, a JSON array of objects with the fields of ``TaskRequest`` and ``n``, the position from 1.
# A request whose key a task already holds inserts nothing (ON CONFLICT); only then is that earlier task looked
# up, in the statement's snapshot, taken before the locks were granted: a task an identical request committed
# meanwhile is not in it (the caller looks again), nor is the one the first of two identical requests in the
# same batch inserted. A CTE that nothing reads is not run: the last column reads the events' append and the
# announcement.
# The request's scope: a workspace outside it is neither locked for the request, nor waited for, nor named.
_VISIBLE = "(request.owners IS NULL OR w.owner = ANY(request.owners))"

_TEMPLATE = f"""
WITH request AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
        n int, wsid text, op text, idempotency_key text, task_id text, request_hash text, max_attempts int,
        timeout_seconds int, params jsonb, request_id text, actor jsonb, owners text[]
    )
),
workspace AS MATERIALIZED (
    SELECT w.wsid, w.state, w.owner FROM wvs.workspaces w
    WHERE EXISTS (SELECT FROM request WHERE request.wsid = w.wsid AND {_VISIBLE})
    ORDER BY wsid
    FOR UPDATE SKIP LOCKED
),
stamp AS MATERIALIZED (
    SELECT clock_timestamp() AS at FROM (SELECT count(*) FROM workspace) AS every_lock_held
),
visible AS MATERIALIZED (
    SELECT request.*, w.state
    FROM request JOIN workspace w USING (wsid)
    WHERE {_VISIBLE}
),
created AS (
    INSERT INTO wvs.tasks (task_id, wsid, op, status, idempotency_key, request_hash, created_at, next_run_at,
                           max_attempts, timeout_seconds, params, request_id, actor)
    SELECT task_id, wsid, op, '{TaskStatus.PENDING}', idempotency_key, request_hash, stamp.at, stamp.at,
           max_attempts, timeout_seconds, params, request_id, actor
    FROM visible, stamp
    WHERE state = '{WorkspaceState.ACTIVE}'
    ORDER BY task_id
    ON CONFLICT (wsid, op, idempotency_key) DO NOTHING
    RETURNING *
),
earlier AS MATERIALIZED (
    SELECT visible.n, tasks.*
    FROM visible JOIN wvs.tasks tasks
      ON (tasks.wsid, tasks.op, tasks.idempotency_key) = (visible.wsid, visible.op, visible.idempotency_key)
    WHERE NOT EXISTS (SELECT FROM created WHERE created.task_id = visible.task_id)
),
recorded AS MATERIALIZED (
    SELECT wvs.record_events(
        jsonb_agg(jsonb_build_object(
            'n', n, 'action', '{EventType.TASK_CREATED}', 'wsid', wsid, 'task_id', task_id,
            'request_id', request_id, 'actor', actor,
            'payload', jsonb_build_object('op', op, 'after',
                                          jsonb_build_object('status', '{TaskStatus.PENDING}', 'params', params))
        )),
        '{CHANNEL}'
    )
    FROM (SELECT *, row_number() OVER (ORDER BY task_id) AS n FROM created) AS in_order
    HAVING count(*) > 0
),
announced AS MATERIALIZED (
    SELECT FROM ({{announcement}}) AS announcement WHERE EXISTS (SELECT FROM created)
)
SELECT request.n AS request, workspace.wsid IS NOT NULL AS taken,
       EXISTS (SELECT FROM wvs.workspaces w WHERE w.wsid = request.wsid AND {_VISIBLE}) AS known,
       visible.state AS workspace_state, found.*,
       (SELECT count(*) FROM recorded) + (SELECT count(*) FROM announced) AS effects
FROM request
LEFT JOIN workspace ON workspace.wsid = request.wsid
LEFT JOIN visible ON visible.n = request.n
LEFT JOIN (
    SELECT false AS is_new, earlier.* FROM earlier
    UNION ALL
    SELECT true, request.n, created.* FROM created JOIN request ON request.task_id = created.task_id
) AS found ON found.n = request.n
ORDER BY request.n
"""


@attrs.frozen
class TaskRequest:
    """One request's task: ``owners`` is its scope (None: every owner's workspaces)."""

    wsid: str
    op: str
    params: dict[str, Any]
    max_attempts: int
    timeout_seconds: int
    idempotency_key: str
    request_hash: str
    request_id: str
    actor: dict[str, Any]
    owners: tuple[str, ...] | None
    task_id: str = attrs.field(factory=uuid7)  # made on arrival: the order of a workspace's tasks


@attrs.frozen
class Acceptance:
    """What the statement found: no workspace (None: missing or outside the scope), its state, and the task
    it created (``created``) or the one an earlier request with the key created — or no task at all, when the
    workspace is not ACTIVE or an identical request committed first (in the same statement or while this one
    waited for the lock)."""

    workspace_state: WorkspaceState | None
    task: Task | None = None
    created: bool = False


def accepting_statement(announcement: TextClause) -> str:
    """The accepting statement in asyncpg's form, with the queue's ``announcement`` written in (its parameters
    as literals)."""
    woken = str(announcement.compile(dialect=PGDialect_asyncpg(), compile_kwargs={"literal_binds": True}))
    return _TEMPLATE.format(announcement=woken)


@attrs.define
class _Waiting:
    """A request waiting for its answer. ``tried`` is set while it goes in a statement on behalf of its
    workspace's group (``Acceptor._take_turn``): resolved once that statement answered it or found the row held."""

    request: TaskRequest
    answer: asyncio.Future[Acceptance]
    tried: asyncio.Future[None] | None = None


class Acceptor:
    """Accepts tasks in batches (see the module's docstring), over ``engine``'s pool in autocommit.

    Statements go straight through a pooled connection's asyncpg driver, which prepares each once per
    connection: SQLAlchemy's execution around a statement costs about a third of what the call costs.

    A request whose workspace's row was held joins that workspace's group, which takes its turn at the row
    among this process's requests (``turns``, shared with the store's other writes, in arrival order) and, in
    its turn, sends its requests again after each pause until the row is free (``db/lockwait.py``)."""

    def __init__(self, engine: AsyncEngine, announcement: TextClause, turns: Turns, stopping: asyncio.Event) -> None:
        self._engine = engine
        self._turns = turns
        self._stopping = stopping
        self._sql = accepting_statement(announcement)
        self._queued: list[_Waiting] = []
        self._sender: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()  # requests sent alone, groups taking their turn
        self._groups: dict[str, list[_Waiting]] = {}  # wsid → requests waiting for its turn, in arrival order

    async def accept(self, request: TaskRequest) -> Acceptance:
        """Accept ``request`` in one of the next statements. Raises 409 WVS_CONFLICT_LOCKED when its workspace
        was held by another transaction for ``LOCK_PATIENCE`` seconds or until the service began to stop, and
        what the database raised (``database_unavailable`` tells a connection's failure from a fault in the
        request)."""
        waiting = _Waiting(request, asyncio.get_running_loop().create_future())
        self._queue(waiting)
        return await waiting.answer

    async def close(self) -> None:
        """Wait for the statements in flight and the requests waiting for a held workspace."""
        while in_flight := [task for task in (self._sender, *self._background) if task and not task.done()]:
            await asyncio.gather(*in_flight)

    def _queue(self, waiting: _Waiting) -> None:
        self._queued.append(waiting)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_batches(), name="wvs-accept")

    def _in_background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_batches(self) -> None:
        while self._queued:
            batch, self._queued = self._queued[:MAX_BATCH], self._queued[MAX_BATCH:]
            await self._send(batch)

    async def _send(self, batch: list[_Waiting]) -> None:
        """One statement for ``batch``; each request answered, or found its workspace's row held, or — when the
        database refused the batch for a fault in a request's row — sent again alone."""
        try:
            rows = await self._run([waiting.request for waiting in batch])
        except Exception as error:  # handed to the batch's requests
            if database_unavailable(error) or len(batch) == 1:
                for waiting in batch:
                    _answer(waiting, error)
            else:
                for waiting in batch:
                    self._in_background(self._send([waiting]), "wvs-accept-alone")
            return
        for waiting, row in zip(batch, rows, strict=True):
            if row["taken"] or not row["known"]:
                _answer(waiting, _acceptance(row))
            elif waiting.tried is not None:  # its group tries again in its turn
                waiting.tried.set_result(None)
            else:
                self._join_group(waiting)

    def _join_group(self, waiting: _Waiting) -> None:
        """The request's workspace's row was held: it waits with the others of that workspace for their turn."""
        wsid = waiting.request.wsid
        if (group := self._groups.get(wsid)) is not None:
            group.append(waiting)
            return
        self._groups[wsid] = group = [waiting]
        self._in_background(self._take_turn(wsid, group), f"wvs-accept-held-{wsid}")

    async def _take_turn(self, wsid: str, group: list[_Waiting]) -> None:
        """In the workspace's turn, send ``group`` again — at once, then after each pause while the row is still
        held — until every request is answered; 409 for those left when the turn's patience runs out or the
        service begins to stop."""
        what = f"workspace {wsid!r}"
        try:
            async with self._turns.turn(what) as patience:
                del self._groups[wsid]  # from now on, requests finding the row held form the next group
                pending = group
                while True:
                    await self._try(pending)
                    if not (pending := [waiting for waiting in pending if not waiting.answer.done()]):
                        return
                    pause = patience.next_pause()
                    if pause is None or self._stopping.is_set():
                        raise held_too_long(what, self._stopping.is_set())
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), pause)
        except RowHeld as refused:
            if self._groups.get(wsid) is group:  # refused while waiting for its turn
                del self._groups[wsid]
            for waiting in group:
                _answer(waiting, refused)

    async def _try(self, group: list[_Waiting]) -> None:
        """Send ``group`` in the next statement; return once each request was answered or found the row held."""
        loop = asyncio.get_running_loop()
        for waiting in group:
            waiting.tried = loop.create_future()
            self._queue(waiting)
        await asyncio.gather(*(waiting.tried for waiting in group if waiting.tried is not None))

    async def _run(self, requests: Sequence[TaskRequest]) -> list[asyncpg.Record]:
        """One statement over ``requests``; its rows in their order (errors as ``wvs_core.db.driver`` says)."""
        argument = json.dumps([_as_row(n, request) for n, request in enumerate(requests, start=1)])
        async with self._engine.connect() as conn, driver(conn) as raw:
            return await raw.fetch(self._sql, argument)


def _as_row(n: int, request: TaskRequest) -> dict[str, Any]:
    row = attrs.asdict(request, recurse=False)
    row["n"] = n
    return row


def _acceptance(row: asyncpg.Record) -> Acceptance:
    if row["workspace_state"] is None:
        return Acceptance(workspace_state=None)
    state = WorkspaceState(row["workspace_state"])
    if row["task_id"] is None:
        return Acceptance(state)
    return Acceptance(state, task_from_row(row), created=bool(row["is_new"]))


def _answer(waiting: _Waiting, outcome: Acceptance | Exception) -> None:
    """Hand the outcome to a request still waiting for it (one that was cancelled has gone)."""
    if waiting.tried is not None and not waiting.tried.done():
        waiting.tried.set_result(None)
    if waiting.answer.done():
        return
    if isinstance(outcome, Exception):
        waiting.answer.set_exception(outcome)
    else:
        waiting.answer.set_result(outcome)
