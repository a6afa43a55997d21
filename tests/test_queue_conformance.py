"""The shipped ``postgres`` queue through the queue conformance suite."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.queue_conformance import QueueConformance
from wvs_core.queue import TaskQueue
from wvs_pgqueue.queue import PostgresQueue


class TestPostgresQueue(QueueConformance):
    def make_queue(self, engine: AsyncEngine) -> TaskQueue:
        return PostgresQueue(engine, {})
