"""``GET /v1/workspaces/{wsid}/snapshots``: the workspace's snapshots (the writes are routes of the snapshot ops)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import list_query, path_wsid, scope
from wvs_core.api.views import page_view, snapshot_view


async def list_snapshots(request: Request) -> JSONResponse:
    """Snapshots not deleted, newest first."""
    wsid = path_wsid(request)
    query = list_query(request)
    page = await state.store(request).list_snapshots(wsid, query.cursor, query.limit, scope=scope(request))
    return JSONResponse(page_view(page, snapshot_view))
