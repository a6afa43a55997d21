"""Migrations create exactly the models' schema, and every migration has a working downgrade."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.helpers import Head, workspace_heads
from wvs_core.db.engine import async_dsn
from wvs_core.db.tables import SCHEMA, metadata
from wvs_core.migrate import downgrade, upgrade


def _differences(dsn: str) -> list[object]:
    async def compare() -> list[object]:
        engine = create_async_engine(async_dsn(dsn))
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(
                            sync,
                            opts={
                                "include_schemas": True,
                                "include_name": lambda name, kind, _p: kind != "schema" or name == SCHEMA,
                                "version_table_schema": SCHEMA,
                            },
                        ),
                        metadata,
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(compare())


def _tables(dsn: str) -> set[str]:
    async def query() -> set[str]:
        engine = create_async_engine(async_dsn(dsn))
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                    {"s": SCHEMA},
                )
                return {row[0] for row in rows}
        finally:
            await engine.dispose()

    return asyncio.run(query())


def test_upgrade_matches_models_and_downgrade_round_trips(postgres) -> None:
    postgres.psql("CREATE DATABASE migration_check;")
    try:
        dsn = postgres.dsn("migration_check")
        upgrade(dsn)
        assert _differences(dsn) == []
        assert {"workspaces", "snapshots", "tasks", "audit"} <= _tables(dsn)
        downgrade(dsn, "base")
        assert _tables(dsn) <= {"alembic_version"}
        upgrade(dsn)
        assert _differences(dsn) == []
    finally:
        postgres.psql("DROP DATABASE migration_check WITH (FORCE);")


SEEDED_BEFORE_HEADS = """
INSERT INTO wvs.workspaces (wsid, root_path, owner, state) VALUES
    ('busy', '/b', 'o', 'ACTIVE'), ('retrying', '/r', 'o', 'ACTIVE'), ('done', '/d', 'o', 'ACTIVE'),
    ('empty', '/e', 'o', 'ACTIVE'), ('waiting', '/w', 'o', 'ACTIVE');
INSERT INTO wvs.tasks (task_id, wsid, op, status, created_at, next_run_at) VALUES
    ('b1', 'busy', 'op', 'SUCCEEDED', '2026-01-01 00:00:01Z', '2026-01-01Z'),
    ('b2', 'busy', 'op', 'RUNNING', '2026-01-01 00:00:02Z', '2026-01-01Z'),
    ('b3', 'busy', 'op', 'PENDING', '2026-01-01 00:00:03Z', '2026-01-01Z'),
    ('r1', 'retrying', 'op', 'FAILED', '2026-01-01 00:00:01Z', '2099-01-01Z'),
    ('r2', 'retrying', 'op', 'PENDING', '2026-01-01 00:00:02Z', '2026-01-01Z'),
    ('d1', 'done', 'op', 'DEAD', '2026-01-01 00:00:01Z', '2026-01-01Z'),
    ('w1', 'waiting', 'op', 'CANCELED', '2026-01-01 00:00:01Z', '2026-01-01Z'),
    ('w3', 'waiting', 'op', 'PENDING', '2026-01-01 00:00:02Z', '2026-01-01Z'),
    ('w2', 'waiting', 'op', 'PENDING', '2026-01-01 00:00:02Z', '2026-01-01Z');
"""


def _heads_after_seeding(dsn: str) -> tuple[dict[str, Head], dict[str, Head]]:
    async def seed_then_read() -> tuple[dict[str, Head], dict[str, Head]]:
        engine = create_async_engine(async_dsn(dsn))
        try:
            async with engine.begin() as conn:
                for statement in filter(str.strip, SEEDED_BEFORE_HEADS.split(";")):
                    await conn.execute(text(statement))
            await asyncio.to_thread(upgrade, dsn)
            async with engine.connect() as conn:
                return await workspace_heads(conn)
        finally:
            await engine.dispose()

    return asyncio.run(seed_then_read())


def test_the_heads_migration_computes_every_workspaces_head_from_its_tasks(postgres) -> None:
    postgres.psql("CREATE DATABASE heads_backfill;")
    try:
        dsn = postgres.dsn("heads_backfill")
        upgrade(dsn, "0004")
        stored, computed = _heads_after_seeding(dsn)
        assert stored == computed
        assert {wsid: head[0] for wsid, head in stored.items()} == {
            "busy": "b2",
            "retrying": "r1",
            "done": None,
            "empty": None,
            "waiting": "w2",
        }
        assert stored["busy"][2] is None and stored["retrying"][2].year == 2099
    finally:
        postgres.psql("DROP DATABASE heads_backfill WITH (FORCE);")


def _plans_of_plpgsql_functions(dsn: str) -> dict[str, list[str] | None]:
    async def query() -> dict[str, list[str] | None]:
        engine = create_async_engine(async_dsn(dsn))
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT p.oid::regprocedure::text AS function, p.proconfig FROM pg_proc p "
                        "JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang "
                        "WHERE n.nspname = :s AND l.lanname = 'plpgsql'"
                    ),
                    {"s": SCHEMA},
                )
                return {row.function: row.proconfig for row in rows}
        finally:
            await engine.dispose()

    return asyncio.run(query())


def test_every_plpgsql_function_runs_with_generic_plans_and_the_downgrade_resets_them(postgres) -> None:
    """Migration 0011. A later migration that replaces one of these functions (``CREATE OR REPLACE`` drops its
    settings) must keep ``SET plan_cache_mode = force_generic_plan``, or each call plans its statements anew."""
    postgres.psql("CREATE DATABASE generic_plans_check;")
    try:
        dsn = postgres.dsn("generic_plans_check")
        upgrade(dsn)
        functions = _plans_of_plpgsql_functions(dsn)
        assert {"wvs.refresh_workspace_heads(text[])", "wvs.record_events(jsonb,text)"} <= set(functions)
        assert {
            name: config for name, config in functions.items() if config != ["plan_cache_mode=force_generic_plan"]
        } == {}
        downgrade(dsn, "0010")
        assert set(_plans_of_plpgsql_functions(dsn).values()) == {None}
    finally:
        postgres.psql("DROP DATABASE generic_plans_check WITH (FORCE);")
