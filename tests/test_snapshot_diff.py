"""``snapshot_diff`` end to end on PostgreSQL and JuiceFS (SPEC §2): the data-fidelity corpus and a known
change set through snapshot ↔ snapshot and snapshot ↔ current, nothing for untouched trees, the change list
read page by page through ``GET /v1/tasks/{task_id}/result``, and a hostile agent's ``current``."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from tests.conftest import StartService, make_config
from tests.fidelity import OLD, build_corpus
from tests.helpers import create_workspace, key, wait_task
from tests.test_diff_trees import apply_change_set
from wvs_core.cli.wvsctl import cli
from wvs_core.plugins import make_plugin_manager
from wvs_diff import op as diff_op
from wvs_diff.compare import path_key
from wvs_diff.render import change_to_json

pytestmark = pytest.mark.juicefs

TEN_GB = 10 * (1 << 30)


@pytest.fixture
async def client(database: str, mount: Path, start_service: StartService) -> Any:
    """The whole service on JuiceFS, with the ``none`` quiesce (no agent answers freezes here)."""
    service = await start_service(make_config(database, mount, plugins={"quiesce": "none"}))
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=60) as http:
        yield http


async def snapshot(client: httpx.AsyncClient, wsid: str) -> str:
    accepted = (await client.post(f"/v1/workspaces/{wsid}/snapshots", json={}, headers=key())).json()
    assert (await wait_task(client, accepted["task_id"], timeout=120))["status"] == "SUCCEEDED"
    return str(accepted["snapshot_id"])


async def submit_diff(client: httpx.AsyncClient, wsid: str, **params: Any) -> dict[str, Any]:
    response = await client.post(
        f"/v1/workspaces/{wsid}/tasks", json={"op": "snapshot_diff", "params": params}, headers=key()
    )
    assert response.status_code == 202, response.text
    return await wait_task(client, response.json()["task_id"], timeout=120)


async def all_pages(client: httpx.AsyncClient, task_id: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"/v1/tasks/{task_id}/result", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def changes(client: httpx.AsyncClient, wsid: str, **params: Any) -> list[dict[str, Any]]:
    task = await submit_diff(client, wsid, **params)
    assert task["status"] == "SUCCEEDED", task
    assert task["result"]["truncated"] is False
    listed = await all_pages(client, task["task_id"], 100)
    assert "changes" not in task["result"], "the task view leaves the list to the result's pages"
    assert task["result_page"] == {
        "key": "changes",
        "total": len(listed),
        "href": f"/v1/tasks/{task['task_id']}/result",
    }
    assert task["result"]["summary"]["added"] == sum(item["change"] == "added" for item in listed)
    return listed


async def test_every_kind_of_change_is_listed_and_untouched_trees_differ_in_nothing(
    client: httpx.AsyncClient, mount: Path
) -> None:
    await create_workspace(client, "diffed")
    live = mount / "diffed" / "current"
    (mount / "outside-the-tree").mkdir()
    build_corpus(live, mount / "outside-the-tree")
    (live / "47-twins").mkdir()
    for name in ("a", "b"):
        (live / "47-twins" / name).write_bytes(b"twins\n")
        os.utime(live / "47-twins" / name, ns=(OLD, OLD))
    first = await snapshot(client, "diffed")
    assert await changes(client, "diffed", snapshot_id=first, against=first) == []
    assert await changes(client, "diffed", snapshot_id=first, against="current") == []

    expected, unseen = apply_change_set(live)  # the default ctime check sees the rewrite with its mtime set back
    wanted = [change_to_json(item) for item in sorted([*expected, unseen], key=lambda item: path_key(item.path))]
    assert {item["change"] for item in wanted} == {"added", "removed", "modified", "type_changed", "meta_changed"}
    assert [item for item in wanted if "path_b64" in item], "the corpus has a name that is not UTF-8"
    started = time.monotonic()
    assert await changes(client, "diffed", snapshot_id=first, against="current") == wanted
    print(f"\nsnapshot ↔ current, {len(wanted)} changes: {time.monotonic() - started:.2f}s")
    second = await snapshot(client, "diffed")
    started = time.monotonic()
    assert await changes(client, "diffed", snapshot_id=first, against=second) == wanted
    print(f"snapshot ↔ snapshot, {len(wanted)} changes: {time.monotonic() - started:.2f}s")
    assert await changes(client, "diffed", snapshot_id=second, against="current", quiesce=True) == []
    third = await snapshot(client, "diffed")
    assert await changes(client, "diffed", snapshot_id=second, against=third) == []

    metadata_only = await changes(client, "diffed", snapshot_id=first, against=second, content_check="metadata")
    assert change_to_json(unseen) not in metadata_only and len(metadata_only) == len(wanted) - 1

    # The list page by page: every item once, in the list's order, whatever the page size.
    task = await submit_diff(client, "diffed", snapshot_id=first, against=second)
    for limit in (1, 7, 100):
        assert await all_pages(client, task["task_id"], limit) == wanted
    one = (await client.get(f"/v1/tasks/{task['task_id']}/result")).json()
    assert len(one["items"]) == 20 and one["next_cursor"], "20 by default"


async def test_the_list_is_capped_and_the_summary_counts_everything(
    client: httpx.AsyncClient, mount: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_workspace(client, "capped")
    live = mount / "capped" / "current"
    first = await snapshot(client, "capped")
    for n in range(30):
        (live / f"f{n:02}").write_bytes(b"x" * n)
    monkeypatch.setattr(diff_op, "MAX_LISTED_CHANGES", 12)
    task = await submit_diff(client, "capped", snapshot_id=first, against="current")
    result = task["result"]
    assert result["truncated"] is True
    assert result["summary"] == {
        "added": 30, "removed": 0, "modified": 0, "type_changed": 0, "meta_changed": 0,
        "bytes_added": sum(range(30)), "bytes_removed": 0,
    }  # fmt: skip
    assert [item["path"] for item in await all_pages(client, task["task_id"], 5)] == [f"f{n:02}" for n in range(12)]


async def test_result_pages_refuse_bad_limits_cursors_and_tasks(
    client: httpx.AsyncClient, database: str, mount: Path, start_service: StartService
) -> None:
    await create_workspace(client, "paged")
    live = mount / "paged" / "current"
    first = await snapshot(client, "paged")
    for n in range(5):
        (live / f"f{n}").write_bytes(b"")
    task = await submit_diff(client, "paged", snapshot_id=first, against="current")
    url = f"/v1/tasks/{task['task_id']}/result"
    page = (await client.get(url, params={"limit": "2"})).json()
    assert [item["path"] for item in page["items"]] == ["f0", "f1"]

    def cursor(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    keyset = (await client.get("/v1/tasks", params={"limit": "1"})).json()["next_cursor"]
    for params in (
        {"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"limit": "١٢"}, {"cursor": ""}, {"order": "x"},
        {"cursor": "!!"}, {"cursor": "A" * 300}, {"cursor": keyset}, {"cursor": cursor([0])}, {"cursor": cursor([5])},
        {"cursor": cursor([2**70])}, {"cursor": cursor([True])}, {"cursor": cursor(["2"])}, {"cursor": cursor({})},
        {"cursor": cursor([[[1]]])}, {"cursor": "eyJ"},
    ):  # fmt: skip
        response = await client.get(url, params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["code"] == "WVS_BAD_REQUEST"
    assert (await client.get(url, params={"cursor": page["next_cursor"]})).json()["items"][0]["path"] == "f2"

    assert (await client.get(f"/v1/tasks/{'0' * 8}-0000-7000-8000-{'0' * 12}/result")).status_code == 404
    snapshot_task = (await client.get("/v1/tasks", params={"op": "snapshot_create", "limit": "1"})).json()["items"][0]
    refused = await client.get(f"/v1/tasks/{snapshot_task['task_id']}/result")
    assert refused.status_code == 400 and "no list" in refused.json()["error"]["message"]

    api_only = await start_service(make_config(database, mount), planes=("api",))  # nothing runs its tasks
    async with httpx.AsyncClient(base_url=api_only.api_url or "", timeout=30) as idle:
        pending = await idle.post(
            "/v1/workspaces/paged/tasks",
            json={"op": "snapshot_diff", "params": {"snapshot_id": first, "against": first}},
            headers=key(),
        )
        waiting = await idle.get(f"/v1/tasks/{pending.json()['task_id']}/result")
    assert waiting.status_code == 409 and waiting.json()["error"]["code"] == "WVS_CONFLICT_LOCKED"


async def test_params_are_validated_and_referenced_snapshots_must_exist(client: httpx.AsyncClient) -> None:
    await create_workspace(client, "checked")
    first = await snapshot(client, "checked")
    missing = "01900000-0000-7000-8000-000000000000"
    for params, status in (
        ({"snapshot_id": first}, 400),
        ({"snapshot_id": first, "against": "live"}, 400),
        ({"snapshot_id": "current", "against": first}, 400),
        ({"snapshot_id": first, "against": first, "quiesce": True}, 400),
        ({"snapshot_id": first, "against": "current", "content_check": "sha"}, 400),
        ({"snapshot_id": first, "against": missing}, 404),
        ({"snapshot_id": missing, "against": "current"}, 404),
    ):
        response = await client.post(
            "/v1/workspaces/checked/tasks", json={"op": "snapshot_diff", "params": params}, headers=key()
        )
        assert response.status_code == status, (params, response.text)
    ops = {item["name"]: item for item in (await client.get("/v1/ops")).json()["items"]}
    assert set(ops["snapshot_diff"]["params_schema"]["required"]) == {"snapshot_id", "against"}
    # What drop protection keeps while a diff is unfinished: both snapshots, never "current".
    assert diff_op.SnapshotDiff().references({"snapshot_id": first, "against": missing}) == [first, missing]
    assert diff_op.SnapshotDiff().references({"snapshot_id": first, "against": "current"}) == [first]


async def test_a_hostile_current_cannot_hang_the_diff_or_lead_it_outside(
    client: httpx.AsyncClient, mount: Path
) -> None:
    await create_workspace(client, "hostile")
    live = mount / "hostile" / "current"
    (live / "swap").mkdir()
    (live / "swap" / "inside").write_bytes(b"inside\n")
    (live / "big.img").write_bytes(b"")
    os.truncate(live / "big.img", TEN_GB)
    (live / "was-a-file").write_bytes(b"x" * 11)
    first = await snapshot(client, "hostile")

    os.mkfifo(live / "pipe")
    os.unlink(live / "was-a-file")
    os.mkfifo(live / "was-a-file")
    os.symlink("loop-b", live / "loop-a")
    os.symlink("loop-a", live / "loop-b")
    os.symlink("/etc/passwd", live / "passwd")
    stop = threading.Event()

    def swap() -> None:  # a directory and a link to / trade places as fast as the agent can
        while not stop.is_set():
            os.rename(live / "swap", live / "swap-dir")
            os.symlink("/", live / "swap")
            os.unlink(live / "swap")
            os.rename(live / "swap-dir", live / "swap")

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    try:
        started = time.monotonic()
        task = await submit_diff(client, "hostile", snapshot_id=first, against="current")
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        swapper.join()
    assert task["status"] == "SUCCEEDED", task
    print(f"\nhostile current (FIFOs, loops, links out, a swapping link): {elapsed:.2f}s")
    listed = {item["path"]: item for item in await all_pages(client, task["task_id"], 100)}
    assert {path for path in listed if path.startswith("swap/")} <= {"swap/inside"}, "walked through the link"
    assert listed["was-a-file"]["change"] == "type_changed" and listed["pipe"]["type_after"] == "fifo"
    assert listed["passwd"] == {**listed["passwd"], "change": "added", "type_after": "symlink", "size_after": 11}
    assert "big.img" not in listed, "10 GB of the same size, mtime and ctime: decided without a read"
    assert {listed["loop-a"]["type_after"], listed["loop-b"]["type_after"]} == {"symlink"}

    # Compared by content (another mtime, every byte read: FUSE reports no holes), 10 GB cannot hold the op
    # past a cancel: it stops at the next chunk.
    os.utime(live / "big.img", ns=(OLD, OLD))
    response = await client.post(
        "/v1/workspaces/hostile/tasks",
        json={"op": "snapshot_diff", "params": {"snapshot_id": first, "against": "current", "content_check": "full"}},
        headers=key(),
    )
    task_id = response.json()["task_id"]
    await wait_task(client, task_id, until={"RUNNING"})
    await asyncio.sleep(1)
    assert (await client.post(f"/v1/tasks/{task_id}:cancel", json={})).status_code == 200
    started = time.monotonic()
    assert (await wait_task(client, task_id, timeout=10))["status"] == "CANCELED"
    print(f"10 GB compared by content: canceled after {time.monotonic() - started:.2f}s")

    shutil.rmtree(live / "swap")
    current = mount / "hostile" / "current"
    os.unlink(current)
    os.symlink("/", current)  # current itself now leads out of the view
    tampered = await submit_diff(client, "hostile", snapshot_id=first, against="current")
    assert tampered["status"] == "DEAD" and tampered["error"]["reason"] == "WORKSPACE_TAMPERED", tampered


async def test_wvsctl_snapshot_diff_prints_the_stat_or_the_items(client: httpx.AsyncClient, mount: Path) -> None:
    make_plugin_manager().hook.wvs_register_ctl_commands(cli=cli)  # as wvsctl starts
    await create_workspace(client, "shown")
    live = mount / "shown" / "current"
    (live / "kept").write_bytes(b"kept\n")
    (live / "gone").write_bytes(b"gone\n")
    first = await snapshot(client, "shown")
    (live / "kept").write_bytes(b"kept, and longer\n")
    os.unlink(live / "gone")
    (live / "dir").mkdir()
    (live / "dir" / os.fsdecode(b"new\n\xff")).write_bytes(b"1234")

    async def wvsctl(*args: str) -> Result:
        return await asyncio.to_thread(CliRunner().invoke, cli, ["--api-url", str(client.base_url), *args])

    shown = await wvsctl("snapshot", "diff", "shown", first, "--wait")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines() == [
        " dir/            | added directory",
        ' "dir/new\\n\\377" | added file +4',
        " gone            | removed file -5",
        " kept            | modified file 5 -> 17 (mtime)",
        " 4 entries changed (2 added, 1 removed, 1 modified), 16 bytes added(+), 5 bytes removed(-)",
    ]
    raw = await wvsctl("snapshot", "diff", "shown", first, "--against", "current", "--wait", "--json")
    items = json.loads(raw.stdout)
    assert [item["change"] for item in items] == ["added", "added", "removed", "modified"]
    assert base64.b64decode(items[1]["path_b64"]) == b"dir/new\n\xff"
    failed = await wvsctl("snapshot", "diff", "shown", first, "--against", "nope")
    assert failed.exit_code != 0 and "WVS_BAD_REQUEST" in failed.output
