"""Every list costs the same with a thousand rows or a million: the exact SQL each list endpoint sends, with
each filter, is a walk of one index in the list's own order that stops after the page — no Seq Scan, no Sort
of more than a page, no walk through rows filtered away, a bounded number of pages read — on tables seeded
far larger than a page. Checked with
EXPLAIN (ANALYZE, BUFFERS) in both plans PostgreSQL may run it with: the custom plan a new connection uses
and the generic plan a long-lived connection's prepared statement settles on."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from tests.conftest import fresh_database
from wvs_core.config import DatabaseConfig
from wvs_core.db.engine import async_dsn, create_engine
from wvs_core.db.store import Store
from wvs_core.embedded import EmbeddedPostgres
from wvs_core.scope import Scope
from wvs_pgqueue.queue import PostgresQueue

BIG = "big"  # the workspace holding half of every table
PAGE = 5
MAX_SKIPPED_PER_ROW = 10
MAX_PAGES_READ = 100  # a page of PAGE rows reads a few index pages and at most PAGE heap pages, times a few
BIG_TABLES = {"workspaces", "tasks", "snapshots", "audit", "event_deliveries"}
GATHERING_NODES = {"Sort", "Incremental Sort", "Bitmap Heap Scan"}  # their cost is every row they gather

SEED = [
    f"""INSERT INTO wvs.workspaces (wsid, owner, root_path, state, created_at)
    SELECT 'ws-' || n, 'owner-' || n % 20, '/ws/ws-' || n,
           CASE WHEN n % 97 = 0 THEN 'DISABLED' ELSE 'ACTIVE' END, now() - make_interval(secs => n)
    FROM generate_series(1, 20000) AS n
    UNION ALL SELECT '{BIG}', 'owner-0', '/ws/{BIG}', 'ACTIVE', now()""",
    # Half the tasks in BIG; DEAD and set_current rare; created_at ties in threes.
    f"""INSERT INTO wvs.tasks (task_id, wsid, op, status, created_at, params)
    SELECT lpad(to_hex(n), 8, '0') || '-0000-7000-8000-000000000000',
           CASE WHEN n % 2 = 0 THEN '{BIG}' ELSE 'ws-' || (1 + n % 20000) END,
           CASE WHEN n % 7 = 0 THEN 'set_current' ELSE 'snapshot_create' END,
           CASE WHEN n % 97 = 0 THEN 'DEAD' WHEN n % 13 = 0 THEN 'PENDING' ELSE 'SUCCEEDED' END,
           now() - make_interval(secs => n / 3), '{{}}'
    FROM generate_series(1, 200000) AS n""",
    # Two thirds dropped (retention leaves their rows behind); labels as an hourly job leaves them: most
    # snapshots carry kind=hourly, one in four a team too.
    f"""INSERT INTO wvs.snapshots (snapshot_id, wsid, fs_path, created_at, deleted_at, labels)
    SELECT lpad(to_hex(n), 8, '0') || '-0000-7000-8000-000000000001',
           CASE WHEN n % 2 = 0 THEN '{BIG}' ELSE 'ws-' || (1 + n % 20000) END, '/s/' || n,
           now() - make_interval(secs => n), CASE WHEN n % 3 = 0 THEN NULL ELSE now() END,
           jsonb_build_object('kind', CASE WHEN n % 5 = 0 THEN 'manual' ELSE 'hourly' END)
           || CASE WHEN n % 4 = 0 THEN jsonb_build_object('team', 'a') ELSE '{{}}'::jsonb END
    FROM generate_series(1, 100000) AS n""",
    f"""INSERT INTO wvs.audit (event_id, ts, wsid, action, payload)
    SELECT n, now() - make_interval(secs => 200000 - n),
           CASE WHEN n % 2 = 0 THEN '{BIG}' ELSE 'ws-' || (1 + n % 20000) END, 'task.created', '{{}}'
    FROM generate_series(1, 200000) AS n""",
    "SELECT setval(pg_get_serial_sequence('wvs.audit', 'event_id'), 200000)",
    "INSERT INTO wvs.event_cursors (subscription, last_event_id) VALUES ('log', 150000)",
    """INSERT INTO wvs.event_deliveries (subscription, event_id, state, attempts, first_attempt_at, last_attempt_at)
    SELECT 'log', n, 'delivered', 1, now(), now() FROM generate_series(1, 150000) AS n""",
    "ANALYZE",
]

TASK_FILTERS = [
    {},
    {"wsid": BIG},
    {"status": "DEAD"},
    {"op": "set_current"},
    {"wsid": BIG, "status": "DEAD"},
    {"wsid": BIG, "op": "set_current"},
    {"status": "DEAD", "op": "set_current"},
    {"wsid": BIG, "status": "DEAD", "op": "set_current"},
    {"status": "SUCCEEDED"},
]
LISTS = [
    ("/v1/workspaces", {}),
    ("/v1/workspaces", {"state": "DISABLED"}),
    (f"/v1/workspaces/{BIG}/snapshots", {}),
    # A common label is checked on the index walk's rows: a page reads a few pages more. (A label few
    # snapshots carry costs a walk over the others, as the list's docstring says; not asserted flat.)
    (f"/v1/workspaces/{BIG}/snapshots", {"label": ["kind=hourly"]}),
    (f"/v1/workspaces/{BIG}/snapshots", {"label": ["kind=hourly", "team=a"]}),
    *[("/v1/tasks", filters) for filters in TASK_FILTERS],
    (f"/v1/workspaces/{BIG}/audit", {}),
    ("/v1/events", {}),
    ("/v1/events", {"after": "199990"}),
    ("/v1/events", {"wsid": BIG}),
    ("/v1/events", {"wsid": BIG, "after": "100000"}),
]


@contextlib.contextmanager
def sent_statements() -> Iterator[list[tuple[str, Any]]]:
    """Every statement (and its parameters) this process sends to a database meanwhile."""
    sent: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        sent.append((statement, parameters))

    sa.event.listen(Engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        sa.event.remove(Engine, "before_cursor_execute", note)


async def _seed(dsn: str) -> None:
    engine = create_async_engine(async_dsn(dsn))
    try:
        async with engine.begin() as conn:
            for statement in SEED:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def seeded_template(postgres: EmbeddedPostgres) -> Iterator[str]:
    """A migrated database seeded once for the module (workspaces 20k, tasks 200k, snapshots 100k, audit
    200k, analyzed); its name, for each test's database to be copied from."""
    with fresh_database(postgres) as dsn:
        loop = asyncio.new_event_loop()  # not asyncio.run: that would leave the main thread without a loop
        try:
            loop.run_until_complete(_seed(dsn))
        finally:
            loop.close()
        yield str(make_url(dsn).database)


