"""The named routes ops declare (``TaskOp.routes``): checked and mounted when the API is built, each an alias of
``POST /v1/workspaces/{wsid}/tasks``. Nothing here knows an op or a param by name."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wvs_core.api.inputs import bad_request, json_body, path_wsid
from wvs_core.api.submit import accepted_response, submit
from wvs_core.api.workspaces import CreateWorkspace, Initializer, NewWorkspace, NoBody, create
from wvs_core.convert import structure_request
from wvs_core.errors import ConfigError
from wvs_core.ops import OpRoute, TaskOp, chosen_by_server

PREFIX = "/v1/workspaces/{wsid}/"
_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@attrs.frozen
class MountedRoute:
    """An op's route, checked: the op, its declaration, the params its path fills (``{wsid}`` aside), and its
    name and summary in the OpenAPI document."""

    op: TaskOp
    route: OpRoute
    path_params: tuple[str, ...]
    operation_id: str
    summary: str

    def starlette_route(self) -> Route:
        """The Starlette route serving it."""
        return Route(self.route.path, self._endpoint, methods=[self.route.method])

    async def _endpoint(self, request: Request) -> JSONResponse:
        wsid = path_wsid(request)
        body = await json_body(request)
        from_path = {name: request.path_params[name] for name in self.path_params}
        if self.op.initializes_workspace:
            new = structure_request(body, NewWorkspace)
            init = Initializer(self.op.name, {self.route.source_param: wsid, **from_path})
            return await create(request, body, CreateWorkspace(new.wsid, new.owner, init))
        if self.route.body:
            if named := [name for name in self.path_params if name in body]:
                raise bad_request(f"invalid body: {named[0]} is given by the path")
            params, what = {**body, **from_path}, ("path or body" if from_path else "body")
        else:
            structure_request(body, NoBody)
            params, what = from_path, "path"
        accepted = await submit(request, wsid, body, self.op.name, params, what=what)
        task = accepted.task
        answer = {name: task.params[name] for name in self.route.answer}
        return accepted_response(accepted, {"task_id": task.task_id, "status": "PENDING", **answer})


def mount_op_routes(ops: Iterable[TaskOp], taken: Iterable[Route]) -> list[MountedRoute]:
    """Every route the ``ops`` declare, checked against each other and the ``taken`` (core) routes. Raises
    ConfigError naming the op and the route when a path is outside ``/v1/workspaces/{wsid}/``, a path param or an
    ``answer`` is not a field of the op's params (or is one the server chooses), a route without a body leaves a
    required param unfilled, or a method and path (param names aside) are served already."""
    served = {
        _shape(method, route.path): f"core route {method} {route.path}"
        for route in taken
        for method in route.methods or ()
    }
    mounted = []
    for op in ops:
        for route in op.routes:
            checked = _check(op, route)
            shape = _shape(route.method, route.path)
            if shape in served:
                raise ConfigError(f"op {op.name}: route {route.method} {route.path} clashes with the {served[shape]}")
            served[shape] = f"route {route.method} {route.path} of op {op.name}"
            mounted.append(checked)
    return mounted


def _shape(method: str, path: str) -> tuple[str, str]:
    """What two routes must not share: the method and the path with its param names left out."""
    return method, _PARAMETER.sub("{}", path)


def _check(op: TaskOp, route: OpRoute) -> MountedRoute:
    where = f"op {op.name}: route {route.method} {route.path}"
    if not route.path.startswith(PREFIX):
        raise ConfigError(f"{where}: the path must start with {PREFIX}")
    names = _PARAMETER.findall(route.path[len(PREFIX) :])
    literal = _PARAMETER.sub("", route.path)
    if "{" in literal or "}" in literal or len(set(names)) < len(names):
        raise ConfigError(f"{where}: path params are {{name}}, each once, without a converter")
    attrs.resolve_types(op.params_type)
    fields: dict[str, attrs.Attribute[Any]] = {field.name: field for field in attrs.fields(op.params_type)}
    for name in names:
        field = fields.get(name)
        if field is None or chosen_by_server(field) or field.type is not str:
            raise ConfigError(f"{where}: path param {name!r} is not a str param a request gives")
    if unknown := [name for name in route.answer if name not in fields]:
        raise ConfigError(f"{where}: answer names {unknown[0]!r}, not a param")
    if op.initializes_workspace:
        source = fields.get(route.source_param)
        if source is None or chosen_by_server(source) or source.type is not str or source.name in names:
            raise ConfigError(f"{where}: source_param must name a str param a request gives, not in the path")
        if not route.body or route.answer:
            raise ConfigError(
                f"{where}: a route creating a workspace takes a body and answers like POST /v1/workspaces"
            )
    elif route.source_param:
        raise ConfigError(f"{where}: source_param is for an op that initializes a workspace")
    if not route.body:
        unfilled = [
            field.name
            for field in fields.values()
            if field.default is attrs.NOTHING and not chosen_by_server(field) and field.name not in names
        ]
        if unfilled:
            raise ConfigError(f"{where}: without a body, the required param {unfilled[0]!r} is never given")
    first_word, *rest = op.name.split("_")
    operation_id = route.operation_id or first_word + "".join(word.capitalize() for word in rest)
    summary = route.summary or (type(op).__doc__ or op.name).strip().split("\n")[0]
    return MountedRoute(op, route, tuple(names), operation_id, summary)
