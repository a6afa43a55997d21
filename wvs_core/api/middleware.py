"""Every request: an X-Request-Id, HTTP metrics, one log line, and the string rule on its path and query."""

from __future__ import annotations

import logging
import time

from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wvs_core import metrics
from wvs_core.api.errors import error_response
from wvs_core.errors import ErrorCode
from wvs_core.ids import uuid7
from wvs_core.logs import log_context
from wvs_core.untrusted import text_problem

MAX_REQUEST_ID_LENGTH = 128
UNMATCHED_ROUTE = "unmatched"  # keeps label cardinality bounded for unknown paths

log = logging.getLogger("wvs_core.api")


def _acceptable(value: str | None) -> bool:
    # Printable excludes NUL and surrogates too: an id passing this passes the string rule.
    return bool(value) and len(value or "") <= MAX_REQUEST_ID_LENGTH and (value or "").isprintable()


class RequestIdMiddleware:
    """Takes a sane client ``X-Request-Id`` or makes one; puts it in request state, logs and the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id")
        request_id = incoming if incoming is not None and _acceptable(incoming) else uuid7()
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        with log_context(request_id=request_id):
            await self.app(scope, receive, send_with_id)


class MetricsMiddleware:
    """``wvs_http_*`` metrics by route template (never the raw path) and one log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.monotonic()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.ACTIVE_REQUESTS.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            metrics.ACTIVE_REQUESTS.dec()
            elapsed = time.monotonic() - started
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
            metrics.HTTP_DURATION.labels(route, method).observe(elapsed)
            log.info(
                "%s %s %s",
                method,
                scope["path"],
                status,
                extra={"route": route, "status": status, "duration_ms": round(elapsed * 1000, 1)},
            )


def request_line_problem(scope: Scope) -> str | None:
    """What in the path or the query string breaks the string rule (``wvs_core.untrusted``), or None.
    Percent-decoding yields NULs (``%00``); invalid UTF-8 is already U+FFFD, never a surrogate."""
    if problem := text_problem(scope["path"]):
        return f"the path {problem}"
    for name, value in QueryParams(scope["query_string"]).multi_items():
        if problem := text_problem(name):
            return f"a query parameter name {problem}"
        if problem := text_problem(value):
            return f"query parameter {name!r} {problem}"
    return None


class RequestLineMiddleware:
    """Refuses, 400 in the envelope, a request whose path or query breaks the string rule, before any route
    reads it: every route's path and query parameters are fit for the database and the error envelope.
    (Header values reach the app decoded as Latin-1 and without NUL, which the HTTP parser refuses.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        problem = request_line_problem(scope) if scope["type"] == "http" else None
        if problem is None:
            await self.app(scope, receive, send)
            return
        response = error_response(Request(scope), ErrorCode.BAD_REQUEST, problem)
        await response(scope, receive, send)
