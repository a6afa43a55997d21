"""Undoing what a crashed op left behind. Run under the workspace lock, so no op of the workspace is running."""

from __future__ import annotations

import asyncio

import attrs

from wvs_core.agentview import AgentView, temporary_name
from wvs_core.layout import CONTROL_FILE, CURRENT, META, WorkspaceLayout, area_names
from wvs_core.quiesce import QuiesceProtocol
from wvs_core.storage import StorageBackend


@attrs.frozen
class Leftovers:
    """What ``clear_leftovers`` found: the trees in flight still to remove (names in ``tmp/<wsid>/``) and the
    temporary files of WVS it found in the agent view (paths, for the report)."""

    trees: list[str]
    files: list[str]


def clear_leftovers(layout: WorkspaceLayout, view: AgentView, dry_run: bool = False) -> Leftovers:
    """Blocking: list the workspace's trees in flight (WVS's area) and remove (unless ``dry_run``) WVS's temporary
    files in the agent view — found by their fixed names, never by listing a directory the agent may fill.

    Raises WorkspaceTampered when the agent view is not as WVS made it; nothing outside it is touched.
    """
    files = [
        view.describe(*filter(None, (directory, temporary_name(name))))
        for directory, name in ((None, CURRENT), (META, CONTROL_FILE))
        if view.leftover(directory, name, not dry_run)
    ]
    return Leftovers(area_names(layout.tmp_dir), files)


async def finish_recovery(
    layout: WorkspaceLayout,
    view: AgentView,
    leftovers: Leftovers,
    storage: StorageBackend,
    quiesce: QuiesceProtocol,
    dry_run: bool = False,
) -> list[str]:
    """After ``clear_leftovers``: remove the trees in flight and resume an agent left frozen (unless
    ``dry_run``); returns what was (with ``dry_run``: would be) done, the files ``clear_leftovers`` found
    included."""
    actions = []
    for name in leftovers.trees:
        if not dry_run:
            await storage.remove_tree(layout.tmp_dir / name)
        actions.append(f"temporary tree {layout.tmp_dir / name}")
    actions += [f"temporary file {path}" for path in leftovers.files]
    if stuck := await quiesce.recover(view, dry_run):
        actions.append(stuck)
    return actions


async def recover_workspace(
    layout: WorkspaceLayout, view: AgentView, storage: StorageBackend, quiesce: QuiesceProtocol, dry_run: bool = False
) -> list[str]:
    """Remove the workspace's trees in flight (WVS's area) and WVS's temporary files in the agent view, and
    resume an agent left frozen; returns what was (with ``dry_run``: would be) done.

    Raises WorkspaceTampered when the agent view is not as WVS made it; nothing outside it is touched.
    """
    leftovers = await asyncio.to_thread(clear_leftovers, layout, view, dry_run)
    return await finish_recovery(layout, view, leftovers, storage, quiesce, dry_run)
