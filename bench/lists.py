"""List endpoints on the scale databases: the median latency of the first page of each (default limit), every
filter included, from a client in this process to a ``wvs api`` of its own per database.

The filters look for what is rare (10 DEAD tasks, 10 DISABLED workspaces among N rows): fewer rows match than a
page holds, so a list without an index for its filter reads every row.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable

import asyncpg
import attrs
import httpx

from bench.figures import LIST_ENDPOINTS
from bench.processes import plane, wait_ready
from bench.scale import ScaleDatabase
from bench.seed import ScaleRows
from bench.stage import Stage

WARMUP = 2
BUDGET = 10.0  # seconds of requests per endpoint, past which fewer samples are taken (at least 3)


@attrs.frozen
class Targets:
    """The rows a path names."""

    history: str
    busy: str
    newest_event: int


PATHS: dict[str, Callable[[Targets], str]] = {
    "GET /v1/workspaces": lambda _: "/v1/workspaces",
    "GET /v1/workspaces?state=DISABLED": lambda _: "/v1/workspaces?state=DISABLED",
    "GET /v1/workspaces/{history}/snapshots": lambda t: f"/v1/workspaces/{t.history}/snapshots",
    "GET /v1/workspaces/{history}/audit": lambda t: f"/v1/workspaces/{t.history}/audit",
    "GET /v1/tasks": lambda _: "/v1/tasks",
    "GET /v1/tasks?status=DEAD": lambda _: "/v1/tasks?status=DEAD",
    "GET /v1/tasks?status=PENDING": lambda _: "/v1/tasks?status=PENDING",
    "GET /v1/tasks?op=snapshot_create": lambda _: "/v1/tasks?op=snapshot_create",
    "GET /v1/tasks?wsid={busy}": lambda t: f"/v1/tasks?wsid={t.busy}",
    "GET /v1/tasks?wsid={busy}&status=PENDING": lambda t: f"/v1/tasks?wsid={t.busy}&status=PENDING",
    "GET /v1/events": lambda _: "/v1/events",
    "GET /v1/events?after={newest - 10}": lambda t: f"/v1/events?after={t.newest_event - 10}",
    "GET /v1/events?wsid={history}": lambda t: f"/v1/events?wsid={t.history}",
}
assert set(PATHS) == set(LIST_ENDPOINTS), "every list endpoint of bench.figures needs its path here"


async def targets(database: ScaleDatabase) -> Targets:
    conn = await asyncpg.connect(database.dsn)
    try:
        newest = int(await conn.fetchval("SELECT coalesce(max(event_id), 0) FROM wvs.audit"))
    finally:
        await conn.close()
    return Targets(ScaleRows.HISTORY, "busy-0", newest)


async def list_latencies(stage: Stage, databases: list[ScaleDatabase], samples: int) -> dict[tuple[str, int], float]:
    """Each endpoint of ``LIST_ENDPOINTS`` on each database (by its row count): the median latency (ms) of
    ``samples`` requests (fewer past ``BUDGET`` seconds), after ``WARMUP``. One ``wvs api`` per database, both
    running; an endpoint's requests alternate between them, so what else loads the machine falls on both.
    RuntimeError for an answer other than 200."""
    async with contextlib.AsyncExitStack() as stack:
        apis = [
            await stack.enter_async_context(
                plane(stage.deployment(f"lists-{database.name}", database.dsn), "api", stage.memory, wait=False)
            )
            for database in databases
        ]
        clients = []
        for database, api in zip(databases, apis, strict=True):
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=api.url, timeout=120))
            await wait_ready(api, client)
            clients.append((database.rows.rows, client, await targets(database)))
        found: dict[tuple[str, int], float] = {}
        for endpoint in LIST_ENDPOINTS:
            latencies: dict[int, list[float]] = {rows: [] for rows, _, _ in clients}
            began = time.monotonic()
            for n in range(WARMUP + samples):
                if n >= WARMUP + 3 and time.monotonic() - began > BUDGET:
                    break
                for rows, client, named in clients:
                    elapsed = await timed_get(client, PATHS[endpoint](named))
                    if n >= WARMUP:
                        latencies[rows].append(elapsed * 1000)
            found |= {(endpoint, rows): statistics.median(values) for rows, values in latencies.items()}
    return found


async def timed_get(client: httpx.AsyncClient, path: str) -> float:
    """Seconds ``GET path`` takes; RuntimeError unless it answers 200."""
    started = time.perf_counter()
    response = await client.get(path)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text[:500]}")
    return elapsed
