"""What an anchor adapter provides: its schema, its enqueue path, and its worker, each with its tuned settings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Literal, Protocol

# One enqueue of a no-op job for the workspace named by its argument.
Enqueue = Callable[[str], Awaitable[object]]


def workspace_key(n: int) -> str:
    """The serialization key of workspace ``n`` (a queue entrypoint, a lock)."""
    return f"ws-{n:04d}"


class Anchor(Protocol):
    @property
    def name(self) -> str:
        """The command-line id, also in the anchor's database name."""
        ...

    @property
    def library(self) -> str:
        """Name and version: ``PgQueuer 1.6.0``."""
        ...

    @property
    def loop(self) -> Literal["asyncio", "uvloop"]:
        """The event loop the library's own worker command runs on."""
        ...

    @property
    def remaining_sql(self) -> str:
        """Counts the jobs not finished yet (queued or running)."""
        ...

    def settings(self, workspaces: int) -> str:
        """The exact tuned settings, and how one-at-a-time-per-workspace is emulated."""
        ...

    def tuning(self) -> str:
        """The settings that matter most, short enough for every figure's line."""
        ...

    async def install(self, dsn: str) -> None:
        """Install the library's schema into the empty database at ``dsn`` and apply its tuning."""

    async def enqueue_backlog(self, dsn: str, keys: Sequence[str]) -> None:
        """Enqueue one no-op job per entry of ``keys`` (the bulk path: not timed)."""

    def enqueuer(self, dsn: str, connections: int) -> AbstractAsyncContextManager[Enqueue]:
        """The library's single-job enqueue over ``connections`` pooled connections."""
        ...

    async def work(self, dsn: str, workspaces: int, started: Callable[[str], None], stop: asyncio.Event) -> None:
        """Run one tuned worker until ``stop``; the no-op handler calls ``started(key)`` first thing."""
