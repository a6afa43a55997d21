"""Owner isolation (SPEC §2 Ownership): a read or write token sees and acts only on the workspaces of the
owners it acts for (its subject and its ``owners``); anything else answers 404 exactly like a missing
workspace, is absent from every list, and is left untouched. An admin token sees everything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import StartService, make_config
from tests.helpers import bearer, new_token
from wvs_core.cli import wvsctl
from wvs_core.db.engine import async_dsn
from wvs_core.ids import uuid7


class Callers:
    """The API as each token holder sees it: ``await api("bob", "GET", path)``."""

    def __init__(self, client: httpx.AsyncClient, tokens: dict[str, str], database: str) -> None:
        self.client = client
        self.tokens = tokens
        self.database = database

    async def __call__(
        self, who: str, method: str, path: str, body: Any = None, key: str | None = None
    ) -> httpx.Response:
        """Send one request with ``who``'s token and an Idempotency-Key (``key``, or a fresh one)."""
        headers = bearer(self.tokens[who], **{"Idempotency-Key": key or uuid7()})
        return await self.client.request(method, path, json=body, headers=headers)

    async def create(self, who: str, wsid: str, **body: str) -> dict[str, Any]:
        """Create ``wsid`` as ``who`` (202 expected); the answer."""
        response = await self(who, "POST", "/v1/workspaces", {"wsid": wsid, **body})
        assert response.status_code == 202, response.text
        return dict(response.json())

    async def every_page(self, who: str, path: str, limit: int) -> list[dict[str, Any]]:
        """Every item of a list, page by page; every page but the last must be full."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            separator = "&" if "?" in path else "?"
            response = await self(
                who, "GET", f"{path}{separator}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            )
            assert response.status_code == 200, response.text
            page = response.json()
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items
            assert len(page["items"]) == limit, "a page with a next cursor is full"


@pytest.fixture
async def api(database: str, tmp_path: Path, start_service: StartService) -> AsyncIterator[Callers]:
    """An API-only service with tokens for alice, bob, carol (who also acts for ``team``), a read token of
    alice's, and an admin."""
    tokens_file = tmp_path / "tokens.toml"
    tokens = {
        "alice": new_token(tokens_file, "alice", "write"),
        "bob": new_token(tokens_file, "bob", "write"),
        "carol": new_token(tokens_file, "carol", "write", owners="team"),
        "alice-reader": new_token(tokens_file, "alice", "read"),
        "admin": new_token(tokens_file, "ops", "admin"),
    }
    service = await start_service(
        make_config(database, tmp_path, api={"tokens_file": str(tokens_file)}), planes=("api",)
    )
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        yield Callers(client, tokens, database)


async def put_in_state(database: str, wsid: str, state: str) -> str:
    """Bring ``wsid`` to ``state`` as a worker would (its init task SUCCEEDED for ACTIVE, DEAD for
    INIT_FAILED, left PENDING for PROVISIONING) and give it a snapshot; returns the snapshot's id."""
    init_status = {"ACTIVE": "SUCCEEDED", "INIT_FAILED": "DEAD", "PROVISIONING": "PENDING"}[state]
    snapshot_id = uuid7()
    engine = create_async_engine(async_dsn(database))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE wvs.workspaces SET state = :s WHERE wsid = :w"), {"s": state, "w": wsid})
            await conn.execute(
                sa.text("UPDATE wvs.tasks SET status = :s WHERE wsid = :w"), {"s": init_status, "w": wsid}
            )
            await conn.execute(
                sa.text("INSERT INTO wvs.snapshots (snapshot_id, wsid, fs_path) VALUES (:i, :w, '/ws/s/' || :i)"),
                {"i": snapshot_id, "w": wsid},
            )
    finally:
        await engine.dispose()
    return snapshot_id


async def everything_about(api: Callers, wsid: str) -> dict[str, Any]:
    """What an admin sees of ``wsid``, and every task of the service."""
    paths = {
        "workspace": f"/v1/workspaces/{wsid}",
        "snapshots": f"/v1/workspaces/{wsid}/snapshots?limit=100",
        "audit": f"/v1/workspaces/{wsid}/audit?limit=100",
        "tasks": "/v1/tasks?limit=100",
    }
    return {name: (await api("admin", "GET", path)).json() for name, path in paths.items()}


