"""Transactions the driver begins (``wvs_core.db.driver.DriverTransaction``): one transaction for the driver's
statements and SQLAlchemy's alike; begun ahead, it holds nothing the database cares about and outlives a
server-wide idle timeout; and however its block ends — an error, a dropped connection, a cancel — no connection
goes back to the pool still in a transaction."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from wvs_core.config import DatabaseConfig
from wvs_core.db.driver import DriverTransaction, TransactionAborted
from wvs_core.db.engine import asyncpg_dsn, create_engine, database_unavailable

INSERT = "INSERT INTO scratch (n) VALUES ($1)"


@pytest.fixture
async def admin(database: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, outside the engine's pool, with a table ``scratch``."""
    conn = await asyncpg.connect(asyncpg_dsn(database))
    await conn.execute("CREATE TABLE scratch (n int PRIMARY KEY)")
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def engine(database: str, admin: asyncpg.Connection) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(DatabaseConfig(dsn=database, pool_size=2))
    try:
        yield engine
    finally:
        await engine.dispose()


async def scratch(admin: asyncpg.Connection) -> list[int]:
    return [row["n"] for row in await admin.fetch("SELECT n FROM scratch ORDER BY n")]


async def backend(transaction: DriverTransaction) -> int:
    return int((await transaction.fetch("SELECT pg_backend_pid() AS pid"))[0]["pid"])


async def in_transaction(admin: asyncpg.Connection) -> list[str]:
    """The states of this database's other backends that are in a transaction or running a statement."""
    rows = await admin.fetch(
        "SELECT state FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND (state LIKE 'idle in transaction%' OR state = 'active')"
    )
    return [row["state"] for row in rows]


async def test_the_drivers_statements_and_sqlalchemys_commit_together_at_the_end_of_the_block(engine, admin) -> None:
    async with await DriverTransaction.begin(engine) as transaction:
        await transaction.fetch(INSERT, 1)
        await transaction.conn.execute(sa.text("INSERT INTO scratch (n) VALUES (2)"))
        assert await scratch(admin) == [], "nothing is visible before the commit: one transaction, not two"
    assert await scratch(admin) == [1, 2]


@pytest.mark.parametrize("failing", ["driver", "sqlalchemy", "python"])
async def test_an_error_in_the_block_rolls_everything_back_and_stands(engine, admin, failing: str) -> None:
    raised: type[BaseException] = {
        "driver": asyncpg.UniqueViolationError,
        "sqlalchemy": sa.exc.IntegrityError,
        "python": KeyError,
    }[failing]
    with pytest.raises(raised):
        async with await DriverTransaction.begin(engine) as transaction:
            await transaction.fetch(INSERT, 1)
            if failing == "driver":
                await transaction.fetch(INSERT, 1)
            elif failing == "sqlalchemy":
                await transaction.conn.execute(sa.text("INSERT INTO scratch (n) VALUES (1)"))
            else:
                raise KeyError("a rule failed")
    assert await scratch(admin) == []
    assert await in_transaction(admin) == []
    async with await DriverTransaction.begin(engine) as transaction:  # the connection went back sound
        await transaction.fetch(INSERT, 3)
    assert await scratch(admin) == [3]


async def test_begun_ahead_it_holds_no_snapshot_transaction_id_or_lock(engine, admin) -> None:
    transaction = await DriverTransaction.begin(engine)
    try:
        pid = int((await admin.fetch("SELECT pid FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'"))[0][0])
        activity = await admin.fetchrow(
            "SELECT state, backend_xid, backend_xmin FROM pg_stat_activity WHERE pid = $1", pid
        )
        assert dict(activity) == {"state": "idle in transaction", "backend_xid": None, "backend_xmin": None}
        locks = await admin.fetch("SELECT locktype FROM pg_locks WHERE pid = $1", pid)
        assert [lock["locktype"] for lock in locks] == ["virtualxid"], "only its own virtual transaction id"
    finally:
        await transaction.close()
    assert await in_transaction(admin) == [], "closed: rolled back, its connection back in the pool"


async def test_begun_ahead_it_outlives_a_server_wide_idle_in_transaction_timeout(database, admin) -> None:
    name = await admin.fetchval("SELECT current_database()")
    await admin.execute(f'ALTER DATABASE "{name}" SET idle_in_transaction_session_timeout = 100')
    engine = create_engine(DatabaseConfig(dsn=database, pool_size=2))
    try:
        with pytest.raises(sa.exc.DBAPIError) as ended:  # the setting holds: a plain transaction left idle is ended
            async with engine.begin() as plain:
                await plain.execute(sa.text("SELECT 1"))
                await asyncio.sleep(0.4)
                await plain.execute(sa.text("SELECT 1"))
        assert database_unavailable(ended.value)
        async with await DriverTransaction.begin(engine) as transaction:
            await asyncio.sleep(0.4)
            await transaction.fetch(INSERT, 1)
        assert await scratch(admin) == [1]
    finally:
        await engine.dispose()


