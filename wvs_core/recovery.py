"""Undoing what a crashed op left behind. Run under the workspace lock, so no op of the workspace is running."""

from __future__ import annotations

import asyncio

from wvs_core.agentview import AgentView, temporary_name
from wvs_core.layout import CONTROL_FILE, CURRENT, META, WorkspaceLayout, area_names
from wvs_core.quiesce import QuiesceProtocol
from wvs_core.storage import StorageBackend


async def recover_workspace(
    layout: WorkspaceLayout, view: AgentView, storage: StorageBackend, quiesce: QuiesceProtocol, dry_run: bool = False
) -> list[str]:
    """Remove the workspace's trees in flight (WVS's area) and WVS's temporary files in the agent view, and
    resume an agent left frozen; returns what was (with ``dry_run``: would be) done.

    Raises WorkspaceTampered when the agent view is not as WVS made it; nothing outside it is touched.
    """
    actions = []
    for name in await asyncio.to_thread(area_names, layout.tmp_dir):
        if not dry_run:
            await storage.remove_tree(layout.tmp_dir / name)
        actions.append(f"temporary tree {layout.tmp_dir / name}")
    for directory, name in ((None, CURRENT), (META, CONTROL_FILE)):
        if await asyncio.to_thread(view.leftover, directory, name, not dry_run):
            actions.append(f"temporary file {view.describe(*filter(None, (directory, temporary_name(name))))}")
    if stuck := await quiesce.recover(view, dry_run):
        actions.append(stuck)
    return actions
