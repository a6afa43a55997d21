"""``GET /v1/workspaces/{wsid}/current``: what ``current`` holds (the writes are routes of the ops that change it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import path_wsid, scope


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
