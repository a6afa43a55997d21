"""The one domain error type and its ``WVS_…`` codes (SPEC §2)."""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Every error code of the HTTP API, each mapped to its HTTP status."""

    BAD_REQUEST = "WVS_BAD_REQUEST"
    UNAUTHORIZED = "WVS_UNAUTHORIZED"
    FORBIDDEN = "WVS_FORBIDDEN"
    NOT_FOUND = "WVS_NOT_FOUND"
    CONFLICT_LOCKED = "WVS_CONFLICT_LOCKED"
    CONFLICT_IDEMPOTENT_MISMATCH = "WVS_CONFLICT_IDEMPOTENT_MISMATCH"
    CONFLICT_EXISTS = "WVS_CONFLICT_EXISTS"
    CONFLICT_SNAPSHOT_IN_USE = "WVS_CONFLICT_SNAPSHOT_IN_USE"
    GONE = "WVS_GONE"
    PRECONDITION_FAILED = "WVS_PRECONDITION_FAILED"
    INTERNAL = "WVS_INTERNAL"
    EXECUTOR_ERROR = "WVS_EXECUTOR_ERROR"
    EXECUTOR_TIMEOUT = "WVS_EXECUTOR_TIMEOUT"

    @property
    def http_status(self) -> int:
        """The HTTP status this code is answered with."""
        return _HTTP_STATUS[self]


_HTTP_STATUS = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT_LOCKED: 409,
    ErrorCode.CONFLICT_IDEMPOTENT_MISMATCH: 409,
    ErrorCode.CONFLICT_EXISTS: 409,
    ErrorCode.CONFLICT_SNAPSHOT_IN_USE: 409,
    ErrorCode.GONE: 410,
    ErrorCode.PRECONDITION_FAILED: 412,
    ErrorCode.INTERNAL: 500,
    ErrorCode.EXECUTOR_ERROR: 502,
    ErrorCode.EXECUTOR_TIMEOUT: 504,
}


class WVSError(Exception):
    """A failure the caller can act on, carrying its ``WVS_…`` code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StartupError(Exception):
    """A process cannot start as configured: what it names is missing, unreachable or taken (a database that
    does not answer, a port in use, a mount that is not there). The message names the setting (its config key
    and environment variable); the ``wvs`` commands print it as one line and exit 2."""


class ConfigError(StartupError):
    """The configuration is invalid; the message names the offending key."""
