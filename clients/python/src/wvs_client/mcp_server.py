"""``wvs-mcp``: an MCP server (stdio) that gives an agent tools over its own workspace — snapshot, list snapshots,
diff, restore paths, roll back — and answers the workspace's freeze requests itself while they run.

Needs the extra ``mcp`` (``pip install 'wvs-client[mcp]'``). Configured by arguments or the environment:
``--wsid`` / ``WVS_WSID`` (the agent's workspace), ``--api-url`` / ``WVS_API_URL``, ``--token`` / ``WVS_TOKEN``,
``--workspace-root`` / ``WVS_WORKSPACE_ROOT`` (the agent view, ``<mount>/<wsid>``, as mounted in the sandbox: with
it the server runs the quiesce responder, without it another responder must answer). Each tool waits for its task
and answers its result, or an error text naming the ``WVS_…`` code and the reason.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from wvs_client.async_client import AsyncClient
from wvs_client.errors import WvsError
from wvs_client.models import Accepted, Snapshot, Task
from wvs_client.responder import QuiesceResponder, missing_parts

DEFAULT_WAIT = 300.0  # seconds a tool waits for its task (a snapshot retries a failed quiesce with backoff)
DIFF_CHANGES = 200  # changes a diff answers at most (the rest is counted in its summary)

INSTRUCTIONS = """Checkpoints of your own workspace (WVS). Take a snapshot before a risky change; list snapshots
to find one; diff a snapshot against `current` (your working tree) to see what changed; restore some paths from a
snapshot, or roll the whole tree back to one. Rolling back and restoring keep the tree they replace as a snapshot."""


class WorkspaceTools:
    """The tools, bound to one workspace through an ``AsyncClient``; each waits at most ``wait`` seconds."""

    def __init__(self, client: AsyncClient, wsid: str, wait: float = DEFAULT_WAIT) -> None:
        self.client = client
        self.wsid = wsid
        self.wait = wait

    def register(self, server: MCPServer[Any]) -> None:
        """Add the tools to ``server``."""
        for tool in (self.snapshot, self.list_snapshots, self.diff, self.restore_paths, self.roll_back):
            server.add_tool(tool)

    async def snapshot(self, message: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
        """Snapshot the workspace's current tree (your writes are paused for the moment of the clone). `labels`:
        at most 16 {key: value}, keys of lower-case letters, digits, `_.-`. Answers the new snapshot."""
        task = await self._finish("snapshot", self.client.create_snapshot(self.wsid, message, labels))
        snapshot_id = (task.result or {}).get("snapshot_id")
        for snapshot in await self._snapshots(None, 100):
            if snapshot.snapshot_id == snapshot_id:
                return _snapshot(snapshot)
        return {"snapshot_id": snapshot_id}

    async def list_snapshots(self, labels: dict[str, str] | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The workspace's snapshots, newest first (at most `limit`, at least 1), only those carrying every one of
        `labels`."""
        if limit < 1:
            raise ToolError(f"list snapshots: limit must be at least 1, got {limit}")
        return [_snapshot(snapshot) for snapshot in await self._snapshots(labels, limit)]

    async def diff(self, snapshot_id: str, against: str = "current") -> dict[str, Any]:
        """What changed from snapshot `snapshot_id` to `against` (another snapshot id, or "current", your working
        tree): `summary` counts, and `changes` ({path, change: added|removed|modified|type_changed|meta_changed,
        size_before, size_after}), at most 200 of them."""
        task = await self._finish("diff", self.client.diff_snapshot(self.wsid, snapshot_id, against))
        changes: list[Any] = []
        try:
            async for change in self.client.iter_task_result(task.task_id):
                if len(changes) == DIFF_CHANGES:
                    break
                changes.append(change)
        except WvsError as error:
            raise ToolError(f"diff: {error}") from None
        return {**(task.result or {}), "changes": changes}

    async def restore_paths(self, snapshot_id: str, paths: list[str]) -> dict[str, Any]:
        """Put `paths` (relative to your working tree) back as snapshot `snapshot_id` has them; a path the snapshot
        lacks is removed. The tree it replaces is kept as a snapshot."""
        task = await self._finish("restore", self.client.restore_paths(self.wsid, snapshot_id, paths))
        return task.result or {}

    async def roll_back(self, snapshot_id: str) -> dict[str, Any]:
        """Replace your whole working tree with snapshot `snapshot_id`. The tree it replaces is kept as a snapshot."""
        task = await self._finish("roll back", self.client.set_current(self.wsid, snapshot_id))
        return task.result or {}

    async def _finish(self, what: str, submitted: Any) -> Task:
        """Await the write ``submitted`` and its task; ToolError with the reason when either fails."""
        try:
            accepted: Accepted[Any] = await submitted
            task: Task = await accepted.wait(timeout=self.wait)
        except WvsError as error:
            raise ToolError(f"{what}: {error}") from None
        if not task.succeeded:
            raise ToolError(
                f"{what}: task {task.task_id} ended {task.status} after {task.attempt} attempt(s): "
                f"{task.error or 'no error recorded'}"
            )
        return task

    async def _snapshots(self, labels: dict[str, str] | None, limit: int) -> list[Snapshot]:
        found: list[Snapshot] = []
        try:
            async for snapshot in self.client.iter_snapshots(self.wsid, labels):
                if len(found) >= limit:
                    break
                found.append(snapshot)
        except (WvsError, ValueError) as error:
            raise ToolError(f"list snapshots: {error}") from None
        return found


def _snapshot(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "snapshot_id": snapshot.snapshot_id,
        "created_at": snapshot.created_at.isoformat() if snapshot.created_at else None,
        "message": snapshot.message,
        "labels": snapshot.labels,
        "entries": snapshot.entries,
        "bytes": snapshot.bytes,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, with the environment as defaults."""
    parser = argparse.ArgumentParser(prog="wvs-mcp", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--wsid", default=os.environ.get("WVS_WSID"), help="the agent's workspace (env WVS_WSID)")
    parser.add_argument("--api-url", default=None, help="WVS's API (env WVS_API_URL, default http://localhost:8080)")
    parser.add_argument("--token", default=None, help="a bearer token (env WVS_TOKEN)")
    parser.add_argument(
        "--workspace-root",
        default=os.environ.get("WVS_WORKSPACE_ROOT"),
        help="the agent view <mount>/<wsid>; given, this server answers its freeze requests (env WVS_WORKSPACE_ROOT)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT,
        help="seconds a tool waits for its task; the task goes on after (default: %(default)g)",
    )
    args = parser.parse_args(argv)
    if not args.wsid:
        parser.error("no workspace: give --wsid or set WVS_WSID")
    if args.workspace_root and (missing := missing_parts(Path(args.workspace_root))):
        parser.error(f"{args.workspace_root} is not a workspace root: it has no {' and no '.join(missing)}")
    return args


async def serve(args: argparse.Namespace) -> None:
    """Run the MCP server on stdin/stdout until the host closes it."""
    async with AsyncClient(args.api_url, args.token) as client:
        server: MCPServer[Any] = MCPServer("wvs", instructions=INSTRUCTIONS, version=version("wvs-client"))
        WorkspaceTools(client, args.wsid, args.wait).register(server)
        await server.run_stdio_async()


def main(argv: Sequence[str] | None = None) -> None:
    """``wvs-mcp``."""
    args = parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request drowns the freezes and failures
    responder = QuiesceResponder(args.workspace_root) if args.workspace_root else None
    with responder.running_in_thread() if responder else contextlib.nullcontext():
        anyio.run(serve, args)
