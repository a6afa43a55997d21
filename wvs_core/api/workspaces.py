"""``/v1/workspaces``: create, list, get."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import actor, bad_request, json_body, list_query, one_of, path_wsid, scope, submission
from wvs_core.api.submit import accepted_response, task_spec
from wvs_core.api.views import page_view, workspace_view
from wvs_core.convert import structure_request, unstructure
from wvs_core.db.store import INIT_OP, SourceCheck, TaskSpec, require_source_snapshots
from wvs_core.errors import ErrorCode, WVSError
from wvs_core.ids import WSID_PATTERN
from wvs_core.models import WorkspaceState
from wvs_core.ops import requested_params
from wvs_core.scope import check_owner


def _check_wsid(_instance: object, _attribute: object, value: str) -> None:
    if not WSID_PATTERN.fullmatch(value):
        raise ValueError(f"wsid {value!r} must match {WSID_PATTERN.pattern}")


@attrs.frozen
class Initializer:
    """``init`` of ``POST /v1/workspaces``: the op that makes the workspace's first live tree (one with
    ``TaskOp.initializes_workspace``, a fork's) and its params."""

    op: str
    params: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class NewWorkspace:
    """Body of an initializer op's route (a fork's): the workspace it creates."""

    wsid: str = attrs.field(validator=_check_wsid)
    owner: str | None = attrs.field(default=None, validator=attrs.validators.optional(check_owner))


@attrs.frozen
class CreateWorkspace:
    """Body of ``POST /v1/workspaces``; ``owner`` defaults to the token's subject (see ``new_owner``), ``init``
    to ``init_workspace`` (an empty first live tree)."""

    wsid: str = attrs.field(validator=_check_wsid)
    owner: str | None = attrs.field(default=None, validator=attrs.validators.optional(check_owner))
    init: Initializer | None = None


def init_spec(request: Request) -> TaskSpec:
    """The init task of a workspace, its params all chosen by the server (the first live tree's id)."""
    return task_spec(request, state.registry(request).ops[INIT_OP], {})


def initializer_task(request: Request, init: Initializer | None) -> tuple[TaskSpec, SourceCheck | None]:
    """The first task of a workspace being created, and the check of the other workspace it reads from (its
    op's ``source_workspace``), if any. 400 WVS_BAD_REQUEST for an op that is not loaded or initializes no
    workspace, and for params its ``params_type`` refuses."""
    if init is None:
        return init_spec(request), None
    op = state.registry(request).ops.get(init.op)
    if op is None or not op.initializes_workspace:
        raise bad_request(f"invalid body: init.op {init.op!r} is not a loaded op that initializes a workspace")
    spec = task_spec(request, op, init.params, "init.params")
    source = op.source_workspace(spec.params)
    if source is None:
        return spec, None
    return spec, require_source_snapshots(source, op.references(spec.params), scope(request))


def new_owner(request: Request, named: str | None) -> str:
    """The owner of a workspace being created: the one ``named`` in the body — 403 WVS_FORBIDDEN unless the
    caller acts for it (an admin token acts for everyone) — else the token's subject; without auth the body
    must name one (400)."""
    principal = request.state.principal
    if named is None:
        if principal is None:
            raise bad_request("invalid body: owner is required")
        return str(principal.subject)
    if not scope(request).sees(named):
        raise WVSError(
            ErrorCode.FORBIDDEN, f"the token of {principal.subject!r} may not create workspaces for {named!r}"
        )
    return named


async def create_workspace(request: Request) -> JSONResponse:
    """Create a workspace and its first task: ``init_workspace``, or the initializer ``init`` names."""
    body = await json_body(request)
    return await create(request, body, structure_request(body, CreateWorkspace))


async def create(request: Request, body: dict[str, Any], wanted: CreateWorkspace) -> JSONResponse:
    """202 ``{wsid, state, init_task_id}``: the workspace ``wanted`` describes, created with its first task
    (``body``, the request's, is what its Idempotency-Key stands for). Also the route of an initializer op."""
    owner = new_owner(request, wanted.owner)
    spec, check = initializer_task(request, wanted.init)
    root_path = str(PurePosixPath(state.config(request).executor.mount_path) / wanted.wsid)
    accepted = await state.store(request).create_workspace(
        wanted.wsid, owner, root_path, spec, submission(request, body), check, scope=scope(request)
    )
    return accepted_response(
        accepted,
        {
            "wsid": wanted.wsid,
            "state": WorkspaceState.PROVISIONING.value,
            "init_task_id": accepted.task.task_id,
        },
    )


async def list_workspaces(request: Request) -> JSONResponse:
    """Workspaces, newest first, optionally by ``state``."""
    query = list_query(request, ("state",))
    wanted = one_of("state", query.filters.get("state"), WorkspaceState.__members__)
    page = await state.store(request).list_workspaces(query.cursor, query.limit, wanted, scope=scope(request))
    return JSONResponse(page_view(page, workspace_view))


async def get_workspace(request: Request) -> JSONResponse:
    """One workspace, with ``usage``: its live snapshots' count, entries and bytes added up."""
    store = state.store(request)
    workspace = await store.get_workspace(path_wsid(request), scope=scope(request))
    usage = await store.workspace_usage(workspace.wsid)
    return JSONResponse(workspace_view(workspace) | {"usage": unstructure(usage)})


async def retry_init(request: Request) -> JSONResponse:
    """INIT_FAILED → PROVISIONING with a new task of the initializer that failed (a fork forks again, its
    source checked anew), its server-chosen params chosen afresh; ``init_workspace`` when there was none."""
    wsid = path_wsid(request)
    body = await json_body(request)
    structure_request(body, NoBody)
    store, registry = state.store(request), state.registry(request)
    initializers = [name for name, op in registry.ops.items() if op.initializes_workspace]
    failed = await store.last_initializer(wsid, initializers, scope=scope(request))
    again = None if failed is None else Initializer(failed.op, requested_params(registry.ops[failed.op], failed.params))
    spec, check = initializer_task(request, again)
    accepted = await store.retry_init(wsid, spec, submission(request, body), check, scope=scope(request))
    return accepted_response(accepted, {"task_id": accepted.task.task_id, "status": "PENDING"})


async def disable_workspace(request: Request) -> JSONResponse:
    """Disable (synchronously): the workspace stays readable, every later write answers 410."""
    wsid = path_wsid(request)
    structure_request(await json_body(request), NoBody)
    workspace = await state.store(request).disable(wsid, request.state.request_id, actor(request), scope=scope(request))
    return JSONResponse({"wsid": wsid, "state": workspace.state.value, "updated_at": workspace.updated_at.isoformat()})


@attrs.frozen
class NoBody:
    """Endpoints that take no fields accept ``{}`` or an empty body, nothing else."""
