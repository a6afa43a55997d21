"""``/v1/tasks``: list, get, cancel, and a finished task's result page by page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import actor, bad_request, json_body, list_query, one_of, path_id, scope
from wvs_core.api.views import page_view, task_view
from wvs_core.api.workspaces import NoBody
from wvs_core.convert import structure_request
from wvs_core.db.outcomes import TaskRecorder
from wvs_core.db.pagination import decode_position, encode_position
from wvs_core.errors import ErrorCode, WVSError
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
    ops = state.registry(request).ops
    return JSONResponse(page_view(page, lambda task: task_view(task, ops.get(task.op))))


async def get_task(request: Request) -> JSONResponse:
    """One task; a list its op serves page by page is left out of its result (``result_page`` instead)."""
    task = await state.store(request).get_task(path_id(request, "task_id"), scope=scope(request))
    return JSONResponse(task_view(task, state.registry(request).ops.get(task.op)))


async def task_result(request: Request) -> JSONResponse:
    """One page of the list a SUCCEEDED task's op declares as its ``paged_result``, in the list's own order:
    ``{"items", "next_cursor"}``. 409 for a task that has not succeeded, 400 for an op without such a list."""
    query = list_query(request)
    task = await state.store(request).get_task(path_id(request, "task_id"), scope=scope(request))
    if task.status != TaskStatus.SUCCEEDED:
        raise WVSError(
            ErrorCode.CONFLICT_LOCKED, f"task {task.task_id} is {task.status}: it has no result until it has SUCCEEDED"
        )
    op = state.registry(request).ops.get(task.op)
    key = op.paged_result if op is not None else None
    items = (task.result or {}).get(key) if key is not None else None
    if not isinstance(items, list):
        raise bad_request(f"the result of a {task.op} task has no list to page; GET /v1/tasks/{task.task_id} shows it")
    start = decode_position(query.cursor, len(items)) if query.cursor is not None else 0
    end = start + query.limit
    next_cursor = encode_position(end) if end < len(items) else None
    return JSONResponse({"items": items[start:end], "next_cursor": next_cursor})


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
