"""The event dispatcher: tails the outbox and hands every event to every subscription of the enabled notifiers.

It runs in each ``wvs worker`` process beside the schedulers, on an engine of its own, and never in a task's
slot: a slow or failing notifier holds back only its own deliveries. Of all the worker processes, the one
holding a session advisory lock delivers; the others stand by and take over when its connection goes (a
crash releases the lock at once). Per subscription (``Tail``): events are read in ``event_id`` order, one
lane per workspace delivers them one after the other (so, in order per workspace), lanes of different
workspaces run side by side, and the position stored in ``wvs.event_cursors`` is the last event below which
everything is settled — delivered, given up after the retry period, or not wanted. After a restart the
events past it are delivered again unless ``wvs.event_deliveries`` says they were settled: at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import UTC, datetime, timedelta

import asyncpg

from wvs_core import metrics
from wvs_core.config import EventsConfig
from wvs_core.db.events import CHANNEL
from wvs_core.db.outbox import Delivery, Outbox
from wvs_core.errors import ConfigError
from wvs_core.events import Event
from wvs_core.notifier import Subscription

log = logging.getLogger(__name__)

LOCK_KEY = 0x77767365_76656E74  # "wvsevent": the advisory lock the delivering dispatcher holds
BATCH = 200  # events read per query
BUFFER = 2000  # events read but not settled, per subscription, before reading pauses
ATTEMPT_TIMEOUT = 300.0  # a backstop for a notifier that never returns; webhooks time out far sooner
STANDBY_INTERVAL = 5.0  # how often a standing-by dispatcher tries to take over
RECONNECT_DELAY = 1.0


def _now() -> datetime:
    return datetime.now(UTC)


class Tail:
    """Delivers one subscription's events: read in order, one lane per workspace, position saved."""

    def __init__(self, subscription: Subscription, outbox: Outbox, position: int, config: EventsConfig) -> None:
        self.subscription = subscription
        self.outbox = outbox
        self.config = config
        self.position = position  # saved: everything up to it is settled
        self.read_upto = position
        self.wake = asyncio.Event()
        self._unsettled: dict[int, Event] = {}
        self._lanes: dict[str, deque[Event]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._settled: list[Delivery] = []  # not saved yet
        self._earlier: dict[int, Delivery] = {}  # what a previous run recorded past the position
        self._slots = asyncio.Semaphore(config.concurrency)

    @property
    def name(self) -> str:
        """The subscription's name."""
        return self.subscription.name

    async def run(self) -> None:
        """Deliver until cancelled; then save what was settled."""
        self._earlier = await self.outbox.settled(self.name, self.position)
        try:
            while True:
                try:
                    await self._read()
                    await self._save()
                    self._report()
                except Exception:
                    log.warning("event dispatcher: reading or saving %s failed; trying again", self.name, exc_info=True)
                # asyncio.timeout, here and below, not wait_for: on 3.11 wait_for drops a cancellation that
                # lands as the awaited thing completes, and a tail that misses its cancel never stops.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.poll_interval):
                        await self.wake.wait()
                self.wake.clear()
        finally:
            for worker in self._workers.values():
                worker.cancel()
            await asyncio.gather(*self._workers.values(), return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._save()

    async def _read(self) -> None:
        while len(self._unsettled) < BUFFER:
            events = await self.outbox.read(self.read_upto, BATCH)
            for event in events:
                self.read_upto = event.event_id
                earlier = self._earlier.get(event.event_id)
                if not self.subscription.wants(event) or (earlier is not None and earlier.state != "retrying"):
                    continue
                self._unsettled[event.event_id] = event
                key = event.wsid or ""
                self._lanes.setdefault(key, deque()).append(event)
                if key not in self._workers:
                    self._workers[key] = asyncio.create_task(self._lane(key), name=f"wvs-events-{self.name}-{key}")
            if len(events) < BATCH:
                return

    async def _lane(self, wsid: str) -> None:
        lane = self._lanes[wsid]
        try:
            while lane:
                event = lane[0]
                delivery = await self._deliver(event)
                self._settled.append(delivery)
                del self._unsettled[event.event_id]
                lane.popleft()
                self.wake.set()
        finally:  # emptied, or the tail is stopping
            self._lanes.pop(wsid, None)
            self._workers.pop(wsid, None)

    async def _deliver(self, event: Event) -> Delivery:
        """Attempt until delivered or the retry period is over; each failed attempt is recorded."""
        retry = self.subscription.retry
        earlier = self._earlier.pop(event.event_id, None)
        attempts = earlier.attempts if earlier else 0
        first = earlier.first_attempt_at if earlier else _now()
        if earlier is not None and earlier.next_attempt_at is not None:
            await asyncio.sleep(max(0.0, (earlier.next_attempt_at - _now()).total_seconds()))
        while True:
            attempts += 1
            try:
                async with self._slots, asyncio.timeout(ATTEMPT_TIMEOUT):
                    await self.subscription.deliver(event)
            except Exception as error:
                now = _now()
                message = f"{type(error).__name__}: {error}"[:1000]
                if (now - first).total_seconds() >= retry.period:
                    log.error("gave up delivering event %s to %s: %s", event.event_id, self.name, message)
                    metrics.EVENT_DELIVERIES.labels(self.name, "failed").inc()
                    return Delivery(event.event_id, "failed", attempts, first, now, None, message)
                delay = retry.delay(attempts)
                metrics.EVENT_DELIVERIES.labels(self.name, "retried").inc()
                log.warning(
                    "event %s to %s failed (attempt %d), retrying in %.1fs: %s",
                    event.event_id,
                    self.name,
                    attempts,
                    delay,
                    message,
                )
                next_at = now + timedelta(seconds=delay)
                retrying = Delivery(event.event_id, "retrying", attempts, first, now, next_at, message)
                try:
                    await self.outbox.save(self.name, [retrying], None)
                except Exception:
                    log.warning("could not record a delivery's retry state", exc_info=True)
                await asyncio.sleep(delay)
                continue
            metrics.EVENT_DELIVERIES.labels(self.name, "delivered").inc()
            return Delivery(event.event_id, "delivered", attempts, first, _now())

    async def _save(self) -> None:
        position = min(self._unsettled) - 1 if self._unsettled else self.read_upto
        settled, self._settled = self._settled, []
        if not settled and position == self.position:
            return
        try:
            await self.outbox.save(self.name, settled, position if position > self.position else None)
        except BaseException:
            self._settled = settled + self._settled  # try again next time
            raise
        self.position = max(self.position, position)

    def _report(self) -> None:
        oldest = self._unsettled[min(self._unsettled)].ts if self._unsettled else None
        metrics.EVENT_LAG.labels(self.name).set((_now() - oldest).total_seconds() if oldest else 0.0)
        metrics.EVENT_POSITION.labels(self.name).set(self.position)


class Dispatcher:
    """Elects itself with an advisory lock, then runs a ``Tail`` per subscription until stopped."""

    def __init__(self, outbox: Outbox, dsn: str, subscriptions: list[Subscription], config: EventsConfig) -> None:
        names = [subscription.name for subscription in subscriptions]
        if duplicates := sorted({name for name in names if names.count(name) > 1}):
            raise ConfigError(f"plugins.notifiers: two subscriptions are named {', '.join(duplicates)}")
        self.outbox = outbox
        self.dsn = dsn
        self.subscriptions = subscriptions
        self.config = config
        self.leading = asyncio.Event()  # set while this dispatcher is the one delivering

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by or deliver until ``stop`` is set."""
        while not stop.is_set():
            try:
                conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("event dispatcher cannot reach the database: %s", error)
                await _wait(stop, RECONNECT_DELAY)
                continue
            try:
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                    await self._lead(conn, stop)
                else:
                    await _wait(stop, STANDBY_INTERVAL)
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("event dispatcher lost its database connection: %s", error)
            except Exception:
                log.exception("event dispatcher failed; starting over")
                await _wait(stop, RECONNECT_DELAY)
            finally:
                self.leading.clear()
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)

    async def _lead(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        positions = await self.outbox.positions(s.name for s in self.subscriptions)
        tails = [Tail(s, self.outbox, positions[s.name], self.config) for s in self.subscriptions]

        def wake(*_args: object) -> None:
            for tail in tails:
                tail.wake.set()

        if tails:  # else a wake-up would cost a process of the database and this one each commit, for nothing
            await conn.add_listener(CHANNEL, wake)
        log.info("delivering events to %s", ", ".join(t.name for t in tails) or "no subscription")
        self.leading.set()
        running = [asyncio.create_task(tail.run(), name=f"wvs-events-{tail.name}") for tail in tails]
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                done, _ = await asyncio.wait(
                    [stopping, *running], timeout=self.config.poll_interval, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done - {stopping}:
                    task.result()  # a tail does not end on its own: raise what ended it
                async with asyncio.timeout(10):
                    await conn.fetchval("SELECT 1")  # still holding the lock?
        finally:
            stopping.cancel()
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
