"""``/v1/workspaces/{wsid}/current``: what ``current`` holds, and rolling it back to a snapshot."""

from __future__ import annotations

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import json_body, path_wsid, scope, submission
from wvs_core.api.workspaces import accepted_response, task_spec
from wvs_core.convert import structure_request
from wvs_core.db.store import require_snapshot
from wvs_core.ids import check_uuid, uuid7

SET_CURRENT_OP = "set_current"


@attrs.frozen
class SetCurrent:
    """Body of ``POST /v1/workspaces/{wsid}/current:set``."""

    snapshot_id: str = attrs.field(validator=check_uuid)


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
    """Queue a set_current task (rollback); the new live tree's id is chosen now."""
    wsid = path_wsid(request)
    body = await json_body(request)
    wanted = structure_request(body, SetCurrent)
    spec = task_spec(request, SET_CURRENT_OP, {"snapshot_id": wanted.snapshot_id, "new_live_id": uuid7()})
    check = require_snapshot(wanted.snapshot_id)
    accepted = await state.store(request).submit_task(
        wsid, spec, submission(request, body), check, scope=scope(request)
    )
    return accepted_response(accepted, {"task_id": accepted.task.task_id, "status": "PENDING"})
