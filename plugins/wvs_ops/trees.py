"""Tree helpers shared by the built-in ops: the live tree, snapshot metadata, counting entries."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from wvs_core.ops import ExecutionContext, OpFailed


@asynccontextmanager
async def current_tree(ctx: ExecutionContext) -> AsyncIterator[tuple[str, int]]:
    """The live tree ``current`` points to, as ``(live_id, descriptor)`` for the block; raises
    WorkspaceTampered when ``current`` is not a link to ``live/<id>`` or the tree is not a real directory."""
    live_id = await asyncio.to_thread(ctx.view.current_live_id)
    fd = await asyncio.to_thread(ctx.view.open_live_tree, live_id)
    try:
        yield live_id, fd
    finally:
        os.close(fd)


def check_clone(tree: Path) -> None:
    """A finished clone of a directory is a real directory; anything else fails the op (and is retried)."""
    if not stat.S_ISDIR(os.lstat(tree).st_mode):
        raise OpFailed("CLONE_FAILED", f"the clone at {tree} is not a directory")
