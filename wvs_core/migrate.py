"""Running the alembic migrations (``wvs migrate``); processes never migrate on start-up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig

import wvs_core


def migrations_dir() -> Path:
    """``migrations/`` of a source checkout, or its copy inside an installed wheel."""
    package = Path(wvs_core.__file__).parent
    for candidate in (package / "migrations", package.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("the WVS migrations directory is missing from this installation")


def alembic_config(dsn: str) -> AlembicConfig:
    """An alembic Config for the WVS database at ``dsn``."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", dsn.replace("%", "%%"))
    return config


def upgrade(dsn: str, revision: str = "head") -> None:
    """Migrate the database up to ``revision``."""
    command.upgrade(alembic_config(dsn), revision)


def downgrade(dsn: str, revision: str) -> None:
    """Migrate the database down to ``revision`` (``base`` drops every WVS table)."""
    command.downgrade(alembic_config(dsn), revision)
