"""Named routes declared by ops (``TaskOp.routes``): a third party's op gets its own route, documented in the
served OpenAPI document, without any change to core; the built-in ops' routes are such declarations; a route
that is malformed or clashes with another stops the API from starting."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import yaml

from tests.api.test_bad_input import activate
from tests.api.test_submit import WSID, _add_snapshot
from tests.conftest import StartService, make_config
from tests.helpers import key
from tests.plugins.failing_ops import OpOverrides
from wvs_core.api.app import create_app
from wvs_core.config import Config
from wvs_core.errors import ConfigError
from wvs_core.ids import check_uuid, uuid7
from wvs_core.models import ExecutionResult
from wvs_core.ops import CHOSEN_BY_SERVER, ExecutionContext, OpRoute, TaskOp
from wvs_core.plugins import PluginRegistry


@attrs.frozen
class PublishParams:
    """Publish a snapshot under a name."""

    snapshot_id: str = attrs.field(validator=check_uuid)
    name: str = attrs.field(validator=attrs.validators.min_len(1))
    copies: int | None = None
    publication_id: str = attrs.field(factory=uuid7, metadata=CHOSEN_BY_SERVER)


class Publish(TaskOp):
    """Publish a snapshot: a third party's op with a route of its own."""

    name = "publish"
    params_type = PublishParams
    routes = (OpRoute("POST", "/v1/workspaces/{wsid}/snapshots/{snapshot_id}:publish", answer=("publication_id",)),)

    def references(self, params: Mapping[str, Any]) -> list[str]:
        return [params["snapshot_id"]]

    async def execute(self, ctx: ExecutionContext) -> ExecutionResult:
        return ExecutionResult(success=True)


@pytest.fixture
async def api(database: str, tmp_path: Path, start_service: StartService) -> AsyncIterator[httpx.AsyncClient]:
    """The API with ``publish`` loaded, an ACTIVE workspace and one snapshot row (tasks stay PENDING)."""
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


async def test_a_third_party_route_submits_its_op_with_the_path_and_body_as_params(api) -> None:
    path = f"/v1/workspaces/{WSID}/snapshots/{api.snapshot_id}:publish"
    accepted = await api.post(path, json={"name": "nightly"}, headers=key())
    assert accepted.status_code == 202, accepted.text
    answer = accepted.json()
    assert set(answer) == {"task_id", "status", "publication_id"} and answer["status"] == "PENDING"
    task = (await api.get(f"/v1/tasks/{answer['task_id']}")).json()
    assert task["op"] == "publish"
    assert task["params"] == {
        "snapshot_id": api.snapshot_id,
        "name": "nightly",
        "copies": None,
        "publication_id": answer["publication_id"],
    }
    missing = await api.post(f"/v1/workspaces/{WSID}/snapshots/{uuid7()}:publish", json={"name": "n"}, headers=key())
    assert missing.status_code == 404, missing.text


@pytest.mark.parametrize(
    ("snapshot_id", "body", "fragment"),
    [
        (None, {"name": "n", "snapshot_id": "x"}, "snapshot_id is given by the path"),
        (None, {"name": "n", "publication_id": "x"}, "publication_id is chosen by the server"),
        (None, {"name": ""}, "name"),
        (None, {"name": "n", "extra": 1}, "extra"),
        ("not-a-uuid", {"name": "n"}, "snapshot_id"),
    ],
)
async def test_bad_requests_on_a_declared_route_are_400s_naming_the_problem(
    api, snapshot_id: str | None, body: dict[str, Any], fragment: str
) -> None:
    path = f"/v1/workspaces/{WSID}/snapshots/{snapshot_id or api.snapshot_id}:publish"
    response = await api.post(path, json=body, headers=key())
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "WVS_BAD_REQUEST" and fragment in response.json()["error"]["message"]


