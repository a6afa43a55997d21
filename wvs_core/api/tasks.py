"""``/v1/tasks``: list and get."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import actor, bad_request, json_body, list_query, one_of, path_id, scope
from wvs_core.api.views import page_view, task_view
from wvs_core.api.workspaces import NoBody
from wvs_core.convert import structure_request
from wvs_core.db.outcomes import TaskRecorder
from wvs_core.ids import is_wsid
from wvs_core.models import TaskStatus


async def list_tasks(request: Request) -> JSONResponse:
    """Tasks, newest first, filtered by ``wsid``, ``status`` and ``op``."""
    query = list_query(request, ("wsid", "status", "op"))
    wsid = query.filters.get("wsid")
    if wsid is not None and not is_wsid(wsid):
        raise bad_request(f"invalid wsid {wsid!r}")
    status = one_of("status", query.filters.get("status"), TaskStatus.__members__)
    op = one_of("op", query.filters.get("op"), state.registry(request).ops)
    page = await state.store(request).list_tasks(query.cursor, query.limit, wsid, status, op, scope=scope(request))
    return JSONResponse(page_view(page, task_view))


async def get_task(request: Request) -> JSONResponse:
    """One task."""
    task = await state.store(request).get_task(path_id(request, "task_id"), scope=scope(request))
    return JSONResponse(task_view(task))


async def cancel_task(request: Request) -> JSONResponse:
    """Cancel: PENDING at once, RUNNING at its next safe point; a finished task is 409."""
    task_id = path_id(request, "task_id")
    structure_request(await json_body(request), NoBody)
    recorder = TaskRecorder(state.registry(request))
    task = await state.store(request).cancel_task(
        task_id, request.state.request_id, actor(request), recorder, scope=scope(request)
    )
    return JSONResponse(
        {"task_id": task.task_id, "status": task.status.value, "cancel_requested": task.cancel_requested}
    )
