"""``/v1/workspaces/{wsid}/snapshots``: create, list and drop (the writes alias the tasks route)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import json_body, list_query, path_id, path_wsid, scope
from wvs_core.api.submit import accepted_response, submit
from wvs_core.api.views import page_view, snapshot_view
from wvs_core.api.workspaces import NoBody
from wvs_core.convert import structure_request

SNAPSHOT_OP = "snapshot_create"
DROP_OP = "snapshot_drop"


async def create_snapshot(request: Request) -> JSONResponse:
    """Queue a snapshot_create task with the body as its params; the snapshot id is chosen now and returned."""
    wsid = path_wsid(request)
    body = await json_body(request)
    accepted = await submit(request, wsid, body, SNAPSHOT_OP, body, what="body")
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
    accepted = await submit(request, wsid, body, DROP_OP, {"snapshot_id": snapshot_id})
    return accepted_response(accepted, {"task_id": accepted.task.task_id, "status": "PENDING"})
