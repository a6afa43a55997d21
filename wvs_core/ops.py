"""The task-op interface: an op declares its params, its DB-side rules and its executor step.

An op object is shared by three planes. The API uses ``params_type`` to validate, the scheduler runs
the DB-side rules inside the queue's transactions, and the executor runs ``execute`` against the
filesystem. An op module therefore imports neither the database layer nor the executor.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs

from wvs_core import metrics
from wvs_core.agentview import AgentView
from wvs_core.cancellation import OpCanceled, acquire_in_thread, finish_in_thread
from wvs_core.errors import ErrorCode
from wvs_core.layout import WorkspaceLayout
from wvs_core.models import ExecutionResult, Snapshot, Task, Workspace, WorkspaceState
from wvs_core.quiesce import QuiesceProtocol, quiesced
from wvs_core.storage import StorageBackend, TreeUsage

if TYPE_CHECKING:
    from wvs_core.trees import Tree

log = logging.getLogger(__name__)


class OpFailed(Exception):
    """An executor step failed; ``reason`` is a short machine-readable cause (``QUIESCE_TIMEOUT``…).

    ``retryable=False`` marks a failure a retry cannot fix: the task goes DEAD at once.
    """

    def __init__(self, reason: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable


@attrs.frozen
class ExecutionContext:
    """Everything an executor step may use: the workspace's paths, its agent view, the storage and quiesce
    plugins, and the crash-safe ways to build trees (``clone``, ``new_tree``).

    ``layout`` gives paths in WVS's area, which are trusted. The agent view (``<mount>/<wsid>``) is
    hostile input: read and write it only through ``view`` (SPEC §13), never by path.
    """

    task_id: str
    wsid: str
    op_name: str  # labels the clone metrics
    params: Mapping[str, Any]  # the task's params as JSON values (with the claim's facts)
    layout: WorkspaceLayout
    view: AgentView
    storage: StorageBackend
    quiesce: QuiesceProtocol
    quiesce_timeout: float
    request_id: str = ""
    cancel_requested: asyncio.Event = attrs.field(factory=asyncio.Event)
    on_step: Callable[[str], None] | None = None  # observes each step reached (tracing, crash tests)

    def quiesced(self) -> AbstractAsyncContextManager[None]:
        """Hold the workspace's writers frozen for the body (fail-closed, always resumed)."""
        return quiesced(self.quiesce, self.view, self.task_id, self.quiesce_timeout, self.cancel_requested)

    def reached(self, step: str) -> None:
        """Mark a step of the op as done (logged at debug; observed by ``on_step``)."""
        log.debug("step %s", step)
        if self.on_step is not None:
            self.on_step(step)

    def checkpoint(self) -> None:
        """A safe point: raise OpCanceled if the task's cancellation was requested."""
        if self.cancel_requested.is_set():
            raise OpCanceled(f"task {self.task_id} canceled")

    async def has_tree(self, tree: Tree) -> bool:
        """Whether ``tree`` is in place and complete (``clone`` and ``new_tree`` then have nothing to do)."""
        return await asyncio.to_thread(tree.is_complete, self)

    async def clone(
        self,
        source: int | Tree,
        destination: Tree,
        *,
        freeze: bool = False,
        prepare: Callable[[Path], object] | None = None,
    ) -> TreeUsage | None:
        """Make ``destination`` (a ``wvs_core.trees`` tree) an exact clone of ``source`` — a complete tree, or
        a directory descriptor the op resolved itself without following links — crash-safe and idempotent.

        None when ``destination`` was complete already. Otherwise remove what an interrupted attempt left,
        clone into ``destination``'s temporary name in WVS's area, check the clone, rename it into place and
        complete it (a snapshot's metadata). An exception or a cancellation on the way leaves no temporary
        tree and nothing incomplete at the final name; a cancel request surfaces at the safe points between
        the steps as OpCanceled. With ``freeze`` the agent's writers are held frozen while the source is read
        (it is a live tree) and resumed before the rename; an op that must hold them longer calls ``clone``
        inside its own ``quiesced()`` instead. ``prepare(temporary)``, a blocking function (run in a thread),
        may change the clone while it is still WVS's, before the check and the rename — its content came from
        the source, so never follow a link in it. Steps reached: cleaned, [frozen,] cloned, [resumed,]
        [prepared,] renamed, sealed. The clone's duration, and its entries when the backend reports them, are counted
        under the op's name. Returns the backend's ``TreeUsage`` of the clone (before ``prepare`` changed it).
        """
        start = await acquire_in_thread(self._start_clone, source, destination, release=self._close_opened(source))
        if start is None:
            return None
        fd, leftovers = start
        try:
            async with self._building(destination, leftovers) as temporary:
                if not freeze:
                    usage = await self._clone_to(fd, temporary)
                else:
                    async with self.quiesced():
                        self.reached("frozen")
                        self.checkpoint()
                        usage = await self._clone_to(fd, temporary)
                    self.reached("resumed")
                if prepare is not None:
                    await finish_in_thread(prepare, temporary)
                    self.reached("prepared")
        finally:
            if not isinstance(source, int):
                os.close(fd)
        return usage

    async def new_tree(self, destination: Tree) -> bool:
        """Make ``destination`` an empty tree (the storage backend's ``make_tree``: a btrfs backend makes a
        subvolume) owned by its user (a live tree: the agent's), as crash-safe and idempotent as ``clone``:
        False when it was complete already. Steps reached: cleaned, renamed, sealed."""
        leftovers = await asyncio.to_thread(self._leftovers_unless_complete, destination)
        if leftovers is None:
            return False
        async with self._building(destination, leftovers) as temporary:
            await self.storage.make_tree(temporary)
            if (owner := destination.owner(self)) is not None:
                await asyncio.to_thread(os.chown, temporary, *owner, follow_symlinks=False)
        return True

    def _start_clone(self, source: int | Tree, destination: Tree) -> tuple[int, list[Path]] | None:
        """Blocking, one thread hop: None when ``destination`` is complete; else the source's descriptor (opened
        here for a tree) and what an interrupted attempt left."""
        leftovers = self._leftovers_unless_complete(destination)
        if leftovers is None:
            return None
        return (source if isinstance(source, int) else source.open(self)), leftovers

    def _close_opened(self, source: int | Tree) -> Callable[[tuple[int, list[Path]] | None], None]:
        """How to let go of what ``_start_clone`` returned: close the descriptor it opened (never the caller's)."""

        def close(start: tuple[int, list[Path]] | None) -> None:
            if start is not None and not isinstance(source, int):
                os.close(start[0])

        return close

    def _leftovers_unless_complete(self, destination: Tree) -> list[Path] | None:
        """Blocking: None when ``destination`` is complete; else what an interrupted attempt left of it (its
        temporary tree, what is incomplete at its final name)."""
        if destination.is_complete(self):
            return None
        return self._leftovers(destination)

    def _leftovers(self, destination: Tree) -> list[Path]:
        temporary = destination.temporary(self.layout)
        return [path for path in (temporary, destination.partial(self)) if path is not None and os.path.lexists(path)]

    @asynccontextmanager
    async def _building(self, destination: Tree, leftovers: list[Path]) -> AsyncIterator[Path]:
        """The temporary name where the body builds ``destination``, once ``leftovers`` (of an attempt that
        crashed) are removed; then check, rename into place, complete. Any failure removes the temporary tree
        and what is incomplete at the final name."""
        temporary = destination.temporary(self.layout)
        await self._remove(leftovers)
        self.reached("cleaned")
        self.checkpoint()
        try:
            yield temporary
            self.checkpoint()
            # In a thread that ends before a cancellation lets the clean-up run: a rename can't be half-done.
            await finish_in_thread(self._place, destination, temporary)
            self.reached("renamed")
            await finish_in_thread(destination.seal, self)
            self.reached("sealed")
        except BaseException:
            await self._remove(await asyncio.to_thread(self._leftovers, destination))
            raise

    async def _remove(self, trees: list[Path]) -> None:
        for tree in trees:
            await self.storage.remove_tree(tree)

    async def _clone_to(self, source: int, temporary: Path) -> TreeUsage:
        started = time.monotonic()
        usage = await self.storage.clone_tree(source, temporary)
        metrics.CLONE_DURATION.labels(self.op_name).observe(time.monotonic() - started)
        if usage.entries is not None:  # never walked for: a backend that cannot tell leaves it unobserved
            metrics.CLONE_ENTRIES.labels(self.op_name).inc(usage.entries)
        self.reached("cloned")
        return usage

    def _place(self, destination: Tree, temporary: Path) -> None:
        if not stat.S_ISDIR(os.lstat(temporary).st_mode):
            raise OpFailed("CLONE_FAILED", f"the tree built at {temporary} is not a directory")
        destination.place(self, temporary)


