"""The one embedded PostgreSQL every system in a bench run shares, and a fresh database per measurement."""

from __future__ import annotations

import asyncio

import attrs

from wvs_core.embedded import EmbeddedPostgres
from wvs_core.migrate import upgrade

TEMPLATE = "wvs_bench_template"


@attrs.define
class BenchPostgres:
    server: EmbeddedPostgres
    _migrated: bool = False  # TEMPLATE holds WVS's schema

    def fresh_database(self, name: str) -> str:
        """Drop ``name`` if it exists, create it empty; its libpq DSN (asyncpg and psycopg both take it)."""
        self.server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE); CREATE DATABASE {name};")
        return self.server.dsn(name).replace("postgresql+asyncpg://", "postgresql://", 1)

    async def fresh_wvs_database(self, name: str) -> str:
        """A new database ``name`` with WVS's schema (copied from a template migrated once); its libpq DSN."""
        if not self._migrated:
            await asyncio.to_thread(upgrade, self.fresh_database(TEMPLATE))
            self._migrated = True
        self.server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE); CREATE DATABASE {name} TEMPLATE {TEMPLATE};")
        return self.server.dsn(name).replace("postgresql+asyncpg://", "postgresql://", 1)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending whatever still runs in it."""
        self.server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")
