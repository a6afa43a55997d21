"""Engine construction and DSN handling."""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from wvs_core.config import DatabaseConfig
from wvs_core.errors import ConfigError

# What talking to the database can raise; connection attempts surface OSError and asyncpg's own errors unwrapped.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    exc.DBAPIError,
    exc.TimeoutError,
    OSError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached right now (down, restarting, pool exhausted),
    as opposed to a fault in a query; such a request may simply be retried."""
    if isinstance(error, exc.DBAPIError):
        return error.connection_invalidated or isinstance(error, exc.OperationalError | exc.InterfaceError)
    return isinstance(error, DATABASE_ERRORS)


def async_dsn(dsn: str) -> str:
    """Normalise a PostgreSQL DSN to the asyncpg driver (``postgresql://`` → ``postgresql+asyncpg://``)."""
    if not dsn:
        raise ConfigError("database.dsn is not set (WVS_DB_DSN)")
    try:
        url = make_url(dsn)
    except Exception:
        raise ConfigError("database.dsn is not a valid database URL") from None
    if url.get_backend_name() != "postgresql":
        raise ConfigError(f"database.dsn must be a PostgreSQL URL, got {url.get_backend_name()!r}")
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def asyncpg_dsn(dsn: str) -> str:
    """The same DSN as plain libpq form, for a raw asyncpg connection (the LISTEN connection)."""
    return make_url(async_dsn(dsn)).set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(config: DatabaseConfig) -> AsyncEngine:
    """An AsyncEngine for the WVS database.

    No ``pool_pre_ping``: it would cost a round trip on every checkout — on every claim and every outcome.
    A connection the server dropped (a restart, a failover) fails the one statement that finds it so; that
    error invalidates the whole pool, so the next checkout connects afresh. The API answers that one request
    "retry" (``database_unavailable``), a scheduler backs off and claims again.
    """
    return create_async_engine(async_dsn(config.dsn), pool_size=config.pool_size, max_overflow=config.pool_size)


def create_api_engine(config: DatabaseConfig) -> AsyncEngine:
    """The API's engine: a request holds a connection for a statement or two, so ``pool_size`` connections
    serve thousands of requests a second and a burst waits for one rather than opening more (a new connection
    costs the database a process and both sides milliseconds). No pre-ping: it would cost every request three
    round trips (BEGIN, ping, ROLLBACK); a request that meets a connection the database dropped answers
    "database unavailable; retry" (``database_unavailable``) and the pool then replaces every older one."""
    return create_async_engine(async_dsn(config.dsn), pool_size=config.pool_size, max_overflow=0)
