"""Submitting a task of any loaded op: ``POST /v1/workspaces/{wsid}/tasks``, which the named routes alias.

Nothing here knows an op or a param by name: the op's ``params_type`` validates and completes the params,
and its declarations (``TaskOp.references``, ``TaskOp.drops``) give the checks made before the task exists.
"""

from __future__ import annotations

from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import bad_request, json_body, path_wsid, scope, submission
from wvs_core.convert import structure_request, unstructure
from wvs_core.db.store import Accepted, TaskSpec, require_snapshots
from wvs_core.ops import TaskOp, chosen_by_server, stored_params


@attrs.frozen
class SubmitTask:
    """Body of ``POST /v1/workspaces/{wsid}/tasks``: a loaded op's name and its params."""

    op: str
    params: dict[str, Any] = attrs.field(factory=dict)


def task_spec(request: Request, op: TaskOp, params: dict[str, Any], what: str = "params") -> TaskSpec:
    """A task of ``op`` with the deployment's attempt and timeout limits and ``params`` completed by the op's
    ``params_type``: 400 WVS_BAD_REQUEST naming the field when they do not fit it, or when they name a field
    the server chooses (``CHOSEN_BY_SERVER``); ``what`` names the params in that message."""
    fields = attrs.fields(op.params_type)
    if chosen := [field.name for field in fields if chosen_by_server(field) and field.name in params]:
        raise bad_request(f"invalid {what}: {chosen[0]} is chosen by the server")
    typed = structure_request(params, op.params_type, what)
    config = state.config(request)
    return TaskSpec(
        op=op.name,
        params=stored_params(op, unstructure(typed)),
        max_attempts=config.worker.max_attempts,
        timeout_seconds=int(config.executor.task_timeout),
    )


async def submit(
    request: Request, wsid: str, body: dict[str, Any], op_name: str, params: dict[str, Any], what: str = "params"
) -> Accepted:
    """Create a task of ``op_name`` on the ACTIVE workspace ``wsid`` under the idempotency rules (``body``, the
    request's, is what its Idempotency-Key stands for). 400 for an unknown op or one only the service creates; the
    op's declared snapshots must exist (404) and those it drops be unused (409)."""
    registry = state.registry(request)
    op = registry.ops.get(op_name)
    if op is None:
        raise bad_request(f"unknown op {op_name!r}; GET /v1/ops lists the loaded ones")
    if not op.submittable:
        raise bad_request(f"op {op_name!r} is created by the service itself and cannot be submitted")
    spec = task_spec(request, op, params, what)
    check = require_snapshots(op.references(spec.params), op.drops(spec.params), registry.snapshot_references)
    return await state.store(request).submit_task(wsid, spec, submission(request, body), check, scope=scope(request))


def accepted_response(accepted: Accepted, body: dict[str, object]) -> JSONResponse:
    """202 with ``body``; an idempotent replay says so in a header."""
    headers = {"Idempotent-Replayed": "true"} if not accepted.created else {}
    return JSONResponse(body, status_code=202, headers=headers)


async def submit_task(request: Request) -> JSONResponse:
    """Queue a task of any loaded op; answers ``{task_id, status, op, params}`` with the params as stored (the
    ids the server chose included)."""
    wsid = path_wsid(request)
    body = await json_body(request)
    wanted = structure_request(body, SubmitTask)
    accepted = await submit(request, wsid, body, wanted.op, wanted.params)
    task = accepted.task
    return accepted_response(
        accepted, {"task_id": task.task_id, "status": "PENDING", "op": task.op, "params": task.params}
    )
