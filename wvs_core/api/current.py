"""``/v1/workspaces/{wsid}/current``: what ``current`` holds, and rolling it back to a snapshot."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import json_body, path_wsid, scope
from wvs_core.api.submit import accepted_response, submit

SET_CURRENT_OP = "set_current"


async def get_current(request: Request) -> JSONResponse:
    """The live tree ``current`` points to and the snapshot it was restored from."""
    workspace = await state.store(request).get_workspace(path_wsid(request), scope=scope(request))
    return JSONResponse(
        {
            "wsid": workspace.wsid,
            "current_path": workspace.current_path,
            "current_snapshot_id": workspace.current_snapshot_id,
            "updated_at": workspace.updated_at.isoformat(),
        }
    )


async def set_current(request: Request) -> JSONResponse:
    """Queue a set_current task (rollback) with the body ``{snapshot_id}`` as its params."""
    wsid = path_wsid(request)
    body = await json_body(request)
    accepted = await submit(request, wsid, body, SET_CURRENT_OP, body, what="body")
    return accepted_response(accepted, {"task_id": accepted.task.task_id, "status": "PENDING"})
