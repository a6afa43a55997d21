"""Statements sent straight to a pooled connection's asyncpg driver, and transactions the driver begins.

On the hot paths — accepting a task, claiming tasks — SQLAlchemy's execution around a statement costs several
times what the statement costs the database, so those statements go to the driver of a connection checked out
from SQLAlchemy's pool, which prepares each statement once per connection (docs/benchmarks.md).

What a driver statement raises is raised as is, except when the server dropped the connection: then the
connection is found dead through SQLAlchemy, as on SQLAlchemy's own statements — the pool is renewed, and
SQLAlchemy's error is raised in place of the driver's, which ``database_unavailable`` knows as "retry".
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, cast

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_ALIVE = sa.text("SELECT 1")
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)

# A transaction begun ahead of its first statement waits idle by design (``DriverTransaction``): a server-wide
# idle_in_transaction_session_timeout, meant for transactions a client forgot, must not end it.
_BEGIN = "BEGIN; SET LOCAL idle_in_transaction_session_timeout = 0"


class TransactionAborted(Exception):
    """The block ended normally, but a statement in it had failed (and its error was caught): PostgreSQL rolled
    the transaction back instead of committing it, or the connection was lost with it."""


async def _raw(conn: AsyncConnection) -> asyncpg.Connection:
    return cast(asyncpg.Connection, (await conn.get_raw_connection()).driver_connection)


async def _found_dead(conn: AsyncConnection, error: BaseException) -> None:
    """After ``error`` from the driver of ``conn`` (outside a transaction): raise SQLAlchemy's error when the
    server dropped the connection (a statement through SQLAlchemy finds it so, and renews the pool); discard the
    connection when the driver's end is broken though its socket is not closed yet."""
    await conn.execute(_ALIVE)
    if not isinstance(error, asyncpg.PostgresError):
        await conn.invalidate()


@contextlib.asynccontextmanager
async def driver(conn: AsyncConnection) -> AsyncIterator[asyncpg.Connection]:
    """The asyncpg connection under ``conn`` (checked out, not in a transaction), for statements in autocommit;
    errors as the module says."""
    raw = await _raw(conn)
    try:
        yield raw
    except _DRIVER_ERRORS as error:
        await _found_dead(conn, error)
        raise


class DriverTransaction:
    """A transaction the driver begins and ends on a connection checked out of ``engine``'s pool, in which
    SQLAlchemy's statements on ``conn`` run as well: the connection is in SQLAlchemy's AUTOCOMMIT mode, so
    SQLAlchemy itself begins and ends nothing.

    It may be begun (``begin``) before its first statement is known — a scheduler begins its next claim while it
    waits for work, so that a wake-up costs the claim one round trip, not two. Begun so, it waits
    ``idle in transaction`` holding no snapshot, transaction id or lock (in READ COMMITTED, a transaction takes
    none of them before its first statement), and no server-wide ``idle_in_transaction_session_timeout`` ends it.
    Its ``now()`` is then the time of its BEGIN: statements in it tell the time with ``clock_timestamp()``.

    ``async with`` it: the block's end commits (raising ``TransactionAborted`` when a statement in it failed and
    the block caught the error), an error in it rolls back (and the error stands); either way the connection goes
    back to the pool, or is discarded when it could not be brought out of the transaction.
    ``close`` rolls back a transaction never used. Errors as the module says.
    """

    def __init__(self, conn: AsyncConnection, raw: asyncpg.Connection) -> None:
        self.conn = conn
        self._raw = raw
        self._failed: BaseException | None = None  # what the driver raised in ``fetch``

    @classmethod
    async def begin(cls, engine: AsyncEngine) -> DriverTransaction:
        """Check out a connection and begin a transaction on it (one round trip). A pooled connection the server
        dropped (a restart) fails its BEGIN, which renews the pool (see the module), and the BEGIN is sent once
        more, on a new connection: nothing had been done."""
        try:
            return await cls._begin(engine)
        except sa.exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise
        return await cls._begin(engine)

    @classmethod
    async def _begin(cls, engine: AsyncEngine) -> DriverTransaction:
        conn = await engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            async with driver(conn) as raw:
                await raw.execute(_BEGIN)
        except BaseException:
            # Cancelled while the BEGIN was on the wire, the server may run it all the same, and SQLAlchemy in
            # AUTOCOMMIT rolls back nothing at check-in: only closing the connection surely ends it.
            if not conn.invalidated:
                await conn.invalidate()
            await conn.close()
            raise
        return cls(conn, raw)

    @property
    def dropped(self) -> bool:
        """True when its connection is closed already — say, the server ended its session while it waited."""
        return self.conn.invalidated or self._raw.is_closed()

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """The rows of ``sql`` (asyncpg's ``$n`` parameters), run in this transaction."""
        try:
            return await self._raw.fetch(sql, *args)
        except _DRIVER_ERRORS as error:
            self._failed = error
            raise

    async def __aenter__(self) -> DriverTransaction:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._end("COMMIT" if error is None else "ROLLBACK", error)
        finally:
            await self._release()

    async def close(self) -> None:
        """Roll back a transaction never used, and give the connection back (discarded when it is broken)."""
        try:
            if not self.conn.invalidated:
                with contextlib.suppress(*_DRIVER_ERRORS):
                    await self._raw.execute("ROLLBACK")
        finally:
            await self._release()

    async def _end(self, command: str, error: BaseException | None) -> None:
        """Send ``command`` (COMMIT, or ROLLBACK after ``error``); then, after an error from the driver's own
        statement (not one the block's other code raised), find out whether the connection is dead. A connection
        that could not be rolled back is discarded; dead, SQLAlchemy's error stands in place of ``error`` — but a
        cancel stays a cancel."""
        if self.conn.invalidated:  # SQLAlchemy found the connection dead: the server ended the transaction with it
            if error is None:  # and the block caught that error
                raise TransactionAborted("the connection was lost in the transaction: nothing was committed")
            return
        try:
            status = await self._raw.execute(command)
        except _DRIVER_ERRORS as failed:
            if error is None or isinstance(error, Exception):
                await _found_dead(self.conn, failed)
            if error is None:
                raise
            return
        if error is not None and error is self._failed:
            await _found_dead(self.conn, error)
        if error is None and status == "ROLLBACK":  # PostgreSQL's answer to COMMIT after a failed statement
            raise TransactionAborted("a statement failed in the transaction (its error was caught): rolled back")

    async def _release(self) -> None:
        if not self.conn.invalidated and (self._raw.is_closed() or self._raw.is_in_transaction()):
            await self.conn.invalidate()  # closing it is what ends the transaction then
        await self.conn.close()
