"""``/v1/ops``: every loaded op, with the JSON Schema of its params."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.params_schema import params_schema


async def list_ops(request: Request) -> JSONResponse:
    """``{"items": [{name, description, params_schema, event_types, quiesces}], "next_cursor": null}``, by name: one
    short page; ``event_types`` maps each event type the op records (``TaskOp.event_types``) to its description,
    ``quiesces`` is ``TaskOp.quiesces``."""
    items = [
        {
            "name": op.name,
            "description": (type(op).__doc__ or "").strip().split("\n\n")[0],
            "params_schema": params_schema(op.params_type),
            "event_types": dict(op.event_types),
            "quiesces": op.quiesces,
        }
        for op in sorted(state.registry(request).ops.values(), key=lambda op: op.name)
    ]
    return JSONResponse({"items": items, "next_cursor": None})
