"""The Starlette application: routes, error handlers, and a lifespan that owns engine and plugins."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from wvs_core.api import (
    audit,
    current,
    events,
    health,
    openapi,
    ops,
    retention,
    snapshots,
    submit,
    tasks,
    workspaces,
)
from wvs_core.api.auth import AuthMiddleware
from wvs_core.api.errors import EXCEPTION_HANDLERS
from wvs_core.api.middleware import MetricsMiddleware, RequestIdMiddleware, RequestLineMiddleware
from wvs_core.api.op_routes import mount_op_routes
from wvs_core.api.state import ApiState
from wvs_core.auth import TokenFile
from wvs_core.config import Config
from wvs_core.db.engine import create_api_engine
from wvs_core.db.store import Store
from wvs_core.plugins import PluginRegistry

core_routes = [
    Route("/healthz", health.healthz, methods=["GET"]),
    Route("/readyz", health.readyz, methods=["GET"]),
    Route("/metrics", health.metrics, methods=["GET"]),
    Route("/v1/openapi.yaml", openapi.openapi, methods=["GET"]),
    Route("/v1/workspaces", workspaces.create_workspace, methods=["POST"]),
    Route("/v1/workspaces", workspaces.list_workspaces, methods=["GET"]),
    Route("/v1/workspaces/{wsid}", workspaces.get_workspace, methods=["GET"]),
    Route("/v1/workspaces/{wsid}", workspaces.disable_workspace, methods=["DELETE"]),
    Route("/v1/workspaces/{wsid}/retry-init", workspaces.retry_init, methods=["POST"]),
    Route("/v1/workspaces/{wsid}/snapshots", snapshots.list_snapshots, methods=["GET"]),
    Route("/v1/workspaces/{wsid}/current", current.get_current, methods=["GET"]),
    Route("/v1/workspaces/{wsid}/tasks", submit.submit_task, methods=["POST"]),
    Route("/v1/workspaces/{wsid}/audit", audit.list_audit, methods=["GET"]),
    Route("/v1/workspaces/{wsid}/retention", retention.get_retention, methods=["GET"]),
    Route("/v1/workspaces/{wsid}/retention", retention.put_retention, methods=["PUT"]),
    Route("/v1/workspaces/{wsid}/retention:plan", retention.retention_plan, methods=["GET"]),
    Route("/v1/ops", ops.list_ops, methods=["GET"]),
    Route("/v1/tasks", tasks.list_tasks, methods=["GET"]),
    Route("/v1/tasks/{task_id}", tasks.get_task, methods=["GET"]),
    Route("/v1/tasks/{task_id}:cancel", tasks.cancel_task, methods=["POST"]),
    Route("/v1/tasks/{task_id}/result", tasks.task_result, methods=["GET"]),
    Route("/v1/events", events.list_events, methods=["GET"]),
]
"""The routes of the core; the write routes of ops (``TaskOp.routes``) are mounted after them by ``create_app``."""


def create_app(
    config: Config,
    registry: PluginRegistry | None = None,
    tokens: TokenFile | None = None,
    stopping: asyncio.Event | None = None,
) -> Starlette:
    """Build the API for ``config``; plugins are loaded here unless ``registry`` is given. With ``tokens``
    every request but the probes needs a bearer token. ``stopping`` is set when the service begins to stop: the
    requests waiting for a row another transaction holds then answer at once (``wvs_core.db.lockwait``). Raises
    ConfigError when an op's route is malformed or clashes with another route (``wvs_core.api.op_routes``)."""
    registry = registry or PluginRegistry.load(config.plugins)
    mounted = mount_op_routes(registry.ops.values(), core_routes)
    document = openapi.document(mounted, registry.ops.values())

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[ApiState]:
        engine = create_api_engine(config.database)
        queue_class = registry.queues[config.plugins.queue]
        queue = queue_class(engine, config.plugins.settings_for(config.plugins.queue))
        store = Store(engine, queue, stopping)
        try:
            yield {"config": config, "registry": registry, "store": store, "openapi_document": document}
        finally:
            await store.close()
            await engine.dispose()

    return Starlette(
        routes=[*core_routes, *(route.starlette_route() for route in mounted)],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(MetricsMiddleware),
            Middleware(AuthMiddleware, tokens=tokens),
            Middleware(RequestLineMiddleware),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
