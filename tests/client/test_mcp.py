"""wvs-mcp over stdio, driven by a real MCP client session: an agent snapshots its own workspace (the server's
own responder answers the freeze), lists, diffs, restores a path and rolls back."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.helpers import create_workspace

WVS_MCP = str(Path(sys.executable).parent / "wvs-mcp")


async def call(session: ClientSession, tool: str, **arguments: Any) -> tuple[bool, Any]:
    """(is_error, the structured answer — or the error text)."""
    result: Any = await session.call_tool(tool, arguments)
    if result.is_error:
        return True, result.content[0].text
    answer = result.structured_content
    return False, answer.get("result", answer) if isinstance(answer, dict) and set(answer) == {"result"} else answer


async def test_an_agent_checkpoints_and_rewinds_itself_through_mcp(wvs) -> None:
    await create_workspace(wvs, "mcp-agent")
    root: Path = wvs.mount_path / "mcp-agent"
    (root / "current" / "plan.md").write_text("step 1\n")
    (root / "current" / "notes.txt").write_text("keep me\n")
    server = StdioServerParameters(
        command=WVS_MCP,
        args=["--wsid", "mcp-agent", "--workspace-root", str(root), "--wait", "60"],
        env={"WVS_API_URL": str(wvs.base_url)},
    )
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {tool.name for tool in (await session.list_tools()).tools}
        assert tools == {"snapshot", "list_snapshots", "diff", "restore_paths", "roll_back"}

        failed, snapshot = await call(session, "snapshot", message="before the refactor", labels={"by": "agent"})
        assert not failed, snapshot
        assert snapshot["message"] == "before the refactor" and snapshot["labels"] == {"by": "agent"}
        assert snapshot["entries"] == 2, "the clone holds the two files"

        (root / "current" / "plan.md").write_text("step 1\nstep 2 (broken)\n")
        (root / "current" / "notes.txt").write_text("clobbered\n")
        failed, listed = await call(session, "list_snapshots", labels={"by": "agent"})
        assert not failed and [item["snapshot_id"] for item in listed] == [snapshot["snapshot_id"]]

        failed, diff = await call(session, "diff", snapshot_id=snapshot["snapshot_id"])
        assert not failed, diff
        assert {change["path"]: change["change"] for change in diff["changes"]} == {
            "plan.md": "modified",
            "notes.txt": "modified",
        }

        failed, _ = await call(session, "restore_paths", snapshot_id=snapshot["snapshot_id"], paths=["notes.txt"])
        assert not failed, _
        assert (root / "current" / "notes.txt").read_text() == "keep me\n"
        assert (root / "current" / "plan.md").read_text() == "step 1\nstep 2 (broken)\n", "only the path given"

        failed, rolled = await call(session, "roll_back", snapshot_id=snapshot["snapshot_id"])
        assert not failed, rolled
        assert (root / "current" / "plan.md").read_text() == "step 1\n"

        failed, text = await call(session, "roll_back", snapshot_id="01a21e96-ed6a-7531-a909-a04f53b8d655")
        assert failed and "roll back: WVS_NOT_FOUND: snapshot" in text, text
        failed, text = await call(session, "list_snapshots", limit=-1)
        assert failed and "limit must be at least 1, got -1" in text, text
        failed, text = await call(session, "list_snapshots", labels={"a=b": "c"})
        assert failed and "label key 'a=b' holds '='" in text, text
    tasks = (await wvs.get("/v1/tasks", params={"wsid": "mcp-agent", "status": "SUCCEEDED"})).json()["items"]
    assert {task["op"] for task in tasks} >= {"snapshot_create", "snapshot_diff", "restore_paths", "set_current"}
    assert json.loads((root / ".wvs" / "control.json").read_text())["state"] == "RUNNING"


def test_it_refuses_to_start_without_a_workspace_or_with_a_wrong_root(tmp_path: Path) -> None:
    import os
    import subprocess

    env = {key: value for key, value in os.environ.items() if key != "WVS_WSID"}
    nothing = subprocess.run([WVS_MCP], capture_output=True, text=True, env=env, timeout=60)
    assert nothing.returncode == 2 and "no workspace: give --wsid or set WVS_WSID" in nothing.stderr
    wrong = subprocess.run(
        [WVS_MCP, "--wsid", "x-y", "--workspace-root", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert wrong.returncode == 2 and "is not a workspace root: it has no current" in wrong.stderr


async def test_a_tool_that_outwaits_its_task_says_why_that_it_goes_on_and_how_to_cancel(
    database, mount, start_service
) -> None:
    from importlib.metadata import version

    from tests.conftest import make_config
    from wvs_client import AsyncClient

    service = await start_service(
        make_config(database, mount, executor={"quiesce_timeout": "300ms"}, worker={"max_attempts": 1000})
    )
    async with AsyncClient(service.api_url) as client:
        await (await client.create_workspace("mcp-slow", owner="programs")).wait(timeout=30)
    server = StdioServerParameters(  # no --workspace-root, and no agent: every freeze times out
        command=WVS_MCP, args=["--wsid", "mcp-slow", "--wait", "3"], env={"WVS_API_URL": str(service.api_url)}
    )
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        initialized = await session.initialize()
        assert initialized.server_info.version == version("wvs-client")
        failed, text = await call(session, "snapshot")
    assert failed, text
    task_id = text.split("task ")[1].split()[0]
    assert f"snapshot: WVS_WAIT_TIMEOUT: task {task_id} is still " in text, text
    assert "its last attempt failed: WVS_EXECUTOR_ERROR QUIESCE_TIMEOUT:" in text, text
    assert f"it goes on in WVS (cancel it: POST /v1/tasks/{task_id}:cancel)" in text, text
    async with AsyncClient(service.api_url) as client:
        await client.cancel_task(task_id)


def test_help_shows_how_long_a_tool_waits_by_default() -> None:
    import subprocess

    shown = subprocess.run([WVS_MCP, "--help"], capture_output=True, text=True, timeout=60)
    assert "the task goes on after (default: 300)" in " ".join(shown.stdout.split())
