"""``POST /v1/workspaces/{wsid}/tasks``: any loaded op, a plugin's included, validated by its params type and
checked by its declarations, under the same idempotency and state rules as the named routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.api.test_bad_input import activate
from tests.conftest import StartService, make_config
from tests.helpers import key
from tests.plugins.failing_ops import OpOverrides
from wvs_core.db.engine import async_dsn
from wvs_core.ids import check_uuid, uuid7
from wvs_core.models import ExecutionResult
from wvs_core.ops import CHOSEN_BY_SERVER, ExecutionContext, TaskOp

WSID = "submit-ws"


@attrs.frozen
class PublishParams:
    """Publish a snapshot under a name."""

    snapshot_id: str = attrs.field(validator=check_uuid)
    name: str = attrs.field(validator=attrs.validators.min_len(1))
    copies: int = 1
    publication_id: str = attrs.field(factory=uuid7, metadata=CHOSEN_BY_SERVER)


class Publish(TaskOp):
    """A third party's op: reads one snapshot, which may not be dropped meanwhile."""

    name = "publish"
    params_type = PublishParams

    def references(self, params: Mapping[str, Any]) -> list[str]:
        return [params["snapshot_id"]]

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        return ExecutionResult(success=True)


@pytest.fixture
async def api(database: str, tmp_path: Path, start_service: StartService) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the ``publish`` plugin loaded, an ACTIVE workspace and one snapshot row (nobody runs the
    tasks: they stay PENDING)."""
    service = await start_service(
        make_config(database, tmp_path), planes=("api",), extra_plugins=(OpOverrides(Publish()),)
    )
    async with httpx.AsyncClient(base_url=service.api_url or "", timeout=30) as client:
        assert (
            await client.post("/v1/workspaces", json={"wsid": WSID, "owner": "o"}, headers=key())
        ).status_code == 202
        await activate(database, WSID)
        client.snapshot_id = await _add_snapshot(database)  # type: ignore[attr-defined]
        yield client


async def _add_snapshot(database: str) -> str:
    snapshot_id = uuid7()
    engine = create_async_engine(async_dsn(database))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("INSERT INTO wvs.snapshots (snapshot_id, wsid, fs_path) VALUES (:s, :w, '/ws/' || :s)"),
                {"s": snapshot_id, "w": WSID},
            )
    finally:
        await engine.dispose()
    return snapshot_id


def _submit(api: httpx.AsyncClient, body: object, headers: dict[str, str] | None = None) -> Any:
    return api.post(f"/v1/workspaces/{WSID}/tasks", json=body, headers=headers or key())


async def test_a_plugin_op_is_queued_with_its_params_completed_and_stored_as_json(api) -> None:
    body = {"op": "publish", "params": {"snapshot_id": api.snapshot_id, "name": "nightly"}}
    accepted = await _submit(api, body)
    assert accepted.status_code == 202, accepted.text
    answer = accepted.json()
    assert answer["status"] == "PENDING" and answer["op"] == "publish"
    params = answer["params"]
    assert params["snapshot_id"] == api.snapshot_id and params["name"] == "nightly" and params["copies"] == 1
    check_uuid(None, attrs.fields(PublishParams).publication_id, params["publication_id"])  # chosen now
    task = (await api.get(f"/v1/tasks/{answer['task_id']}")).json()
    assert task["op"] == "publish" and task["params"] == params and task["wsid"] == WSID
    audit = (await api.get(f"/v1/workspaces/{WSID}/audit")).json()["items"]
    assert any(row["action"] == "task.created" and row["task_id"] == answer["task_id"] for row in audit)


async def test_the_named_routes_are_aliases_of_the_tasks_route(api) -> None:
    snapshot = (await api.post(f"/v1/workspaces/{WSID}/snapshots", json={"message": "m"}, headers=key())).json()
    generic = (await _submit(api, {"op": "snapshot_create", "params": {"message": "m"}})).json()
    named_task = (await api.get(f"/v1/tasks/{snapshot['task_id']}")).json()
    assert named_task["op"] == generic["op"] == "snapshot_create"
    assert named_task["params"] == {"message": "m", "labels": {}, "snapshot_id": snapshot["snapshot_id"]}
    assert set(generic["params"]) == set(named_task["params"]) and generic["params"]["message"] == "m"


async def test_an_idempotent_replay_returns_the_first_task_and_a_changed_body_conflicts(api) -> None:
    headers = key()
    body = {"op": "publish", "params": {"snapshot_id": api.snapshot_id, "name": "a"}}
    first = await _submit(api, body, headers)
    replay = await _submit(api, body, headers)
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()  # the server-chosen id too: it is not chosen again
    changed = await _submit(api, {"op": "publish", "params": {"snapshot_id": api.snapshot_id, "name": "b"}}, headers)
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "WVS_CONFLICT_IDEMPOTENT_MISMATCH"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"op": "no_such_op"}, "unknown op 'no_such_op'"),
        ({"params": {}}, "op"),
        ({"op": 7}, "op"),
        ({"op": "publish", "params": []}, "params"),
        ({"op": "publish", "params": {"name": "x"}}, "snapshot_id"),
        ({"op": "publish", "params": {"snapshot_id": "not-a-uuid", "name": "x"}}, "snapshot_id"),
        ({"op": "publish", "params": {"snapshot_id": "{snapshot}", "name": ""}}, "name"),
        ({"op": "publish", "params": {"snapshot_id": "{snapshot}", "name": "x", "copies": "2"}}, "copies"),
        ({"op": "publish", "params": {"snapshot_id": "{snapshot}", "name": "x", "extra": 1}}, "extra"),
        ({"op": "publish", "params": {"snapshot_id": "{snapshot}", "name": "x", "publication_id": "{new}"}}, "chosen"),
        ({"op": "snapshot_create", "params": {"snapshot_id": "{new}"}}, "snapshot_id is chosen by the server"),
        ({"op": "snapshot_create", "params": {"message": "x" * 4097}}, "message"),
        ({"op": "set_current", "params": {"snapshot_id": "{snapshot}", "new_live_id": "{new}"}}, "new_live_id"),
        ({"op": "set_current", "params": {"snapshot_id": "{snapshot}", "previous_live_path": "/"}}, "chosen"),
        ({"op": "init_workspace"}, "created by the service"),
        ({"op": "publish", "params": {"snapshot_id": "{snapshot}", "name": "x"}, "priority": 1}, "priority"),
    ],
)
async def test_bad_submissions_are_400s_naming_the_problem(api, body: dict[str, Any], fragment: str) -> None:
    filled = _fill(body, {"{snapshot}": api.snapshot_id, "{new}": uuid7()})
    response = await _submit(api, filled)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "WVS_BAD_REQUEST" and fragment in error["message"], error
    tasks = (await api.get("/v1/tasks", params={"wsid": WSID})).json()["items"]
    assert [task["op"] for task in tasks] == ["init_workspace"]  # nothing was queued


async def test_declared_references_must_exist_and_dropping_a_referenced_snapshot_is_refused(api) -> None:
    missing = await _submit(api, {"op": "publish", "params": {"snapshot_id": uuid7(), "name": "x"}})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "WVS_NOT_FOUND"
    published = await _submit(api, {"op": "publish", "params": {"snapshot_id": api.snapshot_id, "name": "x"}})
    assert published.status_code == 202
    for drop in (
        _submit(api, {"op": "snapshot_drop", "params": {"snapshot_id": api.snapshot_id}}),
        api.delete(f"/v1/workspaces/{WSID}/snapshots/{api.snapshot_id}", headers=key()),
    ):
        refused = await drop
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "WVS_CONFLICT_SNAPSHOT_IN_USE" and published.json()["task_id"] in error["message"]
    await api.post(f"/v1/tasks/{published.json()['task_id']}:cancel")
    dropped = await _submit(api, {"op": "snapshot_drop", "params": {"snapshot_id": api.snapshot_id}})
    assert dropped.status_code == 202, dropped.text


async def test_the_workspace_rules_apply_as_on_the_named_routes(api, database: str) -> None:
    unknown = await api.post("/v1/workspaces/nobody-here/tasks", json={"op": "snapshot_create"}, headers=key())
    assert unknown.status_code == 404
    assert (await api.post(f"/v1/workspaces/{WSID}/tasks", json={"op": "snapshot_create"})).status_code == 400  # no key
    assert (
        await api.post("/v1/workspaces", json={"wsid": "still-new", "owner": "o"}, headers=key())
    ).status_code == 202
    early = await api.post("/v1/workspaces/still-new/tasks", json={"op": "snapshot_create"}, headers=key())
    assert early.status_code == 412 and early.json()["error"]["code"] == "WVS_PRECONDITION_FAILED"


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return names.get(value, value) if isinstance(value, str) else value
