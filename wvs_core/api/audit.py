"""``/v1/workspaces/{wsid}/audit``: the workspace's audit trail."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import list_query, path_wsid, scope
from wvs_core.api.views import page_view
from wvs_core.convert import unstructure


async def list_audit(request: Request) -> JSONResponse:
    """Audit events, newest first."""
    wsid = path_wsid(request)
    query = list_query(request)
    page = await state.store(request).list_audit(wsid, query.cursor, query.limit, scope=scope(request))
    return JSONResponse(page_view(page, unstructure))
