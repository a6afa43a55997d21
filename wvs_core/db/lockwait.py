"""Waiting for a row another transaction holds without holding a connection meanwhile.

A request that waited inside PostgreSQL for a workspace's row would keep one of the API's pooled connections
the whole time: a few requests for one workspace held by a long transaction would take the pool, and every
other workspace's requests and reads would queue behind them. So the API never waits there. Its accepting
statement skips a held workspace (``SKIP LOCKED``, ``db/accept.py``), its transactions take workspace rows
``NOWAIT``, and every other lock wait of an API connection ends after ``API_LOCK_TIMEOUT`` (PostgreSQL's
``lock_timeout``). Either way the request gives its connection back and tries again after a pause, the
pauses doubling from ``FIRST_PAUSE`` to ``MAX_PAUSE``, for up to ``LOCK_PATIENCE`` seconds; then it answers
409 WVS_CONFLICT_LOCKED (the row was held all along; a retry with the same Idempotency-Key is safe).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from sqlalchemy import exc

from wvs_core.errors import ErrorCode, WVSError

T = TypeVar("T")

LOCK_PATIENCE = 10.0  # seconds a request tries for a row before answering 409
FIRST_PAUSE = 0.002  # seconds before the second try
MAX_PAUSE = 0.25  # seconds between later tries
API_LOCK_TIMEOUT = "100ms"  # lock_timeout of the API's connections: the longest wait on one try
_LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of NOWAIT and lock_timeout


def lock_not_available(error: BaseException) -> bool:
    """Whether ``error`` is PostgreSQL's "could not obtain lock" (a NOWAIT or ``lock_timeout``), raised by the
    driver or wrapped by SQLAlchemy."""
    if isinstance(error, exc.DBAPIError):
        return getattr(error.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE
    return isinstance(error, asyncpg.LockNotAvailableError)


def held_too_long(what: str) -> WVSError:
    """409 WVS_CONFLICT_LOCKED: ``what`` was held by another transaction for LOCK_PATIENCE seconds."""
    return WVSError(
        ErrorCode.CONFLICT_LOCKED,
        f"{what} is held by another transaction (for {LOCK_PATIENCE:g}s); retry with the same Idempotency-Key",
    )


class Patience:
    """One request's tries: the pause before the next one, until LOCK_PATIENCE has passed since the first."""

    def __init__(self) -> None:
        self._deadline = time.monotonic() + LOCK_PATIENCE
        self._pause = FIRST_PAUSE

    def next_pause(self) -> float | None:
        """Seconds to wait before the next try (the last one comes at the deadline); None once it has passed."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            return None
        pause = min(self._pause, remaining)
        self._pause = min(self._pause * 2, MAX_PAUSE)
        return pause


async def retrying(attempt: Callable[[], Awaitable[T]], what: str) -> T:
    """Run ``attempt`` (a whole transaction) until it does not meet a row someone else holds; raises
    ``held_too_long(what)`` after LOCK_PATIENCE seconds, and whatever else ``attempt`` raises."""
    patience = Patience()
    while True:
        try:
            return await attempt()
        except (exc.DBAPIError, asyncpg.PostgresError) as error:
            if not lock_not_available(error):
                raise
        pause = patience.next_pause()
        if pause is None:
            raise held_too_long(what)
        await asyncio.sleep(pause)
