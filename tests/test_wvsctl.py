"""wvsctl: tables by default, stable JSON on request, WVS_ codes and non-zero exits on failure."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from wvs_core.cli.wvsctl import cli, parse_params
from wvs_core.ids import uuid7

BIN = Path(sys.executable).parent


async def run(wvs, *args: str) -> Result:
    """Invoke wvsctl in a thread (it is synchronous; the service runs in this loop)."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, cli, ["--api-url", str(wvs.base_url), *args])


async def test_workspace_lifecycle_in_tables_and_json(wvs) -> None:
    created = await run(wvs, "workspace", "create", "cli-ws", "--owner", "ops")
    assert created.exit_code == 0, created.output
    answer = dict(line.split(None, 1) for line in created.output.splitlines()[:-1])
    assert created.output.splitlines()[-1].startswith("follow it with: wvsctl task watch ")
    assert answer["wsid"] == "cli-ws" and answer["state"] == "PROVISIONING", "aligned columns like every record"
    assert created.output.splitlines()[0].startswith("wsid          cli-ws"), created.output
    task_id = answer["init_task_id"]

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
    assert (
        unreachable.exit_code != 0 and "WVS_UNREACHABLE: cannot reach WVS at http://127.0.0.1:9" in unreachable.output
    )
    assert "request_id" not in unreachable.output and "Traceback" not in unreachable.output  # no server saw it
    assert "the URL given with --api-url or WVS_API_URL: is WVS running there?" in unreachable.output
    assert "start it with" not in unreachable.output
    assert len(unreachable.output.strip().splitlines()) == 1, "one clear line"
    from_env = await asyncio.to_thread(
        CliRunner().invoke, cli, ["workspace", "list"], env={"WVS_API_URL": "http://127.0.0.1:9"}
    )
    assert "cannot reach WVS at http://127.0.0.1:9" in from_env.output and "is WVS running there?" in from_env.output


async def test_a_wsid_filter_naming_no_workspace_is_not_found_not_an_empty_list(wvs) -> None:
    for args in (
        ("events", "tail", "--wsid", "nosuch", "--no-follow"),
        ("events", "tail", "--wsid", "nosuch"),  # following: refused at once, never waits forever
        ("task", "list", "--wsid", "nosuch"),
        ("audit", "list", "nosuch"),
    ):
        result = await asyncio.wait_for(run(wvs, *args), timeout=30)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith("Error: WVS_NOT_FOUND: workspace 'nosuch' not found"), (args, result.output)
        assert len(result.output.splitlines()) == 1


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

    # What stdout ends with is the final task, not the PENDING answer the write got first.
    final = dict(line.split(None, 1) for line in snap.stdout.splitlines())
    assert final["status"] == "DEAD" and final["op"] == "snapshot_create"
    assert json.loads(final["error"])["reason"] == "QUIESCE_TIMEOUT"
    assert "PENDING" not in snap.stdout
    as_json = await asyncio.to_thread(
        runner.invoke, cli, ["--api-url", url, "snapshot", "create", "no-agent", "--wait", "--json"]
    )
    assert as_json.exit_code != 0
    task = json.loads(as_json.stdout)
    assert task["status"] == "DEAD" and task["error"]["reason"] == "QUIESCE_TIMEOUT" and "task" not in task
    (error_line,) = as_json.stderr.strip().splitlines()  # no progress with --json
    assert error_line.startswith("Error: WVS_EXECUTOR_ERROR") and f"(request_id {task['request_id']})" in error_line


async def test_wait_on_a_pending_freeze_says_what_it_waits_for_once(database, mount, start_service) -> None:
    from tests.conftest import make_config

    config = make_config(database, mount, executor={"quiesce_timeout": "6s"}, worker={"max_attempts": 1})
    service = await start_service(config)
    url = service.api_url or ""
    created = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--api-url", url, "workspace", "create", "slow-freeze", "--wait"]
    )
    assert created.exit_code == 0, created.output
    waiting = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--api-url", url, "snapshot", "create", "slow-freeze", "--wait"]
    )
    assert waiting.exit_code == 1
    root = mount / "slow-freeze"
    notices = [line for line in waiting.stderr.splitlines() if "confirm the freeze" in line]
    assert len(notices) == 1, waiting.stderr
    assert notices[0].endswith(
        "snapshot_create waits for the agent of slow-freeze to confirm the freeze (up to executor.quiesce_timeout, "
        f"EXECUTOR_QUIESCE_TIMEOUT): is `wvs agent {root}` running?"
    )
    assert 3.0 <= float(notices[0].split("]")[0].strip("[ s")) < 6, "a few seconds in, before the timeout"


