"""Ops' own events and metrics (``TaskOp.event_types``, ``WorkspaceTransaction.record_event``,
``TaskOp.count_outcome``) end to end on PostgreSQL and JuiceFS: a fork, a partial restore and a diff each record
their event in the transaction of their success, listed by ``GET /v1/events`` and handed to notifiers, counted in
their plugin's metrics; a diff's task view and ``task.succeeded`` event leave its change list out (``result_page``);
the types are discoverable (``GET /v1/ops``, the OpenAPI document) and a notifier may subscribe to them."""

from __future__ import annotations

import asyncio
import types
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client import REGISTRY

from tests.conftest import StartService, make_config
from tests.helpers import create_workspace, key, wait_task
from tests.plugins.extra_notifier import MemoryNotifier
from tests.test_events import event_log
from wvs_core.config import config_from_dict
from wvs_core.db.outcomes import Recorded
from wvs_core.db.transaction import SqlWorkspaceTransaction
from wvs_core.errors import ConfigError
from wvs_core.events import EVENT_TYPES
from wvs_core.models import ExecutionResult, TaskStatus
from wvs_core.ops import TaskOp
from wvs_core.plugins import PluginRegistry

pytestmark = pytest.mark.juicefs

OP_EVENTS = {
    "workspace.forked": "workspace_fork",
    "current.restored": "restore_paths",
    "snapshot.diffed": "snapshot_diff",
}


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


@pytest.fixture
async def client(database: str, mount: Path, start_service: StartService) -> Any:
    """The whole service on JuiceFS (``none`` quiesce), with the in-memory notifier."""
    plugins = {"quiesce": "none", "modules": ["tests.plugins.extra_notifier"], "notifiers": ["memory"]}
    MemoryNotifier.events.clear()
    service = await start_service(make_config(database, mount, plugins=plugins))
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=60) as http:
        yield http


async def accepted_task(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=key())
    assert response.status_code == 202, response.text
    answer = response.json()
    task = await wait_task(client, answer.get("task_id") or answer["init_task_id"], timeout=120)
    assert task["status"] == "SUCCEEDED", task
    return task


def after_success(log: list[dict[str, Any]], task_id: str) -> list[str]:
    """The types of the events recorded with ``task_id``'s success, in order (its ``task.succeeded`` first)."""
    start = next(n for n, event in enumerate(log) if event["type"] == "task.succeeded" and event["task_id"] == task_id)
    return [event["type"] for event in log[start:] if event["task_id"] == task_id]


async def test_fork_restore_and_diff_record_their_events_and_count_their_metrics(
    client: httpx.AsyncClient, mount: Path
) -> None:
    forks, paths = sample("wvs_fork_total"), sample("wvs_restore_paths_total")
    added, modified = (sample("wvs_diff_entries_total", {"change": kind}) for kind in ("added", "modified"))
    await create_workspace(client, "op-ev")
    live = mount / "op-ev" / "current"
    (live / "src").mkdir()
    (live / "src" / "a.py").write_text("v1")
    (live / "gone.txt").write_text("x")
    first = (await accepted_task(client, "/v1/workspaces/op-ev/snapshots", {}))["result"]["snapshot_id"]

    fork = await accepted_task(
        client, f"/v1/workspaces/op-ev/snapshots/{first}:fork", {"wsid": "op-ev-fork", "owner": "forker"}
    )
    (live / "src" / "a.py").write_text("v2, longer")
    (live / "new.txt").write_text("new")
    diff = await accepted_task(
        client, f"/v1/workspaces/op-ev/snapshots/{first}:diff", {"against": "current", "content_check": "full"}
    )
    restore = await accepted_task(
        client, "/v1/workspaces/op-ev/current:restore", {"snapshot_id": first, "paths": ["src/a.py", "src", "new.txt"]}
    )

    forked_log, log = await event_log(client, "op-ev-fork"), await event_log(client, "op-ev")
    assert after_success(forked_log, fork["task_id"]) == ["task.succeeded", "workspace.active", "workspace.forked"]
    forked = forked_log[-1]
    assert forked["wsid"] == "op-ev-fork" and forked["actor"]["type"] == "scheduler"
    assert forked["data"] == {"op": "workspace_fork", "source_wsid": "op-ev", "source_snapshot_id": first}

    assert after_success(log, diff["task_id"]) == ["task.succeeded", "snapshot.diffed"]
    diffed = next(event for event in log if event["type"] == "snapshot.diffed")
    summary = {"added": 1, "removed": 0, "modified": 1, "type_changed": 0, "meta_changed": 0}
    assert {kind: diffed["data"]["summary"][kind] for kind in summary} == summary
    assert diffed["data"]["against"] == "current" and diffed["data"]["truncated"] is False

    restored_types = ["task.succeeded", "current.changed", "snapshot.created", "current.restored"]
    assert after_success(log, restore["task_id"]) == restored_types
    restored = log[-1]
    assert restored["data"] == {
        "op": "restore_paths",
        "snapshot_id": first,
        "paths": ["src", "new.txt"],  # src/a.py is below src
        "current_path": restore["result"]["current_path"],
        "kept_snapshot_id": restore["result"]["kept_snapshot_id"],
    }
    assert (live / "src" / "a.py").read_text() == "v1" and not (live / "new.txt").exists()

    assert sample("wvs_fork_total") == forks + 1
    assert sample("wvs_restore_paths_total") == paths + 2
    assert sample("wvs_diff_entries_total", {"change": "added"}) == added + 1
    assert sample("wvs_diff_entries_total", {"change": "modified"}) == modified + 1

    for _ in range(200):  # the dispatcher hands them to the notifier after their commit
        delivered = {event.type for event in MemoryNotifier.events}
        if set(OP_EVENTS) <= delivered:
            break
        await asyncio.sleep(0.05)
    assert set(OP_EVENTS) <= delivered