class Route(NamedTuple):
    method: str
    path: str  # with {wsid}, {snapshot_id}, {task_id}
    body: dict[str, Any] | None  # its strings with the same {placeholders}
    state: str  # the workspace's state in which its owner's request would succeed


ROUTES = {
    "get workspace": Route("GET", "/v1/workspaces/{wsid}", None, "ACTIVE"),
    "list snapshots": Route("GET", "/v1/workspaces/{wsid}/snapshots", None, "ACTIVE"),
    "create snapshot": Route("POST", "/v1/workspaces/{wsid}/snapshots", {"message": "m"}, "ACTIVE"),
    "drop snapshot": Route("DELETE", "/v1/workspaces/{wsid}/snapshots/{snapshot_id}", None, "ACTIVE"),
    "get current": Route("GET", "/v1/workspaces/{wsid}/current", None, "ACTIVE"),
    "set current": Route("POST", "/v1/workspaces/{wsid}/current:set", {"snapshot_id": "{snapshot_id}"}, "ACTIVE"),
    "retry init": Route("POST", "/v1/workspaces/{wsid}/retry-init", None, "INIT_FAILED"),
    "disable workspace": Route("DELETE", "/v1/workspaces/{wsid}", None, "ACTIVE"),
    "submit task": Route("POST", "/v1/workspaces/{wsid}/tasks", {"op": "snapshot_create"}, "ACTIVE"),
    "audit": Route("GET", "/v1/workspaces/{wsid}/audit", None, "ACTIVE"),
    "get task": Route("GET", "/v1/tasks/{task_id}", None, "PROVISIONING"),
    "cancel task": Route("POST", "/v1/tasks/{task_id}:cancel", None, "PROVISIONING"),
    "fork": Route("POST", "/v1/workspaces/{wsid}/snapshots/{snapshot_id}:fork", {"wsid": "forked-ws"}, "ACTIVE"),
    "diff": Route("POST", "/v1/workspaces/{wsid}/snapshots/{snapshot_id}:diff", {"against": "current"}, "ACTIVE"),
    "restore paths": Route(
        "POST", "/v1/workspaces/{wsid}/current:restore", {"snapshot_id": "{snapshot_id}", "paths": ["a"]}, "ACTIVE"
    ),
    "get retention": Route("GET", "/v1/workspaces/{wsid}/retention", None, "ACTIVE"),
    "put retention": Route("PUT", "/v1/workspaces/{wsid}/retention", {"keep_last": 3}, "ACTIVE"),
    "retention plan": Route("GET", "/v1/workspaces/{wsid}/retention:plan", None, "ACTIVE"),
}


@pytest.mark.parametrize("route", ROUTES.values(), ids=ROUTES.keys())
async def test_another_owners_workspace_answers_404_like_a_missing_one_and_stays_unchanged(api, route) -> None:
    task_id = (await api.create("alice", "alice-ws"))["init_task_id"]
    snapshot_id = await put_in_state(api.database, "alice-ws", route.state)

    def send(who: str, wsid: str, task: str) -> Any:
        fill = {"wsid": wsid, "snapshot_id": snapshot_id, "task_id": task}
        given = route.body or {}
        body = {name: value.format(**fill) if isinstance(value, str) else value for name, value in given.items()}
        return api(who, route.method, route.path.format(**fill), body if route.body else None)

    before = await everything_about(api, "alice-ws")
    hidden = await send("bob", "alice-ws", task_id)
    ghost_task = uuid7()
    missing = await send("bob", "ghost-ws", ghost_task)
    assert hidden.status_code == missing.status_code == 404, (hidden.text, missing.text)
    hidden_error, missing_error = hidden.json()["error"], missing.json()["error"]
    assert hidden_error["code"] == missing_error["code"] == "WVS_NOT_FOUND"
    assert (
        hidden_error["message"].replace("alice-ws", "ghost-ws").replace(task_id, ghost_task) == missing_error["message"]
    ), "the message does not tell a hidden workspace from a missing one"
    assert await everything_about(api, "alice-ws") == before, "no task, no state change, no audit row"

    allowed = await send("alice", "alice-ws", task_id)
    assert allowed.is_success, f"the refusal was about the owner, not the request: {allowed.text}"


