"""The one embedded PostgreSQL every system in a bench run shares, and a fresh database per measurement."""

from __future__ import annotations

import attrs

from wvs_core.embedded import EmbeddedPostgres


@attrs.frozen
class BenchPostgres:
    server: EmbeddedPostgres

    def fresh_database(self, name: str) -> str:
        """Drop ``name`` if it exists, create it empty; its libpq DSN (asyncpg and psycopg both take it)."""
        self.server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE); CREATE DATABASE {name};")
        return self.server.dsn(name).replace("postgresql+asyncpg://", "postgresql://", 1)
