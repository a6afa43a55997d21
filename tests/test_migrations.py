"""Migrations create exactly the models' schema, and every migration has a working downgrade."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

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