@attrs.frozen
class ClaimDecision:
    """What an op's ``on_claimed`` rule decided: run the executor step, finish now, or refuse."""

    result: ExecutionResult | None = None  # set: the task succeeds without an executor call
    reject_code: ErrorCode | None = None  # set: the task goes DEAD with this code
    reject_message: str = ""
    facts: Mapping[str, str] = attrs.field(factory=dict)  # added to the params of the executor call

    @classmethod
    def proceed(cls, **facts: str) -> ClaimDecision:
        """Call the executor, passing ``facts`` read from the database at claim time along with the params
        (the executor cannot read the database; a re-run after a crash may need them)."""
        return cls(facts=facts)

    @classmethod
    def done(cls, result: ExecutionResult) -> ClaimDecision:
        """Nothing to do on disk: succeed with ``result``."""
        return cls(result=result)

    @classmethod
    def reject(cls, code: ErrorCode, message: str) -> ClaimDecision:
        """The task can never succeed: it goes DEAD with ``code``."""
        return cls(reject_code=code, reject_message=message)


class WorkspaceTransaction(Protocol):
    """The database operations an op's DB-side rules may use, all inside one scheduler transaction.

    The transaction runs while the task is the only RUNNING task of its workspace, so what a rule reads
    cannot be changed by another task until the outcome is recorded.
    """

    async def get_workspace(self, wsid: str) -> Workspace:
        """The workspace row, locked for the rest of the transaction."""
        ...

    async def set_workspace_state(self, wsid: str, state: WorkspaceState, **fields: Any) -> None:
        """Move the workspace to ``state`` (audited) and update other columns given as ``fields``."""
        ...

    async def set_current(self, wsid: str, snapshot_id: str | None, current_path: str) -> None:
        """Record that ``current`` now holds a clone of ``snapshot_id`` at ``current_path`` (audited); None: a
        tree that is no snapshot's clone (a partial restore mixed two)."""
        ...

    async def get_snapshot(self, wsid: str, snapshot_id: str) -> Snapshot | None:
        """The snapshot row (deleted or not), or None."""
        ...

    async def add_snapshot(
        self,
        wsid: str,
        snapshot_id: str,
        fs_path: str,
        message: str | None,
        *,
        labels: Mapping[str, str] | None = None,
        usage: TreeUsage | None = None,
    ) -> None:
        """Record a snapshot that now exists on disk (idempotent for a re-run), with its labels and the
        ``TreeUsage`` its clone reported (None or unknown figures: stored as NULL)."""
        ...

    async def snapshot_users(self, wsid: str, snapshot_id: str) -> list[str]:
        """Why the snapshot may not go: ``"current"`` and/or ids of other unfinished tasks naming it."""
        ...

    async def mark_snapshot_deleted(self, snapshot_id: str) -> datetime:
        """Set ``deleted_at`` (kept if already set) and return it (audited)."""
        ...

    async def record_event(self, type_: str, data: Mapping[str, Any]) -> None:
        """Record an event of a type the task's op declares (``TaskOp.event_types``) about the task's workspace,
        with ``data`` (JSON values; ``op`` is added), in this transaction: it exists if and only if the change
        it reports commits. Raises ValueError for a type the op does not declare."""
        ...


