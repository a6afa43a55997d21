"""Bearer-token authentication: 401 without a valid token, 403 for a read-only token that writes."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from wvs_core.api.errors import error_response
from wvs_core.auth import TokenFile
from wvs_core.errors import ErrorCode

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/v1/openapi.yaml"})  # probes, scrapers, docs


class AuthMiddleware:
    """Puts the caller's ``Principal`` in ``request.state.principal``; with no token table, everyone is
    let in anonymously (``principal`` None)."""

    def __init__(self, app: ASGIApp, tokens: TokenFile | None) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        state = scope.setdefault("state", {})
        state["principal"] = None
        if scope["type"] != "http" or self.tokens is None or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        principal = self.tokens.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if principal is None:
            message = "a valid 'Authorization: Bearer <token>' header is required"
            response = error_response(Request(scope), ErrorCode.UNAUTHORIZED, message)
            response.headers["WWW-Authenticate"] = 'Bearer realm="wvs"'
        elif not principal.may(scope["method"]):
            message = f"the token of {principal.subject!r} may only read"
            response = error_response(Request(scope), ErrorCode.FORBIDDEN, message)
        else:
            state["principal"] = principal
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)
