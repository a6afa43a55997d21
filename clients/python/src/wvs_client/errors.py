"""WVS's answers as exceptions: one class per ``WVS_…`` code of the error envelope, all under ``WvsError``."""

from __future__ import annotations

from typing import Any


class WvsError(Exception):
    """An error answer from WVS, or a failure to get one.

    ``code`` is the envelope's ``WVS_…`` code (``HTTP_<status>`` when the answer held no envelope, for example
    from a proxy), ``message`` its message, ``status`` the HTTP status (None when no answer came), ``request_id``
    the id WVS logged the request under (the envelope's, else the ``X-Request-Id`` sent).
    """

    code = "WVS_ERROR"

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, request_id: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" + (f" (request_id {self.request_id})" if self.request_id else "")


class WvsUnreachable(WvsError):
    """No answer: the connection failed or timed out, after the retries the client makes. It has no
    ``request_id``: no server saw the request."""

    code = "WVS_UNREACHABLE"


class BadRequest(WvsError):
    """400: malformed input; the message names the field."""

    code = "WVS_BAD_REQUEST"


class Unauthorized(WvsError):
    """401: no valid bearer token."""

    code = "WVS_UNAUTHORIZED"


class Forbidden(WvsError):
    """403: the token may not do this (a read token writing, another owner's workspace created)."""

    code = "WVS_FORBIDDEN"


class NotFound(WvsError):
    """404: no such workspace, snapshot or task (or not one the token sees)."""

    code = "WVS_NOT_FOUND"


class ConflictLocked(WvsError):
    """409: the workspace has unfinished tasks, or the task has ended already."""

    code = "WVS_CONFLICT_LOCKED"


class ConflictIdempotentMismatch(WvsError):
    """409: the Idempotency-Key was used before with another request."""

    code = "WVS_CONFLICT_IDEMPOTENT_MISMATCH"


class ConflictExists(WvsError):
    """409: the workspace exists, created by another request."""

    code = "WVS_CONFLICT_EXISTS"


class ConflictSnapshotInUse(WvsError):
    """409: the snapshot is current or referenced by an unfinished task."""

    code = "WVS_CONFLICT_SNAPSHOT_IN_USE"


class Gone(WvsError):
    """410: the workspace is DISABLED; it stays readable."""

    code = "WVS_GONE"


class PreconditionFailed(WvsError):
    """412: the workspace is not in a state that allows this (not ACTIVE, not INIT_FAILED)."""

    code = "WVS_PRECONDITION_FAILED"


class InternalError(WvsError):
    """500: WVS failed; ``request_id`` finds it in the logs."""

    code = "WVS_INTERNAL"


class ExecutorError(WvsError):
    """502: an executor failed."""

    code = "WVS_EXECUTOR_ERROR"


class ExecutorTimeout(WvsError):
    """504: an executor did not answer in time."""

    code = "WVS_EXECUTOR_TIMEOUT"


class WaitTimeout(WvsError, TimeoutError):
    """``wait()`` gave up before the task reached a terminal state; ``task`` is the last state seen."""

    code = "WVS_WAIT_TIMEOUT"

    def __init__(self, message: str, task: Any) -> None:
        super().__init__(message)
        self.task = task


ERRORS_BY_CODE: dict[str, type[WvsError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        ConflictLocked,
        ConflictIdempotentMismatch,
        ConflictExists,
        ConflictSnapshotInUse,
        Gone,
        PreconditionFailed,
        InternalError,
        ExecutorError,
        ExecutorTimeout,
    )
}
"""Every code of SPEC §2's table, to its class."""


def error_from_answer(status: int, body: Any, request_id: str) -> WvsError:
    """The exception for an error answer: ``body`` is its parsed JSON (None when it was not JSON), ``request_id``
    the one sent. An unknown code is a plain ``WvsError`` carrying it."""
    envelope = body.get("error") if isinstance(body, dict) else None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("code"), str):
        return WvsError(
            f"HTTP {status} without an error envelope", code=f"HTTP_{status}", status=status, request_id=request_id
        )
    code = envelope["code"]
    cls = ERRORS_BY_CODE.get(code, WvsError)
    return cls(
        str(envelope.get("message", "")),
        code=code,
        status=status,
        request_id=str(envelope.get("request_id") or request_id),
    )
