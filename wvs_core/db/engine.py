"""Engine construction and DSN handling."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from wvs_core.config import DatabaseConfig, setting
from wvs_core.db.tables import SCHEMA
from wvs_core.errors import ConfigError, StartupError

# What talking to the database can raise; connection attempts surface OSError and asyncpg's own errors unwrapped.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    exc.DBAPIError,
    exc.TimeoutError,
    OSError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InternalClientError,  # a dropped connection's protocol still in an error the server never finished
)


DSN = setting("database.dsn")
STARTUP_PATIENCE = 10.0  # seconds a process starting waits for the database to answer


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached right now (down, restarting, pool exhausted, a
    connection it dropped whose end the driver is still reading: asyncpg's ``InternalClientError``), as opposed
    to a fault in a query; such a request may simply be retried."""
    if isinstance(error, exc.DBAPIError):
        return (
            error.connection_invalidated
            or isinstance(error, exc.OperationalError | exc.InterfaceError)
            or isinstance(error.orig.__cause__ if error.orig else None, asyncpg.InternalClientError)
        )
    return isinstance(error, DATABASE_ERRORS)


def async_dsn(dsn: str) -> str:
    """Normalise a PostgreSQL DSN to the asyncpg driver (``postgresql://`` → ``postgresql+asyncpg://``)."""
    if not dsn:
        raise ConfigError(f"{DSN} is not set: give it a PostgreSQL URL, postgresql://USER:PASSWORD@HOST/DATABASE")
    try:
        url = make_url(dsn)
    except Exception:
        raise ConfigError(f"{DSN} is not a valid URL: expected postgresql://USER:PASSWORD@HOST/DATABASE") from None
    if url.get_backend_name() != "postgresql":
        raise ConfigError(f"{DSN} must be a PostgreSQL URL, got {url.get_backend_name()!r}")
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


async def connect_or_refuse(dsn: str) -> asyncpg.Connection:
    """A connection to the database at ``dsn`` (``database.dsn``), for a start-up check.

    A database that is down or starting (a restart, a failover) is tried again, backing off, for up to
    STARTUP_PATIENCE seconds; one that refuses the login or lacks the database is not. Raises ConfigError for
    a DSN that is not a PostgreSQL URL, StartupError (naming ``database.dsn`` and ``WVS_DB_DSN``) when no
    connection is made.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_PATIENCE
    pause = 0.1
    while True:
        try:
            return await asyncpg.connect(asyncpg_dsn(dsn), timeout=max(deadline - loop.time(), 1.0))
        except (OSError, TimeoutError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError) as error:
            if loop.time() + pause >= deadline:
                raise StartupError(f"cannot reach the database at {DSN}: {describe_connect_error(error)}") from None
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise StartupError(f"the database at {DSN} refuses: {describe_connect_error(error)}") from None
        await asyncio.sleep(pause)
        pause = min(pause * 2, 2.0)


async def check_database(config: DatabaseConfig) -> None:
    """At start-up: the database at ``config.dsn`` answers and holds the WVS schema. Raises as
    ``connect_or_refuse``, and StartupError when the schema was never migrated."""
    connection = await connect_or_refuse(config.dsn)
    try:
        migrated = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{SCHEMA}.alembic_version")
    finally:
        await connection.close()
    if not migrated:
        raise StartupError(f"the database at {DSN} has no WVS schema: run `wvs migrate` first")


def describe_connect_error(error: BaseException) -> str:
    """One line for why a connection failed (a timeout's message is empty)."""
    text = " ".join(str(error).split())
    return text or f"no answer ({type(error).__name__})"
