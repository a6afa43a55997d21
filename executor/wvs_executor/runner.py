"""Runs one op for one task against the filesystem, turning every failure into a result."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import attrs

from wvs_core import metrics
from wvs_core.agentview import TAMPERED, AgentView, WorkspaceTampered
from wvs_core.cancellation import acquire_in_thread
from wvs_core.config import Config
from wvs_core.ids import is_wsid
from wvs_core.layout import VolumeLayout, WorkspaceLayout
from wvs_core.locks import POLL_INTERVAL, try_workspace_lock, workspace_lock
from wvs_core.logs import log_context
from wvs_core.models import ExecutionRequest, ExecutionResult
from wvs_core.ops import ExecutionContext, OpCanceled, OpFailed, TaskOp
from wvs_core.plugins import PluginRegistry
from wvs_core.quiesce import QuiesceTimeout
from wvs_core.recovery import Leftovers, clear_leftovers, finish_recovery, recover_workspace
from wvs_core.storage import StorageError
from wvs_core.treewalk import TreeTooDeep
from wvs_executor.volume import VolumeWatch

log = logging.getLogger(__name__)

CANCELED = "CANCELED"


class InvalidRequest(Exception):
    """The request names an unknown op or an invalid workspace id; retrying cannot help."""


def failure(reason: str, message: str, retryable: bool = True) -> ExecutionResult:
    """A failed result, counted by reason."""
    metrics.CLONE_FAILURES.labels(reason).inc()
    return ExecutionResult(success=False, error_code=reason, error_message=message, retryable=retryable)


@attrs.define
class _Entry:
    """A workspace entered for an op (``OpRunner._enter``): its lock held, its agent view open, the crash
    leftovers in the view cleared — or ``refusal``, the answer to give at once. ``lock`` is None when another
    op holds the workspace."""

    lock: int | None = None
    view: AgentView | None = None
    leftovers: Leftovers = attrs.field(factory=lambda: Leftovers([], []))
    refusal: ExecutionResult | None = None

    def close(self) -> None:
        """Close the view, then release the lock."""
        if self.view is not None:
            self.view.close()
        if self.lock is not None:
            os.close(self.lock)


class OpRunner:
    """Runs ops under the workspace lock, after undoing whatever a crashed op left in the workspace.

    At construction WVS's area is made (or checked) and the mount's identity noted; an op finds the mount
    unchanged or fails, retryable, with ``VOLUME_UNAVAILABLE``.
    """

    def __init__(self, config: Config, registry: PluginRegistry, on_step: Callable[[str], None] | None = None) -> None:
        plugins = config.plugins
        self.registry = registry
        self.mount = Path(config.executor.mount_path)
        VolumeLayout(self.mount).ensure_area()
        self.volume_watch = VolumeWatch(self.mount)
        self.quiesce_timeout = config.executor.quiesce_timeout
        self.agent = config.executor.agent_ids
        self.storage = registry.storage_backends[plugins.storage](plugins.settings_for(plugins.storage))
        self.quiesce = registry.quiesce_protocols[plugins.quiesce](plugins.settings_for(plugins.quiesce))
        self.on_step = on_step
        self.running: dict[str, asyncio.Event] = {}  # cancel requests of the ops running here

    def cancel(self, task_id: str) -> bool:
        """Ask the running op of ``task_id`` to stop at its next safe point; False when not running here."""
        cancel = self.running.get(task_id)
        if cancel is None:
            return False
        cancel.set()
        return True

    async def recover_all(self) -> int:
        """At start-up: recover every workspace no op holds (a crash may have left any of them unfinished).
        A workspace that cannot be recovered (its agent view tampered with) is logged and passed over."""
        recovered = 0
        for name in sorted(await asyncio.to_thread(os.listdir, self.mount)):
            if not is_wsid(name):
                continue
            layout = WorkspaceLayout(self.mount, name)
            async with workspace_lock(layout, wait=False) as acquired:
                if not acquired:
                    continue
                try:
                    with await asyncio.to_thread(AgentView.open, layout) as view:
                        actions = await recover_workspace(layout, view, self.storage, self.quiesce)
                except (WorkspaceTampered, OSError, StorageError) as error:
                    log.warning("cannot recover workspace %s: %s", name, error, extra={"wsid": name})
                    continue
                if actions:
                    log.warning("recovered workspace %s: %s", name, "; ".join(actions), extra={"wsid": name})
                    recovered += 1
        return recovered

    async def run(self, request: ExecutionRequest) -> ExecutionResult:
        """Run ``request``; raises InvalidRequest, otherwise always answers with a result."""
        op = self.registry.op_by_wire_name(request.op)
        if op is None:
            raise InvalidRequest(f"unknown op {request.op!r}")
        try:
            layout = WorkspaceLayout(self.mount, request.wsid)
        except ValueError as error:
            raise InvalidRequest(str(error)) from None
        with log_context(request_id=request.request_id, task_id=request.task_id, wsid=request.wsid, op=op.name):
            self.running[request.task_id] = cancel = asyncio.Event()
            metrics.EXECUTOR_ACTIVE.inc()
            try:
                entry = await self._enter_when_free(layout)
                try:
                    result = entry.refusal or await self._run_entered(op, request, layout, entry, cancel)
                finally:
                    entry.close()
            finally:
                metrics.EXECUTOR_ACTIVE.dec()
                self.running.pop(request.task_id, None)
            log.info("op %s", "succeeded" if result.success else f"failed: {result.error_code}")
            return result

    async def _enter_when_free(self, layout: WorkspaceLayout) -> _Entry:
        """``_enter`` once no other op holds the workspace (polled, so the wait can be cancelled)."""
        while True:
            entry = await acquire_in_thread(self._enter, layout, release=_Entry.close)
            if entry.lock is not None or entry.refusal is not None:
                return entry
            await asyncio.sleep(POLL_INTERVAL)

    def _enter(self, layout: WorkspaceLayout) -> _Entry:
        """Blocking, one thread hop for all an op needs first: the mount still the volume of the start, the
        workspace's lock (not waited for), its agent view, WVS's directories, and the crash leftovers in the view
        cleared (the trees in flight are listed; ``finish_recovery`` removes them)."""
        if problem := self.volume_watch.problem():
            log.error("op refused: %s", problem)
            return _Entry(refusal=failure("VOLUME_UNAVAILABLE", problem))
        entry = _Entry(try_workspace_lock(layout))
        if entry.lock is None:
            return entry
        try:
            entry.view = AgentView.open(layout, True, self.agent)
            layout.ensure_area_dirs()
            entry.leftovers = clear_leftovers(layout, entry.view)
        except WorkspaceTampered as error:
            entry.refusal = _tampered(error)
        except (OSError, ValueError) as error:
            log.exception("op failed")
            entry.refusal = failure("EXECUTOR_ERROR", str(error))
        except BaseException:
            entry.close()
            raise
        return entry

    async def _run_entered(
        self, op: TaskOp, request: ExecutionRequest, layout: WorkspaceLayout, entry: _Entry, cancel: asyncio.Event
    ) -> ExecutionResult:
        assert entry.view is not None  # entered without a refusal
        view = entry.view
        ctx = ExecutionContext(
            task_id=request.task_id,
            wsid=request.wsid,
            op_name=op.name,
            params=request.params,
            layout=layout,
            view=view,
            storage=self.storage,
            quiesce=self.quiesce,
            quiesce_timeout=self.quiesce_timeout,
            request_id=request.request_id,
            cancel_requested=cancel,
            on_step=self.on_step,
        )
        try:
            if actions := await finish_recovery(layout, view, entry.leftovers, self.storage, self.quiesce):
                log.warning("recovered before the op: %s", "; ".join(actions))
            log.info("op started")
            return await op.execute(ctx)
        except OpCanceled as error:
            return ExecutionResult(success=False, error_code=CANCELED, error_message=str(error))
        except WorkspaceTampered as error:
            return _tampered(error)
        except QuiesceTimeout as error:
            return failure("QUIESCE_TIMEOUT", str(error))
        except OpFailed as error:
            return failure(error.reason, str(error), retryable=error.retryable)
        except TreeTooDeep as error:
            return failure("TREE_TOO_DEEP", str(error), retryable=False)
        except StorageError as error:
            return failure(error.reason, str(error))
        except (OSError, ValueError) as error:
            log.exception("op failed")
            return failure("EXECUTOR_ERROR", str(error))


def _tampered(error: WorkspaceTampered) -> ExecutionResult:
    log.error("workspace tampered with: %s", error)
    return failure(TAMPERED, str(error), retryable=False)