CHOSEN_BY_SERVER: Mapping[str, Any] = MappingProxyType({"chosen_by_server": True})
"""Metadata of a params field the service fills when the task is created (an id from a ``factory``): a request
naming it is refused with 400, and its JSON Schema says ``readOnly`` (JSON Schema 2020-12, §9.4). Use
``attrs.field(factory=uuid7, metadata=CHOSEN_BY_SERVER)``."""

ADDED_AT_CLAIM: Mapping[str, Any] = MappingProxyType({"chosen_by_server": True, "added_at_claim": True})
"""Metadata of a params field the op's ``on_claimed`` adds to the executor call (``ClaimDecision.proceed``), a
fact read from the database then: chosen by the server like ``CHOSEN_BY_SERVER``, but not stored with the task
(it is unknown when the task is created), so a task's ``params`` never show it. Give it a default."""


def chosen_by_server(field: attrs.Attribute[Any]) -> bool:
    """Whether a params field is filled by the service, never by a request (``CHOSEN_BY_SERVER``,
    ``ADDED_AT_CLAIM``)."""
    return bool(field.metadata.get("chosen_by_server"))


def stored_params(op: TaskOp, params: Mapping[str, Any]) -> dict[str, Any]:
    """A new task's ``params`` as stored: without the fields added at claim time (``ADDED_AT_CLAIM``)."""
    added = {field.name for field in attrs.fields(op.params_type) if field.metadata.get("added_at_claim")}
    return {name: value for name, value in params.items() if name not in added}