async def test_wait_prints_each_failed_attempts_reason_as_it_happens(database, mount, start_service) -> None:
    """A snapshot without an agent: every attempt's failure is printed when it is seen, not only at the end."""
    from tests.conftest import make_config

    config = make_config(
        database, mount, executor={"quiesce_timeout": "300ms"}, worker={"max_attempts": 3, "retry_base": "1s"}
    )
    service = await start_service(config)
    url = service.api_url or ""
    created = await asyncio.to_thread(CliRunner().invoke, cli, ["--api-url", url, "workspace", "create", "retried"])
    assert created.exit_code == 0, created.output
    waiting = await asyncio.create_subprocess_exec(
        str(BIN / "wvsctl"),
        *("--api-url", url, "snapshot", "create", "retried", "--wait"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert waiting.stderr is not None and waiting.stdout is not None
    lines: list[str] = []
    while not any("attempt 1/3 failed" in line for line in lines):
        line = await asyncio.wait_for(waiting.stderr.readline(), 30)
        assert line, f"wvsctl ended before reporting the first failure: {lines}"
        lines.append(line.decode())
    task_id = lines[0].split("following task ")[1].split()[0]
    seen = await asyncio.to_thread(CliRunner().invoke, cli, ["--api-url", url, "task", "get", task_id, "--json"])
    assert json.loads(seen.stdout)["status"] in ("FAILED", "RUNNING"), "the reason came while it still retried"
    rest, stdout = await asyncio.wait_for(asyncio.gather(waiting.stderr.read(), waiting.stdout.read()), 60)
    assert await waiting.wait() == 1
    progress = "".join(lines) + rest.decode()
    assert "\x1b" not in progress, "not a terminal: plain lines, no control codes"
    failures = [line for line in progress.splitlines() if " failed: " in line]
    assert [line.split("] ")[1].split(" failed")[0] for line in failures] == [
        "  attempt 1/3",
        "  attempt 2/3",
        "  attempt 3/3",
    ]
    assert all("WVS_EXECUTOR_ERROR QUIESCE_TIMEOUT: " in line for line in failures)
    assert failures[0].endswith("next attempt in 1.0s") and failures[1].endswith("next attempt in 2.0s")
    assert progress.count(f"run `wvs agent {mount / 'retried'}` where the agent runs") == 1, "said once, naming it"
    assert "confirm the freeze" not in progress, "each attempt fails before the notice is due"
    final = dict(line.split(None, 1) for line in stdout.decode().splitlines())
    assert final["task_id"] == task_id and final["status"] == "DEAD"


async def test_wait_on_a_terminal_shows_a_live_spinner(database, mount, start_service) -> None:
    from tests.conftest import make_config

    service = await start_service(
        make_config(database, mount, executor={"quiesce_timeout": "1s"}, worker={"max_attempts": 1})
    )
    url = service.api_url or ""
    created = await asyncio.to_thread(CliRunner().invoke, cli, ["--api-url", url, "workspace", "create", "on-tty"])
    assert created.exit_code == 0, created.output
    controller, terminal = pty.openpty()
    waiting = await asyncio.create_subprocess_exec(
        *(str(BIN / "wvsctl"), "--api-url", url, "snapshot", "create", "on-tty", "--wait"),
        stdout=asyncio.subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)

    def screen() -> str:
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: wvsctl closed the terminal
                return shown.decode()
            if not chunk:
                return shown.decode()
            shown += chunk

    try:
        shown = await asyncio.wait_for(asyncio.to_thread(screen), 60)
    finally:
        os.close(controller)
    output, _ = await asyncio.wait_for(waiting.communicate(), 60)
    stdout = output.decode()
    assert waiting.returncode == 1
    assert "\x1b[" in shown and "snapshot_create  RUNNING  attempt 1/1" in shown, "a spinner, redrawn in place"
    assert "attempt 1/1 failed: WVS_EXECUTOR_ERROR QUIESCE_TIMEOUT" in shown
    assert "\x1b" not in stdout and dict(line.split(None, 1) for line in stdout.splitlines())["status"] == "DEAD"


def test_version_names_both_distributions() -> None:
    shown = CliRunner().invoke(cli, ["--version"])
    assert shown.exit_code == 0
    assert shown.output == f"wvsctl: wvs {version('wvs')}, wvs-client {version('wvs-client')}\n"


def test_shell_completion_script_and_completing_a_command() -> None:
    def wvsctl(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "wvsctl")], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
        )

    for shell in ("bash", "zsh", "fish"):
        script = wvsctl({"_WVSCTL_COMPLETE": f"{shell}_source"})
        assert script.returncode == 0, script.stderr
        assert "_WVSCTL_COMPLETE" in script.stdout and f"{shell}_complete" in script.stdout
    completed = wvsctl({"_WVSCTL_COMPLETE": "bash_complete", "COMP_WORDS": "wvsctl sn", "COMP_CWORD": "1"})
    assert completed.stdout.splitlines() == ["plain,snapshot"]
    deeper = wvsctl({"_WVSCTL_COMPLETE": "bash_complete", "COMP_WORDS": "wvsctl snapshot d", "COMP_CWORD": "2"})
    assert set(deeper.stdout.splitlines()) == {"plain,drop", "plain,diff"}, "plugin commands complete too"


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


