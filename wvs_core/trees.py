"""The trees an op clones from and builds: snapshots in WVS's area, live trees in the agent view.

``ExecutionContext.clone`` and ``ExecutionContext.new_tree`` build every tree the same crash-safe way: under
a temporary name in WVS's area, checked, renamed into place, completed. A ``Tree`` says what differs from
one kind of tree to another — its temporary name, when it is complete, how it is renamed into place, what
completes it — and how to open it as the source of a clone.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import attrs

from wvs_core.fsutil import fsync_dir
from wvs_core.ids import check_uuid
from wvs_core.layout import LIVE, WorkspaceLayout, snapshot_metadata, write_snapshot_metadata
from wvs_core.ops import ExecutionContext, OpFailed
from wvs_core.storage import open_tree


class Tree(abc.ABC):
    """A tree of the workspace, named by a WVS id (checked when it is made). Methods without ``async`` block
    (run them in a thread); ``ctx`` is the running op's context."""

    @abc.abstractmethod
    def describe(self, ctx: ExecutionContext) -> str:
        """The tree's path, for messages."""

    @abc.abstractmethod
    def temporary(self, layout: WorkspaceLayout) -> Path:
        """Where the tree is built before it is renamed into place (WVS's area; recovery removes it)."""

    @abc.abstractmethod
    def is_complete(self, ctx: ExecutionContext) -> bool:
        """Whether the tree is in place and complete: nothing is left to do for it."""

    @abc.abstractmethod
    def open(self, ctx: ExecutionContext) -> int:
        """A descriptor of the complete tree (the caller closes it), to clone from; raises when it is not."""

    @abc.abstractmethod
    def place(self, ctx: ExecutionContext, temporary: Path) -> None:
        """Rename the finished tree at ``temporary`` into place, durably."""

    def seal(self, ctx: ExecutionContext) -> None:  # noqa: B027 - optional step
        """Complete the tree once it is in place (a snapshot: write its metadata). Default: nothing."""

    def partial(self, ctx: ExecutionContext) -> Path | None:
        """What an interrupted attempt left at the final name when the tree is not complete, to remove before
        building it again; None when nothing is there. Default: None (a tree whose ``place`` is one
        ``rename(2)`` is there whole or not at all)."""
        return None

    def owner(self, ctx: ExecutionContext) -> tuple[int, int] | None:
        """``(uid, gid)`` to give an empty tree made for it (a clone keeps its source's); None: WVS's."""
        return None


@attrs.frozen
class SnapshotTree(Tree):
    """``snapshots/<wsid>/<snapshot_id>`` in WVS's area; complete once its metadata file names it. As a
    destination it is completed with ``message`` and ``labels``; as a source it must be complete."""

    snapshot_id: str = attrs.field(validator=check_uuid)
    message: str | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict)

    def describe(self, ctx: ExecutionContext) -> str:
        """The snapshot tree's path."""
        return str(ctx.layout.snapshot(self.snapshot_id))

    def temporary(self, layout: WorkspaceLayout) -> Path:
        """``tmp/<wsid>/snapshot-<id>``."""
        return layout.snapshot_tmp(self.snapshot_id)

    def is_complete(self, ctx: ExecutionContext) -> bool:
        """The tree is there and its metadata file names it."""
        return snapshot_metadata(ctx.layout, self.snapshot_id) is not None

    def check_complete(self, ctx: ExecutionContext) -> None:
        """Fail the op for good (``SNAPSHOT_MISSING``) unless the snapshot is complete."""
        if not self.is_complete(ctx):
            raise OpFailed("SNAPSHOT_MISSING", f"{self.describe(ctx)} is not a complete snapshot", retryable=False)

    def open(self, ctx: ExecutionContext) -> int:
        """The complete snapshot tree; an incomplete or missing one fails the op for good."""
        self.check_complete(ctx)
        return open_tree(ctx.layout.snapshot(self.snapshot_id))

    def place(self, ctx: ExecutionContext, temporary: Path) -> None:
        """A rename within WVS's area."""
        temporary.rename(ctx.layout.snapshot(self.snapshot_id))
        fsync_dir(ctx.layout.snapshots_dir)

    def seal(self, ctx: ExecutionContext) -> None:
        """Write ``<snapshot_id>.json``: from now on the snapshot is complete."""
        seal_snapshot(ctx.layout, self.snapshot_id, self.message, self.labels)

    def partial(self, ctx: ExecutionContext) -> Path | None:
        """A tree renamed into place whose metadata was never written."""
        path = ctx.layout.snapshot(self.snapshot_id)
        return path if os.path.lexists(path) and not self.is_complete(ctx) else None


def seal_snapshot(layout: WorkspaceLayout, snapshot_id: str, message: str | None, labels: Mapping[str, str]) -> None:
    """Write the metadata of the snapshot tree in place at ``snapshot_id``: from now on it is complete."""
    metadata = {
        "wsid": layout.wsid,
        "message": message,
        "labels": dict(labels),
        "created_at": datetime.now(UTC).isoformat(),
    }
    write_snapshot_metadata(layout, snapshot_id, metadata)


@attrs.frozen
class LiveTree(Tree):
    """``live/<live_id>`` in the agent view, read and written through ``ctx.view`` only: built in WVS's area
    and adopted into the view by descriptor; an empty one is the agent's."""

    live_id: str = attrs.field(validator=check_uuid)

    def describe(self, ctx: ExecutionContext) -> str:
        """The live tree's path."""
        return ctx.view.describe(LIVE, self.live_id)

    def temporary(self, layout: WorkspaceLayout) -> Path:
        """``tmp/<wsid>/live-<id>``."""
        return layout.live_tmp(self.live_id)

    def is_complete(self, ctx: ExecutionContext) -> bool:
        """``live/<live_id>`` exists (WorkspaceTampered when it is not a real directory)."""
        return ctx.view.has_live_tree(self.live_id)

    def open(self, ctx: ExecutionContext) -> int:
        """``live/<live_id>``, opened without following links (WorkspaceTampered when missing or not a real
        directory)."""
        return ctx.view.open_live_tree(self.live_id)

    def place(self, ctx: ExecutionContext, temporary: Path) -> None:
        """A rename into the view's ``live`` directory, by its descriptor."""
        ctx.view.adopt_live_tree(temporary, self.live_id)

    def owner(self, ctx: ExecutionContext) -> tuple[int, int] | None:
        """The agent's user, when one is configured."""
        return ctx.view.agent
