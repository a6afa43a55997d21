"""``/v1/workspaces/{wsid}/retention``: the workspace's own policy (read, set, cleared) and ``retention:plan``,
what the policy that applies would drop now and which rules keep the others (changes nothing)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from wvs_core.api import state
from wvs_core.api.inputs import actor, json_body, path_wsid, scope
from wvs_core.convert import structure_request, unstructure
from wvs_core.db import retention as stored
from wvs_core.retention import RetentionPolicy


def _view(wsid: str, own: RetentionPolicy | None, default: RetentionPolicy) -> dict[str, Any]:
    effective = own or default
    return {
        "wsid": wsid,
        "policy": None if own is None else unstructure(own),
        "effective": unstructure(effective),
        "source": "workspace" if own is not None else "config",
        "description": effective.describe(),
    }


async def get_retention(request: Request) -> JSONResponse:
    """``{wsid, policy (the workspace's own, null: none), effective, source: workspace|config, description}``."""
    store = state.store(request)
    workspace = await store.get_workspace(path_wsid(request), scope=scope(request))
    async with store.autocommit.connect() as conn:
        own = await stored.own_policy(conn, workspace.wsid)
    return JSONResponse(_view(workspace.wsid, own, state.config(request).retention))


async def put_retention(request: Request) -> JSONResponse:
    """Set the workspace's own policy (an empty body or ``{}`` clears it: the config's default applies);
    400 naming a bad rule, 410 on a DISABLED workspace. Answers like GET."""
    wsid = path_wsid(request)
    body = await json_body(request)
    own = None if body == {} else structure_request(body, RetentionPolicy)
    await state.store(request).set_retention_policy(
        wsid, own, actor(request), request.state.request_id, scope=scope(request)
    )
    return JSONResponse(_view(wsid, own, state.config(request).retention))


async def retention_plan(request: Request) -> JSONResponse:
    """``{"keep": [{snapshot_id, reasons}], "drop": [{snapshot_id}]}``, newest first: what applying the policy
    now would do (the current snapshot and those unfinished tasks reference are kept, with that reason)."""
    store = state.store(request)
    workspace = await store.get_workspace(path_wsid(request), scope=scope(request))
    references = state.registry(request).snapshot_references
    async with store.autocommit.connect() as conn:
        _policy, plan = await stored.workspace_plan(
            conn, workspace.wsid, state.config(request).retention, references, datetime.now(UTC)
        )
    return JSONResponse(unstructure(plan))