async def test_ctrl_c_stops_following_but_not_the_task(database, tmp_path, start_service) -> None:
    from tests.conftest import make_config

    service = await start_service(make_config(database, tmp_path), planes=("api",))  # no worker: it stays PENDING
    waiting = await asyncio.create_subprocess_exec(
        *(str(BIN / "wvsctl"), "--api-url", service.api_url or "", "workspace", "create", "interrupted", "--wait"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert waiting.stderr is not None
    first = (await asyncio.wait_for(waiting.stderr.readline(), 30)).decode()
    task_id = first.split("following task ")[1].split()[0]
    waiting.send_signal(signal.SIGINT)
    _, rest = await asyncio.wait_for(waiting.communicate(), 30)
    assert waiting.returncode == 130
    assert f"stopped following task {task_id}, which goes on; follow it with: wvsctl task watch {task_id}" in (
        rest.decode()
    )
    assert "Traceback" not in rest.decode()
    task = await asyncio.to_thread(
        CliRunner().invoke, cli, ["--api-url", service.api_url or "", "task", "get", task_id, "--json"]
    )
    assert json.loads(task.stdout)["status"] == "PENDING"


async def test_any_op_is_submitted_with_params_typed_by_its_schema(wvs) -> None:
    from tests.helpers import create_workspace

    await create_workspace(wvs, "submit-cli")
    listed = await run(wvs, "op", "list")
    assert listed.exit_code == 0, listed.output
    header, *lines = listed.output.splitlines()
    assert header.split() == ["NAME", "PARAMS", "QUIESCES", "DESCRIPTION"]
    rows = {line.split()[0]: line for line in lines if not line.startswith(" ")}
    assert set(rows) >= {"snapshot_create", "set_current", "snapshot_drop", "init_workspace"}
    assert rows["snapshot_create"].split()[1:4] == ["[message]", "[labels]", "yes"]  # snapshot_id: the server's
    diff = ["snapshot_id", "against", "[quiesce=false]", "[content_check=ctime]", "yes"]
    assert rows["snapshot_diff"].split()[1:6] == diff, "optional params bracketed, with their defaults"
    assert "`" not in listed.output, "descriptions are plain text"
    description_at = header.index("DESCRIPTION")
    assert max(len(line) for line in lines) <= description_at + 60, "descriptions wrapped"
    assert lines[1].strip() == "current pointing to it.", "a description's next line under its column"

    # "42" is a string param's text, not a number: the op's schema decides.
    submitted = await run(
        wvs, "task", "submit", "snapshot_create", "--wsid", "submit-cli", "-p", "message=42", "--json"
    )
    assert submitted.exit_code == 0, submitted.output
    answer = json.loads(submitted.output)
    assert answer["op"] == "snapshot_create" and answer["params"]["message"] == "42"
    await run(wvs, "task", "cancel", answer["task_id"])

    missing = await run(wvs, "task", "submit", "set_current", "--wsid", "submit-cli", "-p", f"snapshot_id={uuid7()}")
    assert missing.exit_code != 0 and "WVS_NOT_FOUND" in missing.output
    unknown = await run(wvs, "task", "submit", "nope", "--wsid", "submit-cli")
    assert unknown.exit_code != 0 and "no loaded op 'nope'" in unknown.output and "snapshot_create" in unknown.output
    malformed = await run(wvs, "task", "submit", "snapshot_create", "--wsid", "submit-cli", "-p", "message")
    assert malformed.exit_code != 0 and "NAME=VALUE" in malformed.output


async def test_task_submit_sends_booleans_and_arrays_typed_and_waits_for_the_final_task(wvs) -> None:
    from tests.helpers import create_workspace
    from wvs_controlfile import QuiesceResponder

    await create_workspace(wvs, "typed-cli")
    (wvs.mount_path / "typed-cli" / "current" / "notes.txt").write_text("kept\n")
    with QuiesceResponder(wvs.mount_path / "typed-cli").running_in_thread():
        made = await run(wvs, "task", "submit", "snapshot_create", "--wsid", "typed-cli", "--wait", "--json")
        snapshot_id = json.loads(made.stdout)["params"]["snapshot_id"]
        (wvs.mount_path / "typed-cli" / "current" / "notes.txt").write_text("changed\n")
        diffed = await run(
            wvs,
            *("task", "submit", "snapshot_diff", "--wsid", "typed-cli", "-p", f"snapshot_id={snapshot_id}"),
            *("-p", "against=current", "-p", "quiesce=true", "--wait", "--json"),
        )
        restored = await run(
            wvs,
            *("task", "submit", "restore_paths", "--wsid", "typed-cli", "-p", f"snapshot_id={snapshot_id}"),
            *("-p", 'paths=["notes.txt"]', "--wait"),
        )
    assert diffed.exit_code == 0, diffed.output
    diff = json.loads(diffed.stdout)
    assert diff["status"] == "SUCCEEDED" and diff["params"]["quiesce"] is True
    assert diff["result"]["summary"]["modified"] == 1
    assert restored.exit_code == 0, restored.output
    final = dict(line.split(None, 1) for line in restored.stdout.splitlines())
    assert final["status"] == "SUCCEEDED" and json.loads(final["params"])["paths"] == ["notes.txt"]
    assert (wvs.mount_path / "typed-cli" / "current" / "notes.txt").read_text() == "kept\n"


async def test_audit_list_and_events_tail(wvs) -> None:
    from tests.helpers import create_workspace

    await create_workspace(wvs, "trail-cli")
    audit = await run(wvs, "audit", "list", "trail-cli")
    assert audit.exit_code == 0, audit.output
    assert audit.output.splitlines()[0].split()[:3] == ["EVENT_ID", "TS", "ACTION"]
    assert any("workspace.created" in line for line in audit.output.splitlines())
    created_row = next(line for line in audit.output.splitlines() if "workspace.created" in line)
    assert created_row.split()[-1] == "api:anonymous", "the actor readable: its type and subject"

    tail = await run(wvs, "events", "tail", "--wsid", "trail-cli", "--no-follow", "--json")
    assert tail.exit_code == 0, tail.output
    events = [json.loads(line) for line in tail.output.splitlines()]
    types = [event["type"] for event in events]
    assert types[0] == "workspace.created" and "task.succeeded" in types and "workspace.active" in types
    assert [event["event_id"] for event in events] == sorted(event["event_id"] for event in events)

    families = await run(wvs, "events", "tail", "--wsid", "trail-cli", "--no-follow", "--type", "workspace", "--json")
    assert [json.loads(line)["type"] for line in families.output.splitlines()] == [
        "workspace.created",
        "workspace.active",
    ]
    exact = await run(wvs, "events", "tail", "--wsid", "trail-cli", "--no-follow", "--type", "task.succeeded")
    header, *rows = exact.output.splitlines()
    assert header.split() == ["EVENT_ID", "TS", "TYPE", "WSID", "TASK_ID"], "a header, once, like every list"
    assert [line.split()[2] for line in rows] == ["task.succeeded"]
    assert rows[0].index("task.succeeded") == header.index("TYPE"), "rows aligned under the header"
    later = await run(
        wvs, "events", "tail", "--wsid", "trail-cli", "--no-follow", "--after", str(events[-2]["event_id"])
    )
    assert [line.split()[0] for line in later.output.splitlines()[1:]] == [str(events[-1]["event_id"])]

    # Following: the tail waits at the end of the log, prints the next event when it is recorded, and Ctrl-C
    # ends it cleanly.
    tail = await asyncio.create_subprocess_exec(
        str(BIN / "wvsctl"),
        *("--api-url", str(wvs.base_url), "events", "tail", "--wsid", "trail-cli", "--json"),
        *("--after", str(events[-1]["event_id"])),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert tail.stdout is not None and tail.stderr is not None
    waiting = asyncio.create_task(tail.stdout.readline())
    await asyncio.sleep(2.0)
    assert not waiting.done()
    disabled = await run(wvs, "workspace", "disable", "trail-cli")
    assert disabled.exit_code == 0, disabled.output
    new = json.loads(await asyncio.wait_for(waiting, 10))
    assert new["type"] == "workspace.disabled" and new["event_id"] > events[-1]["event_id"]
    tail.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(tail.wait(), 10) == 0
    assert await tail.stderr.read() == b"", "Ctrl-C ends it without a traceback"


def test_param_values_are_typed_by_the_ops_schema() -> None:
    schema = {
        "properties": {
            "name": {"type": "string"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "copies": {"type": "integer"},
            "paths": {"type": "array", "items": {"type": "string"}},
        }
    }
    pairs = ("name=2", "note=true", "copies=2", 'paths=["a", "b=c"]', "unknown=x y", "empty=")
    assert parse_params(pairs, schema) == {
        "name": "2",
        "note": "true",
        "copies": 2,
        "paths": ["a", "b=c"],
        "unknown": "x y",  # not JSON: passed as text, for the API to judge
        "empty": "",
    }


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "[" * 5000 + "]" * 5000])
def test_a_param_that_is_no_json_value_is_refused_before_anything_is_sent(value: str) -> None:
    schema = {"properties": {"copies": {"type": "integer"}}}
    with pytest.raises(click.BadParameter):
        parse_params((f"copies={value}",), schema)


async def test_labelled_snapshots_and_retention_get_set_plan(wvs) -> None:
    from tests.helpers import create_workspace
    from wvs_controlfile import QuiesceResponder

    await create_workspace(wvs, "cli-ret")
    (wvs.mount_path / "cli-ret" / "current" / "notes.txt").write_text("hello\n")

    async def snap(*extra: str) -> str:
        made = await run(wvs, "snapshot", "create", "cli-ret", "--wait", "--json", *extra)
        assert made.exit_code == 0, made.output
        return str(json.loads(made.stdout)["params"]["snapshot_id"])

    with QuiesceResponder(wvs.mount_path / "cli-ret").running_in_thread():
        pinned = await snap("-m", "pinned", "--label", "pin=yes", "--label", "by=cli")
        middle = await snap()
        newest = await snap()

    listed = await run(wvs, "snapshot", "list", "cli-ret", "--label", "pin=yes")
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.output.splitlines()
    assert header.split() == ["SNAPSHOT_ID", "CREATED_AT", "LABELS", "ENTRIES", "BYTES", "MESSAGE"]
    assert len(rows) == 1 and rows[0].split()[0] == pinned
    assert rows[0].split()[2] == "by=cli,pin=yes"
    assert rows[0].split()[3:5] == ["1", "6"], "one file of 6 bytes"
    every = json.loads((await run(wvs, "snapshot", "list", "cli-ret", "--json")).output)["items"]
    assert [item["snapshot_id"] for item in every] == [newest, middle, pinned]
    assert every[2]["labels"] == {"pin": "yes", "by": "cli"} and every[0]["labels"] == {}
    both = await run(wvs, "snapshot", "list", "cli-ret", "--label", "pin=yes", "--label", "by=other", "--json")
    assert json.loads(both.output)["items"] == [], "every --label must match"
    no_value = await run(wvs, "snapshot", "create", "cli-ret", "--label", "pin")
    assert no_value.exit_code != 0 and "'pin' is not KEY=VALUE" in no_value.output
    twice = await run(wvs, "snapshot", "list", "cli-ret", "--label", "a=1", "--label", "a=2")
    assert twice.exit_code != 0 and "label 'a' is given twice" in twice.output
    bad_key = await run(wvs, "snapshot", "create", "cli-ret", "--label", "Bad=1")
    assert bad_key.exit_code != 0 and "WVS_BAD_REQUEST" in bad_key.output

    default = await run(wvs, "retention", "get", "cli-ret")
    assert default.exit_code == 0, default.output
    assert "source       config" in default.output and "keep everything (no rule set)" in default.output

    set_ = await run(wvs, "retention", "set", "cli-ret", "--keep-last", "1", "--keep-label", "pin")
    assert set_.exit_code == 0, set_.output
    lines = dict(line.split(None, 1) for line in set_.output.splitlines())
    assert lines["source"] == "workspace" and lines["rules"] == "--keep-last 1 --keep-label pin"
    assert json.loads((await run(wvs, "retention", "get", "cli-ret", "--json")).output)["policy"]["keep_last"] == 1

    planned = await run(wvs, "retention", "plan", "cli-ret")
    assert planned.exit_code == 0, planned.output
    header, *rows = [line for line in planned.output.splitlines() if not line.startswith("keep ")]
    assert header.split() == ["SNAPSHOT_ID", "CREATED_AT", "LABELS", "ACTION", "REASONS"]
    table = {row.split()[0]: row for row in rows}
    assert list(table) == [newest, middle, pinned], "every snapshot, newest first"
    assert table[newest].split()[3:] == ["keep", "last", "snapshot"]
    assert table[middle].split()[2:] == ["-", "drop", "-"]
    assert table[pinned].split()[2:] == ["by=cli,pin=yes", "keep", "has", "label", "pin"]
    assert "keep 2, drop 1" in planned.output
    as_json = json.loads((await run(wvs, "retention", "plan", "cli-ret", "--json")).output)
    assert as_json == (await wvs.get("/v1/workspaces/cli-ret/retention:plan")).json()
    assert as_json["drop"] == [{"snapshot_id": middle}]
    still = json.loads((await run(wvs, "snapshot", "list", "cli-ret", "--json")).output)["items"]
    assert len(still) == 3, "a plan changes nothing"

    neither = await run(wvs, "retention", "set", "cli-ret")
    assert neither.exit_code == 2 and "--clear" in neither.output
    both_ways = await run(wvs, "retention", "set", "cli-ret", "--clear", "--keep-last", "2")
    assert both_ways.exit_code == 2
    bad = await run(wvs, "retention", "set", "cli-ret", "--keep-within", "3x")
    assert bad.exit_code != 0 and "WVS_BAD_REQUEST" in bad.output and "keep_within" in bad.output
    cleared = await run(wvs, "retention", "set", "cli-ret", "--clear", "--json")
    assert cleared.exit_code == 0 and json.loads(cleared.output)["source"] == "config"
    missing = await run(wvs, "retention", "plan", "nope-nope")
    assert missing.exit_code != 0 and "WVS_NOT_FOUND" in missing.output
