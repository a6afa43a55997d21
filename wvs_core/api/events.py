"""``/v1/events``: the event log, oldest first, for clients that follow the service (SPEC §14)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import bad_request, list_query, scope
from wvs_core.convert import unstructure
from wvs_core.events import DeliveryState, Event
from wvs_core.ids import is_wsid

MAX_EVENT_ID_DIGITS = 18  # below 2**63: every event_id a BIGSERIAL can hold, nothing that overflows it


def event_id_param(name: str, value: str | None) -> int:
    """An event id given as a query parameter (absent: 0, the start of the log)."""
    if value is None:
        return 0
    if not (value.isascii() and value.isdigit() and len(value) <= MAX_EVENT_ID_DIGITS):
        raise bad_request(f"{name} must be an event_id (a non-negative integer of at most 18 digits)")
    return int(value)


def event_view(event: Event, deliveries: list[DeliveryState]) -> dict[str, Any]:
    """An event as ``GET /v1/events`` lists it: the event, plus ``deliveries``."""
    return {**event.to_json(), "deliveries": [unstructure(delivery) for delivery in deliveries]}


async def list_events(request: Request) -> JSONResponse:
    """Events after ``after`` (or ``cursor``), oldest first, optionally of one workspace."""
    query = list_query(request, ("wsid", "after"))
    wsid = query.filters.get("wsid")
    if wsid is not None and not is_wsid(wsid):
        raise bad_request(f"invalid wsid {wsid!r}")
    if query.cursor is not None and "after" in query.filters:
        raise bad_request("give after or cursor, not both")
    if query.cursor:
        after = event_id_param("cursor", query.cursor)
    else:
        after = event_id_param("after", query.filters.get("after"))
    page = await state.store(request).list_events(wsid, after, query.limit, scope=scope(request))
    items = [event_view(event, deliveries) for event, deliveries in page]
    next_cursor = str(page[-1][0].event_id) if len(page) == query.limit else None
    return JSONResponse({"items": items, "next_cursor": next_cursor})
