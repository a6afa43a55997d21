"""Waiting for a row another transaction holds without holding a connection meanwhile.

A request that waited inside PostgreSQL for a workspace's row would keep one of the API's pooled connections
the whole time: a few requests for one workspace held by a long transaction would take the pool, and every
other workspace's requests and reads would queue behind them. So the API never waits there for a row. Its
accepting statement skips a held workspace (``SKIP LOCKED``, ``db/accept.py``); its transactions take the
workspace's row first, and any task's row, ``NOWAIT`` (``Store._lock_workspace``), so the rows they touch after
are theirs already. Either way the request gives its connection back and tries again after a pause, the pauses
doubling from ``FIRST_PAUSE`` to ``MAX_PAUSE``, for up to ``LOCK_PATIENCE`` seconds; then it answers 409
WVS_CONFLICT_LOCKED (the row was held all along; a retry with the same Idempotency-Key is safe). The requests of
one process that need the same row take turns at it (``Turns``), so only one of them tries at a time.

A lock on a whole table (an operator's ``ALTER TABLE``, ``VACUUM FULL``) is waited for inside PostgreSQL, by
reads and writes alike: nothing that needs the table could go ahead meanwhile anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import asyncpg
from sqlalchemy import exc

from wvs_core.errors import ErrorCode, WVSError

T = TypeVar("T")

LOCK_PATIENCE = 10.0  # seconds a request tries for a row before answering 409
FIRST_PAUSE = 0.002  # seconds before the second try
MAX_PAUSE = 0.25  # seconds between later tries
_LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a NOWAIT that met a held row


def lock_not_available(error: BaseException) -> bool:
    """Whether ``error`` is PostgreSQL's "could not obtain lock" (a NOWAIT that met a held row), raised by the
    driver or wrapped by SQLAlchemy."""
    if isinstance(error, exc.DBAPIError):
        return getattr(error.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE
    return isinstance(error, asyncpg.LockNotAvailableError)


class RowHeld(WVSError):
    """409 WVS_CONFLICT_LOCKED: a row the request needs was held by another transaction for its whole patience,
    or until the service began to stop."""


def held_too_long(what: str, stopping: bool = False) -> RowHeld:
    """``RowHeld`` naming ``what``: held for LOCK_PATIENCE seconds, or until the service began to stop."""
    how_long = "until the service began to stop" if stopping else f"for {LOCK_PATIENCE:g}s"
    return RowHeld(
        ErrorCode.CONFLICT_LOCKED,
        f"{what} is held by another transaction ({how_long}); retry with the same Idempotency-Key",
    )


class Patience:
    """One turn's tries at a row: the pause before the next one, until LOCK_PATIENCE has passed since the first."""

    def __init__(self) -> None:
        self._deadline = time.monotonic() + LOCK_PATIENCE
        self._pause = FIRST_PAUSE

    def remaining(self) -> float:
        """Seconds left (0 once the deadline has passed)."""
        return max(self._deadline - time.monotonic(), 0.0)

    def next_pause(self) -> float | None:
        """Seconds to wait before the next try (the last one comes at the deadline); None once it has passed."""
        remaining = self.remaining()
        if remaining <= 0:
            return None
        pause = min(self._pause, remaining)
        self._pause = min(self._pause * 2, MAX_PAUSE)
        return pause


class Turns:
    """The requests of this process that need the same row take turns at it, in arrival order: while a row is
    held, the request whose turn it is tries it after each pause and the others wait here — a held row costs
    one try per pause, not one per waiting request. Waiting for a turn costs no patience (requests for one
    workspace go one after the other, however many there are), but when a turn's patience runs out at a row
    held all along, the requests already waiting then are refused too: that row was held for them as long."""

    def __init__(self, stopping: asyncio.Event) -> None:
        self._stopping = stopping
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}
        self._refused: dict[str, float] = {}  # key → when a turn at it last ran out of patience (monotonic)

    @contextlib.asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[Patience]:
        """The turn at ``key`` (names the row), and the patience of its tries. Raises ``RowHeld`` (naming
        ``key``) at once when a turn ran out of patience while this one waited, or the service is stopping."""
        arrived = time.monotonic()
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                if self._stopping.is_set() or self._refused.get(key, -math.inf) >= arrived:
                    raise held_too_long(key, self._stopping.is_set())
                try:
                    yield Patience()
                except RowHeld:
                    self._refused[key] = time.monotonic()
                    raise
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]
                self._refused.pop(key, None)


async def retrying(attempt: Callable[[], Awaitable[T]], what: str, patience: Patience, stopping: asyncio.Event) -> T:
    """Run ``attempt`` (a whole transaction) until it does not meet a row someone else holds; raises
    ``held_too_long(what)`` once ``patience`` runs out or ``stopping`` is set (the service stops: its requests
    are answered, not cut off), and whatever else ``attempt`` raises."""
    while True:
        try:
            return await attempt()
        except (exc.DBAPIError, asyncpg.PostgresError) as error:
            if not lock_not_available(error):
                raise
        pause = patience.next_pause()
        if pause is None or stopping.is_set():
            raise held_too_long(what, stopping.is_set())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), pause)
