"""X-Request-Id on every request and response."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wvs_core.ids import uuid7
from wvs_core.logs import log_context

MAX_REQUEST_ID_LENGTH = 128


def _acceptable(value: str | None) -> bool:
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
