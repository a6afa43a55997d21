"""``GET /v1/workspaces/{wsid}/snapshots``: the workspace's snapshots (the writes are routes of the snapshot ops)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import bad_request, list_query, path_wsid, scope
from wvs_core.api.views import page_view, snapshot_view
from wvs_core.labels import parse_filter

LABEL_FILTER = "label"
MAX_LABEL_FILTERS = 16  # as many as a snapshot can carry


def label_filters(given: list[str]) -> dict[str, str]:
    """The ``?label=key=value`` filters as ``{key: value}``; 400 for a malformed one, more than 16, or one key
    asked with two values (no snapshot could match)."""
    if len(given) > MAX_LABEL_FILTERS:
        raise bad_request(f"at most {MAX_LABEL_FILTERS} label filters")
    wanted: dict[str, str] = {}
    for text in given:
        try:
            key, value = parse_filter(text)
        except ValueError as error:
            raise bad_request(str(error)) from None
        if wanted.setdefault(key, value) != value:
            raise bad_request(f"label {key!r} is asked with two values")
    return wanted


async def list_snapshots(request: Request) -> JSONResponse:
    """Snapshots not deleted, newest first; ``?label=key=value`` (repeatable) keeps those carrying every one."""
    wsid = path_wsid(request)
    query = list_query(request, allowed_filters=(LABEL_FILTER,), repeatable=(LABEL_FILTER,))
    labels = label_filters(request.query_params.getlist(LABEL_FILTER))
    page = await state.store(request).list_snapshots(wsid, query.cursor, query.limit, labels, scope=scope(request))
    return JSONResponse(page_view(page, snapshot_view))