async def test_the_served_document_describes_the_declared_routes_from_the_params_schema(api) -> None:
    document = yaml.safe_load((await api.get("/v1/openapi.yaml")).text)
    publish = document["paths"]["/v1/workspaces/{wsid}/snapshots/{snapshot_id}:publish"]["post"]
    assert publish["operationId"] == "publish"
    assert publish["summary"] == "Publish a snapshot: a third party's op with a route of its own."
    assert [p.get("name") for p in publish["parameters"] if "name" in p] == ["snapshot_id"]
    body = publish["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"] == {"name": {"type": "string"}, "copies": {"type": "integer", "nullable": True}}
    assert body["required"] == ["name"] and body["additionalProperties"] is False
    answer = publish["responses"]["202"]["content"]["application/json"]["schema"]
    assert answer["required"] == ["task_id", "status", "publication_id"]
    built_in = {
        (method, path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method != "parameters" and "Submits a task of op" in operation.get("description", "")
    }
    assert built_in == {
        ("post", "/v1/workspaces/{wsid}/snapshots"),
        ("delete", "/v1/workspaces/{wsid}/snapshots/{snapshot_id}"),
        ("post", "/v1/workspaces/{wsid}/current:set"),
        ("post", "/v1/workspaces/{wsid}/current:restore"),
        ("post", "/v1/workspaces/{wsid}/snapshots/{snapshot_id}:diff"),
        ("post", "/v1/workspaces/{wsid}/snapshots/{snapshot_id}:publish"),
    }


async def test_restore_and_diff_have_named_routes(api) -> None:
    restore = await api.post(
        f"/v1/workspaces/{WSID}/current:restore", json={"snapshot_id": api.snapshot_id, "paths": ["src"]}, headers=key()
    )
    diff = await api.post(
        f"/v1/workspaces/{WSID}/snapshots/{api.snapshot_id}:diff", json={"against": "current"}, headers=key()
    )
    for response, op, params in (
        (restore, "restore_paths", {"snapshot_id": api.snapshot_id, "paths": ["src"]}),
        (diff, "snapshot_diff", {"snapshot_id": api.snapshot_id, "against": "current", "quiesce": False}),
    ):
        assert response.status_code == 202, response.text
        assert set(response.json()) == {"task_id", "status"}
        task = (await api.get(f"/v1/tasks/{response.json()['task_id']}")).json()
        assert task["op"] == op and params.items() <= task["params"].items()
    bad_path = await api.post(
        f"/v1/workspaces/{WSID}/current:restore",
        json={"snapshot_id": api.snapshot_id, "paths": ["../x"]},
        headers=key(),
    )
    assert bad_path.status_code == 400 and "paths" in bad_path.json()["error"]["message"]


def _route_op(*routes: OpRoute, name: str = "publish") -> TaskOp:
    op = Publish()
    op.routes = routes  # type: ignore[misc]  # per instance, for the refusals below
    op.name = name  # type: ignore[misc]
    return op


@pytest.mark.parametrize(
    ("ops", "fragment"),
    [
        ((_route_op(OpRoute("POST", "/v1/workspaces/{wsid}/tasks")),), "clashes with the core route POST"),
        (
            (_route_op(OpRoute("DELETE", "/v1/workspaces/{wsid}/snapshots/{name}")),),
            "clashes with the route DELETE /v1/workspaces/{wsid}/snapshots/{name} of op publish",
        ),
        ((_route_op(OpRoute("POST", "/v1/publish")),), "must start with /v1/workspaces/{wsid}/"),
        ((_route_op(OpRoute("POST", "/v1/workspaces/{wsid}/{copies}")),), "path param 'copies' is not a str"),
        ((_route_op(OpRoute("POST", "/v1/workspaces/{wsid}/{publication_id}")),), "'publication_id' is not a str"),
        ((_route_op(OpRoute("POST", "/v1/workspaces/{wsid}/{name:path}")),), "without a converter"),
        ((_route_op(OpRoute("POST", "/v1/workspaces/{wsid}/p", answer=("nope",))),), "answer names 'nope'"),
        ((_route_op(OpRoute("POST", "/v1/workspaces/{wsid}/{name}", body=False)),), "'snapshot_id' is never given"),
        ((_route_op(OpRoute("POST", "/v1/workspaces/{wsid}/p", operation_id="setCurrent")),), "operationId"),
    ],
)
def test_a_malformed_or_clashing_route_stops_the_api_from_starting(ops: tuple[TaskOp, ...], fragment: str) -> None:
    registry = PluginRegistry.load(Config().plugins, extra=[OpOverrides(*ops)])
    with pytest.raises(ConfigError) as raised:
        create_app(Config(), registry)
    assert fragment in str(raised.value) and str(raised.value).startswith("op ")
