"""init_workspace: create the SPEC §1 layout and point ``current`` at the first live tree."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import attrs

from wvs_core.agentview import AgentView
from wvs_core.ids import check_uuid, uuid7
from wvs_core.layout import LIVE
from wvs_core.models import ExecutionResult, Task, WorkspaceState
from wvs_core.ops import CHOSEN_BY_SERVER, ExecutionContext, TaskOp, WorkspaceTransaction
from wvs_core.trees import LiveTree
from wvs_ops.params import parse_params


@attrs.frozen
class InitWorkspaceParams:
    """``live_id``: the id of the first live tree, chosen when the task is created."""

    live_id: str = attrs.field(factory=uuid7, validator=check_uuid, metadata=CHOSEN_BY_SERVER)


def _point_current(view: AgentView, live_id: str) -> bool:
    """Switch ``current`` to the live tree; False when it already pointed there."""
    if view.points_to(live_id):
        return False
    view.switch_current(live_id)
    return True


class InitWorkspace(TaskOp):
    """Lay out a new workspace: an empty first live tree, with ``current`` pointing to it.

    Idempotent: a re-run finds the directories and the link in place and changes nothing."""

    name = "init_workspace"
    params_type = InitWorkspaceParams
    submittable = False  # created with its workspace (and by :retry-init), never submitted
    initializes_workspace = True

    def live_trees(self, params: Mapping[str, Any]) -> dict[str, str | None]:
        """The first live tree, made empty."""
        return {params["live_id"]: None}

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        """Make the first live tree (empty, the agent's: ``ctx.new_tree``), let the quiesce protocol set up,
        then switch ``current`` last."""
        params = parse_params(ctx, InitWorkspaceParams)
        await asyncio.to_thread(ctx.view.directory, LIVE, True)
        await ctx.new_tree(LiveTree(params.live_id))
        ctx.reached("directories")
        await ctx.quiesce.prepare(ctx.view, ctx.task_id)
        ctx.reached("prepared")
        switched = await asyncio.to_thread(_point_current, ctx.view, params.live_id)
        ctx.reached("switched")
        return ExecutionResult(
            success=True,
            noop=not switched,
            results={"root_path": str(ctx.layout.root), "current_path": str(ctx.layout.live(params.live_id))},
        )

    async def on_succeeded(self, tx: WorkspaceTransaction, task: Task, result: ExecutionResult) -> None:
        """PROVISIONING → ACTIVE with the first live tree as ``current_path``."""
        await tx.set_workspace_state(task.wsid, WorkspaceState.ACTIVE, current_path=result.results["current_path"])

    async def on_dead(self, tx: WorkspaceTransaction, task: Task) -> None:
        """PROVISIONING → INIT_FAILED; ``retry-init`` may try again."""
        await tx.set_workspace_state(task.wsid, WorkspaceState.INIT_FAILED)

    async def on_canceled(self, tx: WorkspaceTransaction, task: Task) -> None:
        """A canceled init leaves the workspace INIT_FAILED too, so ``retry-init`` can start over."""
        await tx.set_workspace_state(task.wsid, WorkspaceState.INIT_FAILED)
