"""A third-party-style plugin that overrides built-in ops by name to fail on purpose."""

from __future__ import annotations

import asyncio
from collections import Counter

from wvs_core import hookimpl
from wvs_core.models import ExecutionResult, Task
from wvs_core.ops import ClaimDecision, ExecutionContext, OpFailed, TaskOp, WorkspaceTransaction
from wvs_ops.init_workspace import InitWorkspace
from wvs_ops.snapshot_create import SnapshotCreate


class FlakySnapshot(SnapshotCreate):
    """snapshot_create that fails its first ``failures`` runs of each task, then does the real thing."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs: Counter[str] = Counter()

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        self.runs[ctx.task_id] += 1
        if self.runs[ctx.task_id] <= self.failures:
            raise OpFailed("INJECTED", f"injected failure {self.runs[ctx.task_id]} of {self.failures}")
        return await super().execute(ctx)


class BrokenInit(InitWorkspace):
    """init_workspace that always fails."""

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        raise OpFailed("INJECTED", "this volume refuses new workspaces")


class OpOverrides:
    """Register as a plugin object: its ops win over the built-ins (which are ``trylast``)."""

    def __init__(self, *ops: TaskOp) -> None:
        self.ops = list(ops)

    @hookimpl
    def wvs_register_ops(self) -> list[TaskOp]:
        return self.ops


class SlowSnapshot(SnapshotCreate):
    """snapshot_create that first sleeps ``seconds`` (records whether it was cut short)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.cut_short: list[str] = []
        self.finished: list[str] = []

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cut_short.append(ctx.task_id)
            raise
        result = await super().execute(ctx)
        self.finished.append(ctx.task_id)
        return result


class SlowClaim(SnapshotCreate):
    """snapshot_create whose claim-time rule takes ``seconds``; ``claiming`` is set when it starts."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.claiming = asyncio.Event()

    async def on_claimed(self, tx: WorkspaceTransaction, task: Task) -> ClaimDecision:
        self.claiming.set()
        await asyncio.sleep(self.seconds)
        return await super().on_claimed(tx, task)