def requested_params(op: TaskOp, params: Mapping[str, Any]) -> dict[str, Any]:
    """A stored task's ``params`` as its request gave them: without the fields the server chose, so that a
    repeat of the task (``retry-init``) gets them chosen afresh."""
    chosen = {field.name for field in attrs.fields(op.params_type) if chosen_by_server(field)}
    return {name: value for name, value in params.items() if name not in chosen}


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@attrs.frozen
class OpRoute:
    """A named route that submits a task of the op declaring it (``TaskOp.routes``): an alias of
    ``POST /v1/workspaces/{wsid}/tasks`` that the API mounts and documents in its OpenAPI document.

    ``path`` starts with ``/v1/workspaces/{wsid}/``; each other ``{name}`` in it fills the param ``name`` (a
    ``str`` field of the op's params type). With ``body`` the request's JSON object supplies the other params
    (naming a path's param there is a 400); without, the body must be ``{}`` or absent. The 202 answer is
    ``{task_id, status}`` plus the params named in ``answer``, as stored (an id the server chose included).
    ``operation_id`` names the route in the OpenAPI document (default: the op's name in camelCase) and
    ``summary`` describes it (default: the first line of the op's docstring).

    The route of an op that initializes a workspace (``TaskOp.initializes_workspace``, a fork) creates one
    instead, as ``POST /v1/workspaces`` with ``init`` would: the path's ``{wsid}`` fills the param
    ``source_param`` (the workspace it starts from), the body is ``{wsid, owner?}`` naming the new workspace,
    and the 202 answer is ``{wsid, state, init_task_id}``."""

    method: str = attrs.field(validator=attrs.validators.in_(WRITE_METHODS))
    path: str
    body: bool = True
    answer: tuple[str, ...] = ()
    source_param: str = ""
    operation_id: str = ""
    summary: str = ""


