"""``/v1/workspaces/{wsid}/snapshots``: create and list."""

from __future__ import annotations

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import json_body, list_query, path_id, path_wsid, scope, submission
from wvs_core.api.views import page_view, snapshot_view
from wvs_core.api.workspaces import NoBody, accepted_response, task_spec
from wvs_core.convert import structure_request
from wvs_core.db.store import require_snapshot
from wvs_core.ids import uuid7

SNAPSHOT_OP = "snapshot_create"
DROP_OP = "snapshot_drop"
MAX_MESSAGE_LENGTH = 4096


def _check_message(_instance: object, _attribute: object, value: str | None) -> None:
    if value is not None and len(value) > MAX_MESSAGE_LENGTH:
        raise ValueError(f"message must be at most {MAX_MESSAGE_LENGTH} characters")


@attrs.frozen
class CreateSnapshot:
    """Body of ``POST /v1/workspaces/{wsid}/snapshots``."""

    message: str | None = attrs.field(default=None, validator=_check_message)


async def create_snapshot(request: Request) -> JSONResponse:
    """Queue a snapshot_create task; the snapshot id is chosen now and returned at once."""
    wsid = path_wsid(request)
    body = await json_body(request)
    create = structure_request(body, CreateSnapshot)
    spec = task_spec(request, SNAPSHOT_OP, {"snapshot_id": uuid7(), "message": create.message})
    accepted = await state.store(request).submit_task(wsid, spec, submission(request, body), scope=scope(request))
    task = accepted.task
    return accepted_response(
        accepted, {"task_id": task.task_id, "status": "PENDING", "snapshot_id": task.params["snapshot_id"]}
    )


async def list_snapshots(request: Request) -> JSONResponse:
    """Snapshots not deleted, newest first."""
    wsid = path_wsid(request)
    query = list_query(request)
    page = await state.store(request).list_snapshots(wsid, query.cursor, query.limit, scope=scope(request))
    return JSONResponse(page_view(page, snapshot_view))


async def drop_snapshot(request: Request) -> JSONResponse:
    """Queue a snapshot_drop task; refused while the snapshot is current or named by an unfinished task."""
    wsid = path_wsid(request)
    snapshot_id = path_id(request, "snapshot_id")
    body = await json_body(request)
    structure_request(body, NoBody)
    spec = task_spec(request, DROP_OP, {"snapshot_id": snapshot_id})
    check = require_snapshot(snapshot_id, droppable_given=state.registry(request).snapshot_references)
    accepted = await state.store(request).submit_task(
        wsid, spec, submission(request, body), check, scope=scope(request)
    )
    return accepted_response(accepted, {"task_id": accepted.task.task_id, "status": "PENDING"})
