"""``GET /v1/openapi.yaml``: the API's OpenAPI document — the core routes' (``openapi.yaml`` beside this module)
with the routes of the loaded ops (``TaskOp.routes``) generated from their params' schemas, and the event types
they record (``TaskOp.event_types``) added to ``Event.type``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib.resources import files
from typing import Any

import attrs
import yaml  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import Response

from wvs_core.api import state
from wvs_core.api.op_routes import MountedRoute
from wvs_core.errors import ConfigError
from wvs_core.ops import TaskOp, chosen_by_server
from wvs_core.params_schema import params_schema

WRITE_ERRORS = ("400", "401", "403", "404", "409", "410", "412", "500")
"""The error statuses of every asynchronous write (the named write routes of the core document list the same)."""


def document(mounted: Sequence[MountedRoute], ops: Iterable[TaskOp] = ()) -> str:
    """The OpenAPI document in YAML: the core routes' and each of ``mounted``, and the event types ``ops`` declare
    in ``Event.type`` (each described in its description). Raises ConfigError when a mounted route's operationId
    is taken."""
    tree = yaml.safe_load(files("wvs_core.api").joinpath("openapi.yaml").read_text(encoding="utf-8"))
    _add_event_types(tree["components"]["schemas"]["Event"]["properties"]["type"], ops)
    operation_ids = {
        operation["operationId"]
        for item in tree["paths"].values()
        for method, operation in item.items()
        if method != "parameters"
    }
    for route in mounted:
        if route.operation_id in operation_ids:
            raise ConfigError(
                f"op {route.op.name}: operationId {route.operation_id!r} is taken; give the route an operation_id"
            )
        operation_ids.add(route.operation_id)
        tree["paths"].setdefault(route.route.path, {})[route.route.method.lower()] = _operation(route)
    return str(yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, width=120))


def _add_event_types(schema: dict[str, Any], ops: Iterable[TaskOp]) -> None:
    declared = sorted((name, op.name, text) for op in ops for name, text in op.event_types.items())
    schema["enum"] = [*schema["enum"], *(name for name, _op, _text in declared)]
    if declared:
        lines = "; ".join(f"`{name}` (op {op}): {text}" for name, op, text in declared)
        schema["description"] = f"{schema.get('description', '')} Recorded by ops: {lines}.".strip()


async def openapi(request: Request) -> Response:
    """The OpenAPI 3 description of every route, in YAML."""
    return Response(state.openapi_document(request), media_type="application/yaml")


def _operation(mounted: MountedRoute) -> dict[str, Any]:
    """The OpenAPI operation of an op's route, its params described by the op's params schema."""
    op, route = mounted.op, mounted.route
    schema = params_schema(op.params_type)
    properties: dict[str, Any] = schema["properties"]
    chosen = {field.name for field in attrs.fields(op.params_type) if chosen_by_server(field)}
    path_params = [
        {"name": name, "in": "path", "required": True, "schema": openapi_schema(properties[name])}
        for name in mounted.path_params
    ]
    operation: dict[str, Any] = {
        "operationId": mounted.operation_id,
        "summary": mounted.summary,
        "description": f"Submits a task of op `{op.name}`, as `POST /v1/workspaces/{{wsid}}/tasks` would. "
        + " ".join(str(schema.get("description", "")).split()),
        "parameters": [
            {"$ref": "#/components/parameters/WsidPath"},
            *path_params,
            {"$ref": "#/components/parameters/IdempotencyKey"},
            {"$ref": "#/components/parameters/RequestId"},
        ],
    }
    if op.initializes_workspace:
        return _creating(mounted, operation)
    if route.body:
        given = [name for name in properties if name not in chosen and name not in mounted.path_params]
        body: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {name: openapi_schema(properties[name]) for name in given},
        }
        if required := [name for name in schema.get("required", []) if name in given]:
            body["required"] = required
        operation["requestBody"] = {"required": bool(required), "content": {"application/json": {"schema": body}}}
    else:
        operation["requestBody"] = {"$ref": "#/components/requestBodies/Empty"}
    operation["responses"] = {
        "202": _accepted(route.answer, properties),
        **{status: {"$ref": "#/components/responses/Error"} for status in WRITE_ERRORS},
    }
    return operation


def _creating(mounted: MountedRoute, operation: dict[str, Any]) -> dict[str, Any]:
    """The operation of an initializer op's route: it creates the workspace its body names."""
    operation["description"] = (
        f"Creates the workspace the body names with a first task of op `{mounted.op.name}`, as `POST /v1/workspaces`"
        f" with `init` would; `{{wsid}}` is the workspace it starts from (`{mounted.route.source_param}`)."
    )
    body = {
        "type": "object",
        "additionalProperties": False,
        "required": ["wsid"],
        "properties": {"wsid": {"$ref": "#/components/schemas/Wsid"}, "owner": {"type": "string"}},
    }
    operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    created = {
        "type": "object",
        "additionalProperties": False,
        "required": ["wsid", "state", "init_task_id"],
        "properties": {
            "wsid": {"$ref": "#/components/schemas/Wsid"},
            "state": {"$ref": "#/components/schemas/WorkspaceState"},
            "init_task_id": {"$ref": "#/components/schemas/Id"},
        },
    }
    operation["responses"] = {
        "202": {"description": "Accepted; follow its first task", "content": {"application/json": {"schema": created}}},
        **{status: {"$ref": "#/components/responses/Error"} for status in WRITE_ERRORS},
    }
    return operation


def _accepted(answer: Sequence[str], properties: dict[str, Any]) -> dict[str, Any]:
    if not answer:
        return {"$ref": "#/components/responses/TaskAccepted"}
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["task_id", "status", *answer],
        "properties": {
            "task_id": {"$ref": "#/components/schemas/Id"},
            "status": {"$ref": "#/components/schemas/TaskStatus"},
            **{name: openapi_schema(properties[name]) for name in answer},
        },
    }
    return {"description": "Accepted; follow the task", "content": {"application/json": {"schema": schema}}}


def openapi_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (the JSON Schema subset of ``wvs_core.params_schema``) as an OpenAPI 3.0 schema: a union with
    null becomes ``nullable``, ``readOnly`` goes (a request never holds such a field)."""
    converted = {key: value for key, value in schema.items() if key != "readOnly"}
    if "anyOf" in converted:
        options = [option for option in converted.pop("anyOf") if option != {"type": "null"}]
        if len(options) == 1:
            converted = {**openapi_schema(options[0]), **converted}
        else:
            converted["anyOf"] = [openapi_schema(option) for option in options]
        if len(options) < len(schema["anyOf"]):
            converted["nullable"] = True
    if "properties" in converted:
        converted["properties"] = {name: openapi_schema(value) for name, value in converted["properties"].items()}
    if isinstance(converted.get("items"), dict):
        converted["items"] = openapi_schema(converted["items"])
    if isinstance(converted.get("additionalProperties"), dict):
        converted["additionalProperties"] = openapi_schema(converted["additionalProperties"])
    return converted
