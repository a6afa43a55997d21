"""Bench-only WVS plugin: two no-op ops, loaded through ``plugins.modules = ["bench.noop_plugin"]``.

- ``bench_noop`` does nothing in the engine: its ``on_claimed`` rule answers ``ClaimDecision.done`` in the
  claiming transaction, so the task succeeds with no executor call. What is left is the engine's own work:
  claim, RUNNING, ``task.started``, outcome, ``task.succeeded``, the result row — the drain and pickup figures.
- ``bench_noop_executed`` goes to the executor, whose ``execute`` does nothing: the engine's work plus the gRPC
  call and the executor's fixed steps (volume check, workspace lock, agent view, recovery check).

Neither takes params. Never installed with WVS: only ``make bench`` names this module.
"""

from __future__ import annotations

import attrs

from wvs_core import hookimpl
from wvs_core.models import ExecutionResult, Task
from wvs_core.ops import ClaimDecision, ExecutionContext, TaskOp, WorkspaceTransaction

DONE = ExecutionResult(success=True, results={"bench": "noop"})


@attrs.frozen
class NoParams:
    """No params."""


class Noop(TaskOp):
    """Succeeds where it is claimed, without the executor."""

    name = "bench_noop"
    params_type = NoParams

    async def on_claimed(self, tx: WorkspaceTransaction, task: Task) -> ClaimDecision:
        """Done at once: the scheduler records SUCCEEDED with ``{"bench": "noop"}`` as the result."""
        return ClaimDecision.done(DONE)

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Never called (``on_claimed`` finishes the task); answers like ``on_claimed`` if it were."""
        return DONE


class NoopExecuted(TaskOp):
    """Goes through the executor, which does nothing."""

    name = "bench_noop_executed"
    params_type = NoParams

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Nothing on disk: succeeds with ``{"bench": "noop"}``."""
        return DONE


@hookimpl
def wvs_register_ops() -> list[TaskOp]:
    """Provide ``bench_noop`` and ``bench_noop_executed``."""
    return [Noop(), NoopExecuted()]
