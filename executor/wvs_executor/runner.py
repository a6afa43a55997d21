"""Runs one op for one task against the filesystem, turning every failure into a result."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from wvs_core import metrics
from wvs_core.config import Config
from wvs_core.ids import is_wsid
from wvs_core.layout import WorkspaceLayout
from wvs_core.locks import workspace_lock
from wvs_core.logs import log_context
from wvs_core.models import ExecutionRequest, ExecutionResult
from wvs_core.ops import ExecutionContext, OpCanceled, OpFailed, TaskOp
from wvs_core.plugins import PluginRegistry
from wvs_core.quiesce import QuiesceTimeout
from wvs_core.recovery import recover_workspace
from wvs_core.storage import StorageError

log = logging.getLogger(__name__)

CANCELED = "CANCELED"


class InvalidRequest(Exception):
    """The request names an unknown op or an invalid workspace id; retrying cannot help."""


def failure(reason: str, message: str) -> ExecutionResult:
    """A failed result, counted by reason."""
    metrics.CLONE_FAILURES.labels(reason).inc()
    return ExecutionResult(success=False, error_code=reason, error_message=message)


class OpRunner:
    """Runs ops under the workspace lock, after undoing whatever a crashed op left in the workspace."""

    def __init__(self, config: Config, registry: PluginRegistry, on_step: Callable[[str], None] | None = None) -> None:
        plugins = config.plugins
        self.registry = registry
        self.mount = Path(config.executor.mount_path)
        self.quiesce_timeout = config.executor.quiesce_timeout
        self.storage = registry.storage_backends[plugins.storage](plugins.settings_for(plugins.storage))
        self.quiesce = registry.quiesce_protocols[plugins.quiesce](plugins.settings_for(plugins.quiesce))
        self.on_step = on_step
        self.running: dict[str, ExecutionContext] = {}

    def cancel(self, task_id: str) -> bool:
        """Ask the running op of ``task_id`` to stop at its next safe point; False when not running here."""
        ctx = self.running.get(task_id)
        if ctx is None:
            return False
        ctx.cancel_requested.set()
        return True

    async def recover_all(self) -> int:
        """At start-up: recover every workspace no op holds (a crash may have left any of them unfinished)."""
        recovered = 0
        for name in sorted(await asyncio.to_thread(os.listdir, self.mount)):
            if not is_wsid(name):
                continue
            layout = WorkspaceLayout(self.mount, name)
            async with workspace_lock(layout, wait=False) as acquired:
                if acquired and (actions := await recover_workspace(layout, self.storage, self.quiesce)):
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
        ctx = ExecutionContext(
            task_id=request.task_id,
            wsid=request.wsid,
            params=request.params,
            layout=layout,
            storage=self.storage,
            quiesce=self.quiesce,
            quiesce_timeout=self.quiesce_timeout,
            request_id=request.request_id,
            on_step=self.on_step,
        )
        with log_context(request_id=request.request_id, task_id=request.task_id, wsid=request.wsid, op=op.name):
            self.running[request.task_id] = ctx
            metrics.EXECUTOR_ACTIVE.inc()
            try:
                async with workspace_lock(layout):
                    if actions := await recover_workspace(layout, self.storage, self.quiesce):
                        log.warning("recovered before the op: %s", "; ".join(actions))
                    log.info("op started")
                    result = await self._execute(op, ctx)
            finally:
                metrics.EXECUTOR_ACTIVE.dec()
                self.running.pop(request.task_id, None)
            log.info("op %s", "succeeded" if result.success else f"failed: {result.error_code}")
            return result

    @staticmethod
    async def _execute(op: TaskOp, ctx: ExecutionContext) -> ExecutionResult:
        try:
            return await op.execute(ctx)
        except OpCanceled as error:
            return ExecutionResult(success=False, error_code=CANCELED, error_message=str(error))
        except QuiesceTimeout as error:
            return failure("QUIESCE_TIMEOUT", str(error))
        except (OpFailed, StorageError) as error:
            return failure(error.reason, str(error))
        except (OSError, ValueError) as error:
            log.exception("op failed")
            return failure("EXECUTOR_ERROR", str(error))