async def test_lists_show_only_the_callers_workspaces_and_tasks_in_full_pages(api) -> None:
    created: dict[str, list[str]] = {"alice": [], "bob": []}
    for n in range(5):  # interleaved, so a page filtered after the fact would come out short
        for who in created:
            await api.create(who, f"{who}-{n}")
            created[who].append(f"{who}-{n}")
    for who, others in (("alice", created["bob"]), ("bob", created["alice"])):
        workspaces = await api.every_page(who, "/v1/workspaces", limit=2)
        assert [workspace["wsid"] for workspace in workspaces] == created[who][::-1]
        assert await api.every_page(who, "/v1/workspaces?state=PROVISIONING", limit=2) == workspaces
        tasks = await api.every_page(who, "/v1/tasks", limit=2)
        assert sorted(task["wsid"] for task in tasks) == sorted(created[who])
        assert await api.every_page(who, "/v1/tasks?op=init_workspace&status=PENDING", limit=2) == tasks
        hidden = await api(who, "GET", f"/v1/tasks?wsid={others[0]}")  # as if it did not exist, like GET on it
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "WVS_NOT_FOUND"
    everyone = await api.every_page("admin", "/v1/workspaces", limit=3)
    assert sorted(workspace["wsid"] for workspace in everyone) == sorted(created["alice"] + created["bob"])
    assert len(await api.every_page("admin", "/v1/tasks", limit=3)) == 10


