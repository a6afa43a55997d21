"""Runs one op for one task against the filesystem, turning every failure into a result."""

from __future__ import annotations

import asyncio
import logging
import weakref
from pathlib import Path

from wvs_core.config import Config
from wvs_core.layout import WorkspaceLayout
from wvs_core.models import ExecutionRequest, ExecutionResult
from wvs_core.ops import ExecutionContext, OpFailed
from wvs_core.plugins import PluginRegistry
from wvs_core.quiesce import QuiesceTimeout
from wvs_core.storage import StorageError

log = logging.getLogger(__name__)


class InvalidRequest(Exception):
    """The request names an unknown op or an invalid workspace id; retrying cannot help."""


class OpRunner:
    """Builds each op's execution context from the configured storage and quiesce plugins."""

    def __init__(self, config: Config, registry: PluginRegistry) -> None:
        plugins = config.plugins
        self.registry = registry
        self.mount = Path(config.executor.mount_path)
        self.quiesce_timeout = config.executor.quiesce_timeout
        self.storage = registry.storage_backends[plugins.storage](plugins.settings_for(plugins.storage))
        self.quiesce = registry.quiesce_protocols[plugins.quiesce](plugins.settings_for(plugins.quiesce))
        # The scheduler already serialises a workspace; this guards against a misrouted second call.
        self._workspace_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

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
        )
        lock = self._workspace_locks.setdefault(request.wsid, asyncio.Lock())
        async with lock:
            try:
                return await op.execute(ctx)
            except QuiesceTimeout as error:
                return ExecutionResult(success=False, error_code="QUIESCE_TIMEOUT", error_message=str(error))
            except OpFailed as error:
                return ExecutionResult(success=False, error_code=error.reason, error_message=str(error))
            except StorageError as error:
                return ExecutionResult(success=False, error_code=error.reason, error_message=str(error))
            except (OSError, ValueError) as error:
                log.exception("op %s failed for task %s", op.name, request.task_id)
                return ExecutionResult(success=False, error_code="EXECUTOR_ERROR", error_message=str(error))
