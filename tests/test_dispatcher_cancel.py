"""A tail cancelled at the very moment it is woken still stops. ``asyncio.wait_for`` on Python 3.11 drops such a
cancellation, and the worker's shutdown then waited for the tail forever."""

from __future__ import annotations

import asyncio
from typing import Any

from wvs_core.config import EventsConfig
from wvs_core.dispatcher import Tail
from wvs_core.events import Event
from wvs_core.notifier import Subscription


class EmptyOutbox:
    """An outbox with no event in it."""

    async def settled(self, name: str, position: int) -> dict[int, Any]:
        return {}

    async def read(self, after: int, limit: int) -> list[Event]:
        return []

    async def save(self, name: str, settled: list[Any], position: int | None) -> None:
        pass


async def test_a_tail_woken_as_it_is_cancelled_stops() -> None:
    async def deliver(event: Event) -> None:
        pass

    tail = Tail(Subscription("quiet", deliver), EmptyOutbox(), 0, EventsConfig(poll_interval=30.0))  # type: ignore[arg-type]
    running = asyncio.create_task(tail.run())
    for _ in range(10):
        await asyncio.sleep(0)  # until it waits for a wake-up
    tail.wake.set()
    running.cancel()
    await asyncio.wait([running], timeout=2)
    stopped = running.cancelled()
    running.cancel()  # a tail that went on is stopped for good here
    assert stopped, "the tail went on after it was cancelled"