async def test_a_write_token_cannot_create_for_another_owner_but_an_admin_can(api) -> None:
    refused = await api("bob", "POST", "/v1/workspaces", {"wsid": "for-alice", "owner": "alice"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "WVS_FORBIDDEN"
    assert (await api("admin", "GET", "/v1/workspaces/for-alice")).status_code == 404, "nothing was created"

    await api.create("admin", "for-alice", owner="alice")
    assert (await api("alice", "GET", "/v1/workspaces/for-alice")).json()["owner"] == "alice"
    assert (await api("bob", "GET", "/v1/workspaces/for-alice")).status_code == 404


async def test_the_owner_defaults_to_the_tokens_subject(api) -> None:
    await api.create("bob", "bobs")
    workspace = (await api("bob", "GET", "/v1/workspaces/bobs")).json()
    assert workspace["owner"] == "bob"
    await api.create("bob", "bobs-too", owner="bob")  # naming oneself is allowed too
    audit = (await api("bob", "GET", "/v1/workspaces/bobs/audit")).json()["items"]
    assert {event["actor"]["subject"] for event in audit} == {"bob"}


async def test_wvsctl_creates_for_the_tokens_subject_when_no_owner_is_given(api) -> None:
    url = str(api.client.base_url)
    created = await asyncio.to_thread(
        CliRunner().invoke,
        wvsctl.cli,
        ["--api-url", url, "workspace", "create", "from-cli", "--json"],
        env={"WVS_TOKEN": api.tokens["carol"]},
    )
    assert created.exit_code == 0, created.output
    assert (await api("carol", "GET", "/v1/workspaces/from-cli")).json()["owner"] == "carol"


async def test_a_token_acting_for_a_team_sees_and_acts_on_the_teams_workspaces(api) -> None:
    task_id = (await api.create("admin", "team-ws", owner="team"))["init_task_id"]
    assert (await api("carol", "GET", "/v1/workspaces/team-ws")).json()["owner"] == "team"
    assert [workspace["wsid"] for workspace in await api.every_page("carol", "/v1/workspaces", limit=5)] == ["team-ws"]
    assert (await api("carol", "POST", f"/v1/tasks/{task_id}:cancel")).json()["status"] == "CANCELED"
    await api.create("carol", "team-ws-2", owner="team")
    assert (await api("carol", "POST", "/v1/workspaces", {"wsid": "not-mine", "owner": "alice"})).status_code == 403
    assert (await api("bob", "GET", "/v1/workspaces/team-ws")).status_code == 404


async def test_a_read_token_reads_its_owners_workspaces_and_still_cannot_write_them(api) -> None:
    task_id = (await api.create("alice", "alice-ws"))["init_task_id"]
    assert (await api("alice-reader", "GET", "/v1/workspaces/alice-ws")).status_code == 200
    assert (await api("alice-reader", "GET", f"/v1/tasks/{task_id}")).status_code == 200
    for method, path, body in (
        ("POST", "/v1/workspaces", {"wsid": "by-reader"}),
        ("POST", "/v1/workspaces/alice-ws/snapshots", None),
        ("DELETE", "/v1/workspaces/alice-ws", None),
        ("POST", f"/v1/tasks/{task_id}:cancel", None),
    ):
        refused = await api("alice-reader", method, path, body)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "WVS_FORBIDDEN", path
    assert (await api("alice", "GET", f"/v1/tasks/{task_id}")).json()["status"] == "PENDING"


async def test_an_admin_sees_and_acts_on_every_workspace(api) -> None:
    await api.create("alice", "alice-ws")
    bobs_task = (await api.create("bob", "bob-ws"))["init_task_id"]
    listed = await api.every_page("admin", "/v1/workspaces", limit=1)
    assert {workspace["wsid"]: workspace["owner"] for workspace in listed} == {"alice-ws": "alice", "bob-ws": "bob"}
    assert (await api("admin", "GET", "/v1/workspaces/alice-ws/audit")).status_code == 200
    assert (await api("admin", "POST", f"/v1/tasks/{bobs_task}:cancel")).json()["status"] == "CANCELED"
    disabled = await api("admin", "DELETE", "/v1/workspaces/bob-ws")
    assert disabled.status_code == 200 and disabled.json()["state"] == "DISABLED"


async def test_a_wsid_taken_by_another_owner_is_only_said_to_exist(api) -> None:
    created = await api("alice", "POST", "/v1/workspaces", {"wsid": "taken"}, key="k1")
    # The very same request under the same key would be a replay for alice; for bob it reveals no task.
    for body in ({"wsid": "taken"}, {"wsid": "taken", "owner": "bob"}):
        refused = await api("bob", "POST", "/v1/workspaces", body, key="k1")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "WVS_CONFLICT_EXISTS"
        assert created.json()["init_task_id"] not in refused.text
    replay = await api("alice", "POST", "/v1/workspaces", {"wsid": "taken"}, key="k1")
    assert replay.status_code == 202 and replay.json() == created.json()
    assert replay.headers["idempotent-replayed"] == "true"


async def test_another_owners_events_and_task_results_do_not_exist(api) -> None:
    task_id = (await api.create("alice", "alice-ev"))["init_task_id"]
    await put_in_state(api.database, "alice-ev", "ACTIVE")
    await api.create("bob", "bob-ev")
    seen = {event["wsid"] for event in (await api("bob", "GET", "/v1/events?limit=100")).json()["items"]}
    assert "alice-ev" not in seen
    filtered, nowhere = [await api("bob", "GET", f"/v1/events?wsid={wsid}") for wsid in ("alice-ev", "no-such-ws")]
    assert filtered.status_code == nowhere.status_code == 404  # as for a workspace that does not exist
    assert filtered.json()["error"]["message"].replace("alice-ev", "no-such-ws") == nowhere.json()["error"]["message"]
    assert "alice-ev" in {event["wsid"] for event in (await api("alice", "GET", "/v1/events")).json()["items"]}
    hidden = await api("bob", "GET", f"/v1/tasks/{task_id}/result")
    ghost = uuid7()
    missing = await api("bob", "GET", f"/v1/tasks/{ghost}/result")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"].replace(task_id, ghost) == missing.json()["error"]["message"]
