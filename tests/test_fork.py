"""workspace_fork end to end on PostgreSQL and JuiceFS: a new workspace (own owner, own FIFO) starts from a
snapshot of another; the source snapshot cannot be dropped while the fork is unfinished; forks of forks work;
fsck finds nothing to repair afterwards."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tests.conftest import StartService, make_config
from tests.helpers import (
    assert_fsck_clean,
    create_workspace,
    key,
    populate_tree,
    snapshots_dir,
    tree_signature,
    wait_task,
)
from wvs_controlfile import QuiesceResponder
from wvs_core.cli.wvsctl import cli
from wvs_core.ids import uuid7
from wvs_core.plugins import make_plugin_manager


async def snapshot(client: httpx.AsyncClient, wsid: str) -> str:
    accepted = (await client.post(f"/v1/workspaces/{wsid}/snapshots", json={}, headers=key())).json()
    assert (await wait_task(client, accepted["task_id"]))["status"] == "SUCCEEDED"
    return str(accepted["snapshot_id"])


def fork_body(source: str, snapshot_id: str, new_wsid: str) -> dict[str, Any]:
    init = {"op": "workspace_fork", "params": {"source_wsid": source, "snapshot_id": snapshot_id}}
    return {"wsid": new_wsid, "owner": "forker", "init": init}


async def fork(client: httpx.AsyncClient, source: str, snapshot_id: str, new_wsid: str) -> dict[str, Any]:
    response = await client.post("/v1/workspaces", json=fork_body(source, snapshot_id, new_wsid), headers=key())
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "PROVISIONING"
    return await wait_task(client, response.json()["init_task_id"])


async def test_fork_clones_the_snapshot_into_a_new_workspace_with_its_own_fifo(
    wvs: Any, database: str, mount: Path
) -> None:
    await create_workspace(wvs, "fork-src")
    source_root: Path = mount / "fork-src"
    populate_tree(source_root / "current")
    with QuiesceResponder(source_root).running_in_thread():
        snapshot_id = await snapshot(wvs, "fork-src")
    frozen = tree_signature(snapshots_dir(mount, "fork-src") / snapshot_id)
    (source_root / "current" / "after-the-snapshot.txt").write_text("not in the fork")

    task = await fork(wvs, "fork-src", snapshot_id, "fork-one")
    assert task["status"] == "SUCCEEDED", task
    assert task["op"] == "workspace_fork" and task["wsid"] == "fork-one"
    workspace = (await wvs.get("/v1/workspaces/fork-one")).json()
    assert workspace["state"] == "ACTIVE" and workspace["owner"] == "forker"
    assert workspace["current_snapshot_id"] is None, "the fork has no snapshot of its own yet"
    forked_current = mount / "fork-one" / "current"
    assert tree_signature(forked_current) == frozen, "byte for byte the snapshot"
    assert tree_signature(snapshots_dir(mount, "fork-src") / snapshot_id) == frozen, "the source is unchanged"
    assert (source_root / "current" / "after-the-snapshot.txt").exists()

    (forked_current / "fork-only.txt").write_text("the fork's own work")
    assert not (source_root / "current" / "fork-only.txt").exists(), "the fork writes its own tree"
    with QuiesceResponder(mount / "fork-one").running_in_thread():
        own = await snapshot(wvs, "fork-one")
    assert (snapshots_dir(mount, "fork-one") / own / "fork-only.txt").read_text() == "the fork's own work"

    # A fork of a fork: the source is a snapshot the forked workspace made.
    task = await fork(wvs, "fork-one", own, "fork-two")
    assert task["status"] == "SUCCEEDED", task
    assert tree_signature(mount / "fork-two" / "current") == tree_signature(snapshots_dir(mount, "fork-one") / own)
    await assert_fsck_clean(database, mount)


async def test_the_source_snapshot_cannot_be_dropped_while_the_fork_is_unfinished(
    database: str, mount: Path, start_service: StartService
) -> None:
    config = make_config(database, mount)
    everything = await start_service(config)
    async with httpx.AsyncClient(base_url=everything.api_url or "", timeout=30) as client:
        await create_workspace(client, "held-src")
        with QuiesceResponder(mount / "held-src").running_in_thread():
            snapshot_id = await snapshot(client, "held-src")
    await everything.stop()

    api_only = await start_service(config, planes=("api",))  # no scheduler: the fork stays PENDING
    async with httpx.AsyncClient(base_url=api_only.api_url or "", timeout=30) as client:
        accepted = await client.post("/v1/workspaces", json=fork_body("held-src", snapshot_id, "held"), headers=key())
        assert accepted.status_code == 202, accepted.text
        drop = await client.delete(f"/v1/workspaces/held-src/snapshots/{snapshot_id}", headers=key())
        assert drop.status_code == 409, drop.text
        assert drop.json()["error"]["code"] == "WVS_CONFLICT_SNAPSHOT_IN_USE"
        assert accepted.json()["init_task_id"] in drop.json()["error"]["message"]

        await start_service(config, planes=("worker", "executor"))
        task = await wait_task(client, accepted.json()["init_task_id"])
        assert task["status"] == "SUCCEEDED", task
        drop = await client.delete(f"/v1/workspaces/held-src/snapshots/{snapshot_id}", headers=key())
        assert drop.status_code == 202, drop.text
        assert (await wait_task(client, drop.json()["task_id"]))["status"] == "SUCCEEDED"
        assert (mount / "held" / "current").is_dir(), "the fork outlives its source snapshot"

        gone = await client.post("/v1/workspaces", json=fork_body("held-src", snapshot_id, "too-late"), headers=key())
        assert gone.status_code == 404, gone.text
        assert gone.json()["error"]["code"] == "WVS_NOT_FOUND"
    await assert_fsck_clean(database, mount)


async def test_retry_init_of_a_failed_fork_forks_again(database: str, mount: Path, start_service: StartService) -> None:
    """A fork that ended without its tree (here: canceled before it ran) is INIT_FAILED; retry-init repeats the
    fork — same source, a fresh live tree id — never an empty init_workspace."""
    config = make_config(database, mount)
    everything = await start_service(config)
    async with httpx.AsyncClient(base_url=everything.api_url or "", timeout=30) as client:
        await create_workspace(client, "retry-src")
        populate_tree(mount / "retry-src" / "current")
        with QuiesceResponder(mount / "retry-src").running_in_thread():
            snapshot_id = await snapshot(client, "retry-src")
    await everything.stop()

    api_only = await start_service(config, planes=("api",))
    async with httpx.AsyncClient(base_url=api_only.api_url or "", timeout=30) as client:
        accepted = await client.post(
            "/v1/workspaces", json=fork_body("retry-src", snapshot_id, "retried"), headers=key()
        )
        first = (await client.get(f"/v1/tasks/{accepted.json()['init_task_id']}")).json()
        canceled = await client.post(f"/v1/tasks/{first['task_id']}:cancel", json={})
        assert canceled.json()["status"] == "CANCELED", canceled.text
        assert (await client.get("/v1/workspaces/retried")).json()["state"] == "INIT_FAILED"

        retry = await client.post("/v1/workspaces/retried/retry-init", json={}, headers=key())
        assert retry.status_code == 202, retry.text
        again = (await client.get(f"/v1/tasks/{retry.json()['task_id']}")).json()
        assert again["op"] == "workspace_fork"
        assert (again["params"]["source_wsid"], again["params"]["snapshot_id"]) == ("retry-src", snapshot_id)
        assert again["params"]["live_id"] != first["params"]["live_id"], "server-chosen params are chosen afresh"

        await start_service(config, planes=("worker", "executor"))
        assert (await wait_task(client, again["task_id"]))["status"] == "SUCCEEDED"
        assert (await client.get("/v1/workspaces/retried")).json()["state"] == "ACTIVE"
    source = snapshots_dir(mount, "retry-src") / snapshot_id
    assert tree_signature(mount / "retried" / "current") == tree_signature(source), "the fork, not an empty tree"
    await assert_fsck_clean(database, mount)


async def test_the_fork_route_creates_the_fork(wvs: Any, mount: Path) -> None:
    """``POST …/snapshots/{snapshot_id}:fork`` (the op's declared route) is the same fork as ``POST /v1/workspaces``
    with ``init``: the answer of a workspace creation, the same tree, the same idempotency."""
    await create_workspace(wvs, "route-src")
    populate_tree(mount / "route-src" / "current")
    with QuiesceResponder(mount / "route-src").running_in_thread():
        snapshot_id = await snapshot(wvs, "route-src")
    route = f"/v1/workspaces/route-src/snapshots/{snapshot_id}:fork"
    headers = key()
    response = await wvs.post(route, json={"wsid": "route-fork", "owner": "forker"}, headers=headers)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert set(answer) == {"wsid", "state", "init_task_id"} and answer["state"] == "PROVISIONING"
    replay = await wvs.post(route, json={"wsid": "route-fork", "owner": "forker"}, headers=headers)
    assert replay.json() == answer and replay.headers.get("Idempotent-Replayed") == "true"
    task = await wait_task(wvs, answer["init_task_id"])
    assert task["status"] == "SUCCEEDED" and task["params"]["source_wsid"] == "route-src"
    source = snapshots_dir(mount, "route-src") / snapshot_id
    assert tree_signature(mount / "route-fork" / "current") == tree_signature(source)
    for body in ({}, {"wsid": "../x"}, {"wsid": "ok-name", "source_wsid": "other"}, {"wsid": "ok-name", "extra": 1}):
        refused = await wvs.post(route, json=body, headers=key())
        assert refused.status_code == 400, (body, refused.text)
    missing = await wvs.post(
        f"/v1/workspaces/route-src/snapshots/{uuid7()}:fork", json={"wsid": "nope", "owner": "o"}, headers=key()
    )
    assert missing.status_code == 404, missing.text
    assert (await wvs.get("/v1/workspaces/nope")).status_code == 404, "nothing created"


async def test_a_fork_of_what_does_not_exist_is_404_and_creates_nothing(wvs: Any) -> None:
    await create_workspace(wvs, "fork-real")
    missing = "0190a5b2-0000-7000-8000-000000000000"
    for source, snapshot_id in (("fork-real", missing), ("no-such-ws", missing)):
        response = await wvs.post("/v1/workspaces", json=fork_body(source, snapshot_id, "fork-none"), headers=key())
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "WVS_NOT_FOUND"
    assert (await wvs.get("/v1/workspaces/fork-none")).status_code == 404, "the transaction made no workspace"


@pytest.mark.parametrize(
    "body",
    [
        fork_body("fork-real", "0190a5b2-0000-7000-8000-000000000000", "../etc"),
        fork_body("fork-real", "0190a5b2-0000-7000-8000-000000000000", "UPPER"),
        fork_body("../etc", "0190a5b2-0000-7000-8000-000000000000", "fork-bad"),
        fork_body("fork-real", "../../x", "fork-bad"),
        fork_body("fork-real", "0190a5b2-0000-7000-8000-000000000000", "fork-bad")
        | {"init": {"op": "workspace_fork", "params": {"live_id": "0190a5b2-0000-7000-8000-000000000000"}}},
        {"wsid": "fork-bad", "owner": "x", "init": {"op": "snapshot_create", "params": {}}},
        {"wsid": "fork-bad", "owner": "x", "init": {"op": "no_such_op", "params": {}}},
        {"wsid": "fork-bad", "owner": "x", "init": {"op": "workspace_fork", "params": {}, "extra": 1}},
    ],
)
async def test_a_hostile_fork_request_is_400(wvs: Any, body: dict[str, Any]) -> None:
    response = await wvs.post("/v1/workspaces", json=body, headers=key())
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "WVS_BAD_REQUEST"


async def test_submitting_a_fork_as_a_task_is_refused(wvs: Any) -> None:
    await create_workspace(wvs, "fork-task")
    body = {
        "op": "workspace_fork",
        "params": {"source_wsid": "fork-task", "snapshot_id": "0190a5b2-0000-7000-8000-000000000000"},
    }
    response = await wvs.post("/v1/workspaces/fork-task/tasks", json=body, headers=key())
    assert response.status_code == 400, response.text


async def test_wvsctl_snapshot_fork_creates_the_fork_and_waits_for_it(wvs: Any, mount: Path) -> None:
    make_plugin_manager().hook.wvs_register_ctl_commands(cli=cli)  # as wvsctl starts
    await create_workspace(wvs, "ctl-src")
    (mount / "ctl-src" / "current" / "file.txt").write_text("forked by the cli")
    with QuiesceResponder(mount / "ctl-src").running_in_thread():
        snapshot_id = await snapshot(wvs, "ctl-src")
    args = ["--api-url", str(wvs.base_url), "snapshot", "fork", "ctl-src", snapshot_id, "ctl-fork"]
    result = await asyncio.to_thread(CliRunner().invoke, cli, [*args, "--owner", "someone", "--wait", "--json"])
    assert result.exit_code == 0, result.output
    task = json.loads(result.stdout)
    assert task["wsid"] == "ctl-fork" and task["op"] == "workspace_fork" and task["status"] == "SUCCEEDED"
    assert (await wvs.get("/v1/workspaces/ctl-fork")).json()["owner"] == "someone"
    assert (mount / "ctl-fork" / "current" / "file.txt").read_text() == "forked by the cli"
    missing = await asyncio.to_thread(CliRunner().invoke, cli, [*args[:5], "nope", "other-fork"])
    assert missing.exit_code != 0 and "WVS_BAD_REQUEST" in missing.output