class TaskOp(abc.ABC):
    """One kind of task. Subclasses set ``name`` and ``params_type`` and implement ``execute``.

    ``params_type`` is an attrs class: ``POST /v1/workspaces/{wsid}/tasks`` structures a request's params
    with it (its validators give the 400s), fills fields marked ``CHOSEN_BY_SERVER`` from their defaults, and
    stores the result as JSON; ``GET /v1/ops`` publishes its JSON Schema.
    """

    name: ClassVar[str]
    params_type: ClassVar[type[Any]]
    submittable: ClassVar[bool] = True
    """False for an op only the service itself creates (``init_workspace``): the tasks route refuses it."""
    routes: ClassVar[tuple[OpRoute, ...]] = ()
    """The op's named routes (``OpRoute``), mounted by the API beside ``POST /v1/workspaces/{wsid}/tasks``."""
    initializes_workspace: ClassVar[bool] = False
    """True for an op that makes a new workspace's first live tree (``init_workspace``, a fork): its task is the
    one ``POST /v1/workspaces`` creates with the workspace (``init: {op, params}``; ``init_workspace`` when the
    body names none), and ``retry-init`` repeats it. Such an op is never submittable; its rules move the
    workspace PROVISIONING → ACTIVE when it succeeds and to INIT_FAILED when it ends otherwise."""
    quiesces: ClassVar[bool] = False
    """True for an op whose ``execute`` may freeze the agent (``ctx.quiesced()``, ``ctx.clone(freeze=True)``): its
    task may wait up to ``executor.quiesce_timeout`` for the workspace's agent to confirm the freeze. Published in
    ``GET /v1/ops``, where clients read it to explain a wait (``wvsctl --wait``)."""
    paged_result: ClassVar[str | None] = None
    """The key of the task's ``result`` (see ``task_result``) holding a list that
    ``GET /v1/tasks/{task_id}/result`` serves page by page; None: the result has no such list. The task's view
    (``GET /v1/tasks``, ``GET /v1/tasks/{task_id}``) and its ``task.succeeded`` event leave that list out and
    say how long it is instead (``summarised_result``)."""
    result_types: ClassVar[Mapping[str, type[int] | type[bool] | type[float]]] = MappingProxyType({})
    """The type of each executor result that is not text: ``{"entries": int, "bytes": int}``. The default
    ``task_result`` reads those strings as numbers (``"12"``) and booleans (``"true"``/``"false"``), so that the
    task's ``result`` holds typed JSON values; results not named stay strings."""
    event_types: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """The event types the op's DB-side rules record (``WorkspaceTransaction.record_event``), each with a
    one-line description: ``{"workspace.forked": "a fork's first live tree is in place"}``. Names are
    ``<noun>.<verb>`` in lower case, and neither a core type (``wvs_core.events.EventType``) nor another op's.
    They are listed with the op (``GET /v1/ops``), in the OpenAPI document's ``Event.type``, and a notifier's
    filter may name them."""

    @property
    def wire_name(self) -> str:
        """The op's name in the gRPC request (``SNAPSHOT_CREATE`` for ``snapshot_create``)."""
        return self.name.upper()

    @abc.abstractmethod
    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Do the filesystem part. Must be idempotent: a re-run after a crash finishes the job.

        Raise ``OpFailed`` for an expected failure and call ``ctx.checkpoint()`` at every point where
        stopping leaves nothing half-made; any other exception is reported as ``EXECUTOR_ERROR``.
        """

    def task_result(self, results: Mapping[str, str]) -> dict[str, Any]:
        """The task's ``result`` (JSON, stored when it succeeds; the scheduler adds ``noop``) made of the
        executor's ``results``, which are strings (the gRPC map): an op whose results are structured encodes
        them as JSON text in ``execute`` and decodes them here. Raise ValueError for results it cannot read
        (the task then fails for good with ``INVALID_RESULT``). Default: the strings, those ``result_types``
        names read as their type (ValueError when one does not read)."""
        return {name: typed_result(name, text, self.result_types.get(name, str)) for name, text in results.items()}

    def references(self, params: Mapping[str, Any]) -> list[str]:
        """Ids of the snapshots a task with ``params`` reads: each must exist when the task is submitted (else
        404 WVS_NOT_FOUND), and none may be dropped while the task is unfinished (drop protection).
        Default: none."""
        return []

    def source_workspace(self, params: Mapping[str, Any]) -> str | None:
        """The workspace whose snapshots ``references`` names: None (the default) for the task's own. Only an
        initializer (``initializes_workspace``) may name another — its new workspace has no snapshots — and the
        caller must see that workspace (else 404). Drop protection counts the task against that workspace's
        snapshots until it ends."""
        return None

    def drops(self, params: Mapping[str, Any]) -> list[str]:
        """Ids of the snapshots a task with ``params`` removes. Such a task is refused at submission (409
        WVS_CONFLICT_SNAPSHOT_IN_USE) while a snapshot is current or referenced by another unfinished task;
        the op's own ``on_claimed`` re-checks under the workspace's serialization. Default: none."""
        return []

    def live_trees(self, params: Mapping[str, Any]) -> dict[str, str | None]:
        """The live trees (by live id) that a task with ``params`` made current once it succeeded, each with
        the snapshot of the workspace it is a clone of (None: it was made empty, or is no snapshot of this
        workspace's — a fork's). ``wvs fsck`` keeps them; a live tree no
        succeeded task declares is an orphan (removed with ``--prune``). Default: none."""
        return {}

    def kept_trees(self, params: Mapping[str, Any]) -> list[str]:
        """Ids of the snapshots a task with ``params`` makes by moving the live tree it replaced out of the agent
        view (``wvs_core.keeping``). ``wvs fsck`` never removes such a tree found without its metadata — it is
        the user's work, a keep interrupted before its seal — and ``--fix`` completes it. Default: none."""
        return []

    async def on_claimed(self, tx: WorkspaceTransaction, task: Task) -> ClaimDecision:
        """DB-side rule run in the transaction that claims the task; by default, run the executor step."""
        return ClaimDecision.proceed()

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:  # noqa: B027
        """DB-side rule run in the transaction that marks the task SUCCEEDED."""

    async def on_dead(self, tx: WorkspaceTransaction, task: Task) -> None:  # noqa: B027
        """DB-side rule run in the transaction that marks the task DEAD."""

    async def on_canceled(self, tx: WorkspaceTransaction, task: Task) -> None:  # noqa: B027
        """DB-side rule run in the transaction that marks the task CANCELED."""

    def count_outcome(self, task: Task) -> None:  # noqa: B027
        """Add the op's own metrics for a run that ended as ``task`` says (its ``status`` and stored ``result``),
        once the transaction that recorded it committed; called in the worker, whose ``/metrics`` serves
        prometheus_client's default registry, where the op's module defines its metrics (never labelled by
        ``wsid``: SPEC §10). An exception is logged and changes nothing else. Default: nothing beyond ``wvs_task_*``."""


