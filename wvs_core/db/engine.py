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


def create_engine(config: DatabaseConfig, *, pre_ping: bool = True) -> AsyncEngine:
    """An AsyncEngine for the WVS database. With ``pre_ping`` every connection is checked as it leaves the pool
    (a BEGIN, a ping and a ROLLBACK: three round trips); without it, a connection the database dropped fails
    the one statement sent on it (``database_unavailable``) and the pool then replaces every older one."""
    return create_async_engine(
        async_dsn(config.dsn), pool_size=config.pool_size, pool_pre_ping=pre_ping, max_overflow=config.pool_size
    )