async def test_a_connection_the_server_dropped_is_reported_as_unavailable_and_replaced(engine, admin) -> None:
    transaction = await DriverTransaction.begin(engine)
    pid = await backend(transaction)
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    await asyncio.sleep(0.1)
    with pytest.raises(Exception) as raised:  # which one does not matter: that database_unavailable knows it
        async with transaction:
            await transaction.fetch(INSERT, 1)
    assert database_unavailable(raised.value), f"a scheduler backs off and claims again, not fails: {raised.value!r}"
    async with await DriverTransaction.begin(engine) as again:
        assert await backend(again) != pid
        await again.fetch(INSERT, 2)
    assert await scratch(admin) == [2]


async def test_cancelled_in_the_middle_of_a_statement_it_leaves_no_transaction_open(engine, admin) -> None:
    async def slow() -> None:
        async with await DriverTransaction.begin(engine) as transaction:
            await transaction.fetch(INSERT, 1)
            await transaction.fetch("SELECT pg_sleep(30)")

    running = asyncio.create_task(slow())
    await asyncio.sleep(0.3)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    for _ in range(100):
        if not await in_transaction(admin):
            break
        await asyncio.sleep(0.05)
    assert await in_transaction(admin) == [], "the sleep was stopped and the transaction ended"
    assert await scratch(admin) == []
    async with await DriverTransaction.begin(engine) as transaction:
        await transaction.fetch(INSERT, 2)
    assert await scratch(admin) == [2]


async def test_cancelled_while_it_begins_it_leaves_no_transaction_in_the_pool(engine, admin) -> None:
    """However far its BEGIN got — not sent, on the wire, run by the server — a cancel leaves every pooled
    connection out of a transaction."""
    await (await DriverTransaction.begin(engine)).close()  # pooled: the next BEGIN is on the wire in a turn or two
    for spins in range(40):
        beginning = asyncio.create_task(DriverTransaction.begin(engine))
        for _ in range(spins):
            await asyncio.sleep(0)
        beginning.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await (await beginning).close()  # it was begun before the cancel landed
        await asyncio.sleep(0.05)
        assert await in_transaction(admin) == [], f"a transaction was left after {spins} turns of the loop"
    for _ in range(4):  # and every connection the pool hands out is sound
        async with engine.begin() as conn:
            await conn.execute(sa.text("SELECT 1"))


async def test_an_os_error_from_the_blocks_own_code_keeps_a_sound_connection(engine, admin) -> None:
    async with await DriverTransaction.begin(engine) as transaction:
        before = await backend(transaction)
    with pytest.raises(FileNotFoundError):
        async with await DriverTransaction.begin(engine) as transaction:
            await transaction.fetch(INSERT, 1)
            raise FileNotFoundError("an op's rule looked for a file")
    async with await DriverTransaction.begin(engine) as transaction:
        assert await backend(transaction) == before, "the connection was sound: it stays in the pool"
    assert await scratch(admin) == []


async def test_a_failed_statement_whose_error_the_block_caught_is_not_a_silent_rollback(engine, admin) -> None:
    with pytest.raises(TransactionAborted):
        async with await DriverTransaction.begin(engine) as transaction:
            await transaction.fetch(INSERT, 1)
            with contextlib.suppress(sa.exc.ProgrammingError):
                await transaction.conn.execute(sa.text("SELECT * FROM no_such_table"))
    assert await scratch(admin) == [], "PostgreSQL rolled it back: the block's end says so"


async def test_after_every_session_ended_a_restart_it_begins_on_a_new_connection(engine, admin) -> None:
    """The pool's connections all died with their sessions: the first BEGIN finds one dead, the pool is renewed,
    and the transaction begins on a new connection — the caller sees no error."""
    first, second = await DriverTransaction.begin(engine), await DriverTransaction.begin(engine)
    await first.close()
    await second.close()  # two connections pooled
    ended = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    assert await admin.fetchval(ended) == 2
    await asyncio.sleep(0.1)
    async with await DriverTransaction.begin(engine) as transaction:
        await transaction.fetch(INSERT, 1)
    assert await scratch(admin) == [1]


async def test_a_lost_connection_whose_error_the_block_caught_is_not_taken_for_a_commit(engine, admin) -> None:
    with pytest.raises(TransactionAborted):
        async with await DriverTransaction.begin(engine) as transaction:
            await transaction.fetch(INSERT, 1)
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", await backend(transaction))
            await asyncio.sleep(0.1)
            with contextlib.suppress(sa.exc.DBAPIError):
                await transaction.conn.execute(sa.text("SELECT 1"))
    assert await scratch(admin) == []