@pytest.fixture
def database(postgres: EmbeddedPostgres, seeded_template: str) -> Iterator[str]:
    """This module's fresh database per test: a copy of the seeded one (statistics included)."""
    with fresh_database(postgres, template=seeded_template) as dsn:
        yield dsn


@pytest.fixture
async def seeded(database: str) -> AsyncIterator[AsyncConnection]:
    """A connection to the seeded database, to EXPLAIN on."""
    engine = create_async_engine(async_dsn(database))
    async with engine.connect() as conn:
        yield conn
    await engine.dispose()


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


async def problems(conn: AsyncConnection, statement: str, parameters: Any) -> list[str]:
    """What makes ``statement`` cost more as its tables grow, in its custom and its generic plan."""
    found = []
    for mode in ("force_custom_plan", "force_generic_plan"):
        await conn.exec_driver_sql(f"SET plan_cache_mode = {mode}")
        explained = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}", parameters)
        document = explained.scalar_one()
        plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
        for node in nodes(plan):
            kind, relation = node["Node Type"], node.get("Relation Name")
            rows = node["Actual Rows"] * node["Actual Loops"]
            if kind == "Seq Scan" and relation in BIG_TABLES:
                found.append(f"{mode}: Seq Scan on {relation}")
            # The planner may sort what an index condition found when it expects no more than a page of it.
            if kind in GATHERING_NODES and rows > PAGE + 1:
                found.append(f"{mode}: {kind} {relation or ''} of {rows:g} rows")
            # A walk may skip rows a common filter value leaves out (about as many as it keeps, for half the
            # table); one that skips more than ten for each it keeps is looking for a rare value the hard way.
            if (removed := node.get("Rows Removed by Filter", 0)) > MAX_SKIPPED_PER_ROW * PAGE:
                found.append(f"{mode}: {kind} on {relation} threw away {removed:g} rows")
        pages = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
        if pages > MAX_PAGES_READ:
            found.append(f"{mode}: read {pages} pages")
    await conn.exec_driver_sql("RESET plan_cache_mode")
    return found


async def explain_all(conn: AsyncConnection, sent: list[tuple[str, Any]], what: str) -> list[str]:
    assert sent, f"{what} sent no statement"
    found = []
    for statement, parameters in sent:
        if "wvs.event_cursors" in statement:  # one row per subscription, whatever the volume of events
            continue
        found += [f"{what}: {problem}\n    {statement}" for problem in await problems(conn, statement, parameters)]
    return found


async def test_every_list_and_filter_walks_an_index_in_its_order(api, seeded: AsyncConnection) -> None:
    found = []
    for path, filters in LISTS:
        cursor = None
        for page in (1, 2):
            params = {**filters, "limit": str(PAGE)}
            if cursor:  # it takes the place of events' ``after``
                params = {name: value for name, value in params.items() if name != "after"} | {"cursor": cursor}
            with sent_statements() as sent:
                response = await api.get(path, params=params)
            assert response.status_code == 200, response.text
            found += await explain_all(seeded, sent, f"GET {path} {params} page {page}")
            cursor = response.json()["next_cursor"]
            assert cursor, f"GET {path} {filters}: the seed must fill more than a page"
    assert found == [], "\n".join(found)


async def test_a_tokens_lists_of_one_owner_walk_an_index_too(database: str, seeded: AsyncConnection) -> None:
    engine = create_engine(DatabaseConfig(dsn=database, pool_size=2))
    store = Store(engine, PostgresQueue(engine, {}))
    scope = Scope(owners=frozenset({"owner-0"}))
    found = []
    try:
        for state in (None, "DISABLED", "ACTIVE"):
            with sent_statements() as sent:
                page = await store.list_workspaces(None, PAGE, state, scope=scope)
            found += await explain_all(seeded, sent, f"workspaces of owner-0 in state {state}")
            with sent_statements() as sent:
                await store.list_workspaces(page.next_cursor, PAGE, state, scope=scope)
            found += await explain_all(seeded, sent, f"workspaces of owner-0 in state {state}, page 2")
        for listing in (store.list_snapshots, store.list_audit):
            with sent_statements() as sent:
                await listing(BIG, None, PAGE, scope=scope)
            found += await explain_all(seeded, sent, f"{listing.__name__} of owner-0's {BIG}")
    finally:
        await engine.dispose()
    assert found == [], "\n".join(found)