def typed_result(name: str, text: str, kind: type[Any]) -> Any:
    """The executor's result ``name`` (``text``) as ``kind`` (str, int, float or bool: ``"true"``/``"false"``);
    ValueError naming it when it does not read."""
    if kind is bool:
        if text not in ("true", "false"):
            raise ValueError(f"result {name} is {text!r}, not true or false")
        return text == "true"
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"result {name} is {text!r}, not {kind.__name__}") from None


PAGED_RESULT = "result_page"
"""The key of the task view (and of a ``task.succeeded`` event's ``after``) that stands for the ``paged_result``
list left out of ``result``."""


def summarised_result(
    op: TaskOp | None, task_id: str, result: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A task's ``result`` as its view and events show it, and what stands for its ``paged_result`` list: the
    result without that list, and ``{"key", "total", "href"}`` — the list's key, its length, and
    ``/v1/tasks/{task_id}/result`` that serves it page by page. ``(result, None)`` when the op declares no such
    list or the result holds none (not succeeded yet)."""
    key = op.paged_result if op is not None else None
    if result is None or key is None or not isinstance(result.get(key), list):
        return (dict(result) if result is not None else None), None
    page = {"key": key, "total": len(result[key]), "href": f"/v1/tasks/{task_id}/result"}
    return {name: value for name, value in result.items() if name != key}, page


class WorkspaceInitializer(TaskOp):
    """An op that makes a new workspace's first live tree (``init_workspace``, a fork): the task
    ``POST /v1/workspaces`` creates with its workspace, never submitted. Its rules move the workspace
    PROVISIONING → ACTIVE when it succeeds (``current_path`` from its result) and to INIT_FAILED when it ends
    otherwise, so that ``retry-init`` may try again. Subclasses set ``name`` and ``params_type``, make the first
    live tree in ``execute`` and end with ``point_current``."""

    submittable = False
    initializes_workspace = True

    async def point_current(self, ctx: ExecutionContext, live_id: str) -> ExecutionResult:
        """Let the quiesce protocol set up in the new view, then switch ``current`` to ``live/<live_id>`` last
        (a no-op when it points there already: a re-run). Steps reached: prepared, switched."""
        await ctx.quiesce.prepare(ctx.view, ctx.task_id)
        ctx.reached("prepared")
        switched = await asyncio.to_thread(_switch_unless_there, ctx, live_id)
        ctx.reached("switched")
        return ExecutionResult(
            success=True,
            noop=not switched,
            results={"root_path": str(ctx.layout.root), "current_path": str(ctx.layout.live(live_id))},
        )

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
        """PROVISIONING → ACTIVE with the first live tree as ``current_path``."""
        await tx.set_workspace_state(task.wsid, WorkspaceState.ACTIVE, current_path=result.results["current_path"])

    async def on_dead(self, tx: WorkspaceTransaction, task: Task) -> None:
        """PROVISIONING → INIT_FAILED; ``retry-init`` may try again."""
        await tx.set_workspace_state(task.wsid, WorkspaceState.INIT_FAILED)

    async def on_canceled(self, tx: WorkspaceTransaction, task: Task) -> None:
        """A canceled initializer leaves the workspace INIT_FAILED too, so ``retry-init`` can start over."""
        await tx.set_workspace_state(task.wsid, WorkspaceState.INIT_FAILED)


def _switch_unless_there(ctx: ExecutionContext, live_id: str) -> bool:
    """Blocking: switch ``current`` to the live tree; False when it already pointed there."""
    if ctx.view.points_to(live_id):
        return False
    ctx.view.switch_current(live_id)
    return True
