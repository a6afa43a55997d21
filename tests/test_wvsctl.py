"""wvsctl: tables by default, stable JSON on request, WVS_ codes and non-zero exits on failure."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner, Result

from wvs_core.cli.wvsctl import cli


async def run(wvs, *args: str) -> Result:
    """Invoke wvsctl in a thread (it is synchronous; the service runs in this loop)."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, cli, ["--api-url", str(wvs.base_url), *args])


async def test_workspace_lifecycle_in_tables_and_json(wvs) -> None:
    created = await run(wvs, "workspace", "create", "cli-ws", "--owner", "ops")
    assert created.exit_code == 0, created.output
    assert "init_task_id:" in created.output and "wvsctl task watch" in created.output
    task_id = created.output.split("init_task_id: ")[1].split()[0]

    watched = await run(wvs, "task", "watch", task_id)
    assert watched.exit_code == 0, watched.output
    assert "SUCCEEDED" in watched.output

    table = await run(wvs, "workspace", "list")
    assert table.exit_code == 0
    header, *lines = table.output.splitlines()
    assert header.split()[:3] == ["WSID", "STATE", "OWNER"]
    assert any(line.split()[:3] == ["cli-ws", "ACTIVE", "ops"] for line in lines)

    as_json = await run(wvs, "workspace", "list", "--json")
    alias = await run(wvs, "workspace", "list", "--output", "json")
    assert json.loads(as_json.output) == json.loads(alias.output)
    assert json.loads(as_json.output)["items"][0]["wsid"] == "cli-ws"

    tasks = json.loads((await run(wvs, "task", "list", "--wsid", "cli-ws", "--json")).output)
    assert [t["task_id"] for t in tasks["items"]] == [task_id]


async def test_failures_print_the_code_and_exit_non_zero(wvs) -> None:
    missing = await run(wvs, "workspace", "get", "nope-nope")
    assert missing.exit_code != 0
    assert "WVS_NOT_FOUND" in missing.output
    bad = await run(wvs, "workspace", "create", "Bad_Name")
    assert bad.exit_code != 0 and "WVS_BAD_REQUEST" in bad.output
    unreachable = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--api-url", "http://127.0.0.1:9", "workspace", "list"]
    )
    assert unreachable.exit_code != 0 and "cannot reach WVS" in unreachable.output


async def test_wait_on_a_failing_snapshot_exits_non_zero_with_the_reason(database, mount, start_service) -> None:
    from tests.conftest import make_config

    service = await start_service(
        make_config(database, mount, executor={"quiesce_timeout": "500ms"}, worker={"max_attempts": 1})
    )
    runner = CliRunner()
    url = service.api_url or ""
    created = await asyncio.to_thread(
        runner.invoke, cli, ["--api-url", url, "workspace", "create", "no-agent", "--wait"]
    )
    assert created.exit_code == 0, created.output
    snap = await asyncio.to_thread(runner.invoke, cli, ["--api-url", url, "snapshot", "create", "no-agent", "--wait"])
    assert snap.exit_code != 0
    assert "WVS_EXECUTOR_ERROR" in snap.output and "QUIESCE_TIMEOUT" in snap.output
    assert "DEAD" in snap.output


async def test_cancel_retry_init_and_disable_from_the_cli(database, tmp_path, start_service) -> None:
    from tests.conftest import make_config

    service = await start_service(make_config(database, tmp_path), planes=("api",))
    runner = CliRunner()
    url = service.api_url or ""

    async def cli_run(*args: str) -> Result:
        return await asyncio.to_thread(runner.invoke, cli, ["--api-url", url, *args])

    created = json.loads((await cli_run("workspace", "create", "cli-cancel", "--json")).output)
    canceled = await cli_run("task", "cancel", created["init_task_id"])
    assert canceled.exit_code == 0 and "CANCELED" in canceled.output
    too_late = await cli_run("task", "cancel", created["init_task_id"])
    assert too_late.exit_code != 0 and "WVS_CONFLICT_LOCKED" in too_late.output

    retried = await cli_run("workspace", "retry-init", "cli-cancel", "--json")
    assert retried.exit_code == 0 and json.loads(retried.output)["status"] == "PENDING"
    busy = await cli_run("workspace", "disable", "cli-cancel")
    assert busy.exit_code != 0 and "WVS_CONFLICT_LOCKED" in busy.output
    await cli_run("task", "cancel", json.loads(retried.output)["task_id"])
    disabled = await cli_run("workspace", "disable", "cli-cancel", "--json")
    assert json.loads(disabled.output)["state"] == "DISABLED"
    current = await cli_run("current", "get", "cli-cancel")
    assert current.exit_code == 0 and "current_snapshot_id" in current.output
    gone = await cli_run("current", "set", "cli-cancel", "01a21e96-ed6a-7531-a909-a04f53b8d655")
    assert gone.exit_code != 0 and "WVS_GONE" in gone.output
