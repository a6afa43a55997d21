"""The error envelope: every failure answers ``{"error": {code, message, request_id}}``."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wvs_core.db.engine import DATABASE_ERRORS, database_unavailable
from wvs_core.errors import ErrorCode, WVSError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1


def error_response(request: Request, code: ErrorCode, message: str, status: int | None = None) -> JSONResponse:
    """The JSON envelope for ``code``. A message quoting input that cannot be encoded (a lone surrogate
    slipping past the string rule) is escaped, so the envelope can always be sent."""
    request_id = getattr(request.state, "request_id", "")
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse(
        {"error": {"code": code.value, "message": message, "request_id": request_id}},
        status_code=status or code.http_status,
        headers={"X-Request-Id": request_id},
    )


async def wvs_error(request: Request, exc: Exception) -> Response:
    """A domain error: its own code."""
    assert isinstance(exc, WVSError)
    return error_response(request, exc.code, exc.message)


async def http_error(request: Request, exc: Exception) -> Response:
    """Routing errors (unknown path, wrong method) in the same envelope."""
    assert isinstance(exc, HTTPException)
    code = ErrorCode.NOT_FOUND if exc.status_code == 404 else ErrorCode.BAD_REQUEST
    return error_response(request, code, str(exc.detail), status=exc.status_code)


async def database_error(request: Request, exc: Exception) -> Response:
    """A database that cannot be reached is said so, with ``Retry-After``, and logged in one line; any
    other database error is unexpected."""
    if not database_unavailable(exc):
        return await unexpected_error(request, exc)
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    response = error_response(request, ErrorCode.INTERNAL, "the database is unavailable; retry shortly")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """Anything else: logged with the request id, answered as WVS_INTERNAL without details."""
    log.exception("unhandled error", exc_info=exc)
    return error_response(request, ErrorCode.INTERNAL, "internal error; quote the request_id when reporting it")


EXCEPTION_HANDLERS = {
    WVSError: wvs_error,
    HTTPException: http_error,
    **dict.fromkeys(DATABASE_ERRORS, database_error),
    Exception: unexpected_error,
}