async def test_a_diffs_task_view_and_event_leave_its_change_list_to_the_result_pages(
    client: httpx.AsyncClient, mount: Path
) -> None:
    await create_workspace(client, "op-page")
    first = (await accepted_task(client, "/v1/workspaces/op-page/snapshots", {}))["result"]["snapshot_id"]
    for n in range(25):
        (mount / "op-page" / "current" / f"f{n:02}").write_text(str(n))
    diff = await accepted_task(client, f"/v1/workspaces/op-page/snapshots/{first}:diff", {"against": "current"})
    href = f"/v1/tasks/{diff['task_id']}/result"
    assert "changes" not in diff["result"] and diff["result"]["summary"]["added"] == 25
    assert diff["result_page"] == {"key": "changes", "total": 25, "href": href}
    listed = (await client.get("/v1/tasks", params={"wsid": "op-page", "op": "snapshot_diff"})).json()["items"]
    assert [(task["result_page"], "changes" in task["result"]) for task in listed] == [(diff["result_page"], False)]
    page = (await client.get(href, params={"limit": 100})).json()
    assert [item["path"] for item in page["items"]] == [f"f{n:02}" for n in range(25)]
    log = await event_log(client, "op-page")
    succeeded = next(e for e in log if e["task_id"] == diff["task_id"] and e["type"] == "task.succeeded")
    assert "changes" not in succeeded["data"]["after"]["result"]
    assert succeeded["data"]["after"]["result_page"] == diff["result_page"]
    snapshot_task = (await client.get("/v1/tasks", params={"wsid": "op-page", "op": "snapshot_create"})).json()
    assert snapshot_task["items"][0]["result_page"] is None, "an op without a paged result shows it whole"


async def test_the_ops_event_types_are_listed_documented_and_subscribable(client: httpx.AsyncClient) -> None:
    ops = {op["name"]: op["event_types"] for op in (await client.get("/v1/ops")).json()["items"]}
    assert {name: op for op, types in ops.items() for name in types} == OP_EVENTS
    assert ops["snapshot_create"] == {}
    document = yaml.safe_load((await client.get("/v1/openapi.yaml")).text)
    event_type = document["components"]["schemas"]["Event"]["properties"]["type"]
    assert set(event_type["enum"]) == EVENT_TYPES | set(OP_EVENTS)
    assert all(f"`{name}`" in event_type["description"] for name in OP_EVENTS)

    def webhook(events: list[str]) -> dict[str, Any]:
        endpoint = {"url": "http://127.0.0.1:9/in", "secret": "s", "events": events}
        return {"notifiers": ["webhook"], "settings": {"webhook": {"endpoints": [endpoint]}}}

    plugins = config_from_dict({"plugins": webhook(["workspace.forked", "task.dead"])}).plugins
    registry = PluginRegistry.load(plugins)
    (built,) = registry.build_notifiers(plugins)
    assert built.subscriptions()[0].types == {"workspace.forked", "task.dead"}
    await built.close()
    with pytest.raises(ConfigError, match=r"plugins.settings.webhook: .*unknown event type\(s\) task.exploded"):
        registry.build_notifiers(config_from_dict({"plugins": webhook(["task.exploded"])}).plugins)


class Declares(TaskOp):
    """An op declaring event types (``event_types`` set per test)."""

    name = "declares"
    params_type = dict

    async def execute(self, ctx: Any) -> ExecutionResult:
        return ExecutionResult(success=True)


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"Workspace.Forked!": ""}, "not <noun>.<verb>"),
        ({"thing.done\n": ""}, "not <noun>.<verb>"),
        ({"task.succeeded": ""}, "one of the core's"),
        ({"task.cancel_requested": ""}, "one of the core's"),
        ({"workspace.forked": ""}, "declared by op .* too"),
    ],
)
def test_an_op_declaring_a_malformed_core_or_taken_event_type_stops_the_process(
    declared: dict[str, str], message: str
) -> None:
    op = type("Bad", (Declares,), {"event_types": declared})()

    class Plugin:
        from wvs_core import hookimpl

        @hookimpl
        def wvs_register_ops(self) -> list[TaskOp]:
            return [op]

    with pytest.raises(ConfigError, match=message):
        PluginRegistry.load(config_from_dict({}).plugins, extra=(Plugin(),))


async def test_a_rule_recording_a_type_its_op_does_not_declare_is_refused_before_any_write() -> None:
    task = types.SimpleNamespace(op="declares", wsid="w", task_id="t", request_id=None)
    tx = SqlWorkspaceTransaction(None, task, lambda op, params: [], op_event_types={"thing.done"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"op declares does not declare the event type 'thing\.undone'"):
        await tx.record_event("thing.undone", {})


def test_an_op_whose_metric_fails_does_not_undo_the_recorded_end(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Declares):
        def count_outcome(self, task: Any) -> None:
            raise RuntimeError("a broken metric")

    task = types.SimpleNamespace(op="declares", task_id="t-1", status=TaskStatus.DEAD, started_at=None, ended_at=None)
    Recorded(task, TaskStatus.RUNNING, [], Broken()).count()  # type: ignore[arg-type]
    assert "op declares failed to count the end of task t-1" in caplog.text
