"""init_workspace: create the SPEC §1 layout and point ``current`` at the first live tree."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import attrs

from wvs_core.ids import check_uuid, uuid7
from wvs_core.layout import LIVE
from wvs_core.models import ExecutionResult
from wvs_core.ops import CHOSEN_BY_SERVER, ExecutionContext, WorkspaceInitializer
from wvs_core.trees import LiveTree
from wvs_ops.params import parse_params


@attrs.frozen
class InitWorkspaceParams:
    """``live_id``: the id of the first live tree, chosen when the task is created."""

    live_id: str = attrs.field(factory=uuid7, validator=check_uuid, metadata=CHOSEN_BY_SERVER)


class InitWorkspace(WorkspaceInitializer):
    """Lay out a new workspace: an empty first live tree, with ``current`` pointing to it.

    Idempotent: a re-run finds the directories and the link in place and changes nothing."""

    name = "init_workspace"
    params_type = InitWorkspaceParams

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
        return await self.point_current(ctx, params.live_id)
