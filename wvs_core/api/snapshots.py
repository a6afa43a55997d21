"""``/v1/workspaces/{wsid}/snapshots``: create and list."""

from __future__ import annotations

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import json_body, list_query, path_wsid, submission
from wvs_core.api.views import page_view, snapshot_view
from wvs_core.api.workspaces import accepted_response
from wvs_core.convert import structure_request
from wvs_core.db.store import TaskSpec
from wvs_core.ids import uuid7

SNAPSHOT_OP = "snapshot_create"
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
    body = await json_body(request, state.config(request).api.max_body_bytes)
    create = structure_request(body, CreateSnapshot)
    config = state.config(request)
    spec = TaskSpec(
        op=SNAPSHOT_OP,
        params={"snapshot_id": uuid7(), "message": create.message},
        max_attempts=config.worker.max_attempts,
        timeout_seconds=int(config.executor.task_timeout),
    )
    accepted = await state.store(request).submit_task(wsid, spec, submission(request, body))
    task = accepted.task
    return accepted_response(
        accepted, {"task_id": task.task_id, "status": "PENDING", "snapshot_id": task.params["snapshot_id"]}
    )


async def list_snapshots(request: Request) -> JSONResponse:
    """Snapshots not deleted, newest first."""
    wsid = path_wsid(request)
    query = list_query(request)
    page = await state.store(request).list_snapshots(wsid, query.cursor, query.limit)
    return JSONResponse(page_view(page, snapshot_view))
