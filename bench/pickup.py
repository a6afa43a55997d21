"""Pickup latency of an idle ``wvs worker``: a task submitted through ``wvs api``, from its ``created_at`` to its
``started_at``, both stamped by the database's clock.

One task at a time, each after the previous one ended and a random 10-30 ms pause (so nothing is in step with a
poll), spread over a few workspaces. ``created_at`` is taken inside the submitting transaction, before its
commit, so the figure holds the commit, the wake-up and the claim, not the HTTP request around them.
"""

from __future__ import annotations

import asyncio
import random

import asyncpg
import httpx

from bench import seed
from bench.noop_plugin import Noop
from bench.processes import planes
from bench.stage import Stage
from wvs_core.ids import uuid7

WARMUP = 5
WORKSPACES = 10


async def pickup_latencies(stage: Stage, samples: int) -> list[float]:
    """Seconds from creation to start of ``samples`` ``bench_noop`` tasks, after ``WARMUP`` unmeasured ones."""
    dsn = await stage.postgres.fresh_wvs_database("wvs_pickup")
    deployment = stage.deployment("pickup", dsn)
    conn = await asyncpg.connect(dsn)
    try:
        wsids = await seed.add_workspaces(conn, "pickup", WORKSPACES)
        measured = []
        async with (
            planes(deployment, ["worker", "api"], stage.memory) as (_worker, api),
            httpx.AsyncClient(base_url=api.url, timeout=30) as client,
        ):
            for n in range(WARMUP + samples):
                response = await client.post(
                    f"/v1/workspaces/{wsids[n % WORKSPACES]}/tasks",
                    json={"op": Noop.name},
                    headers={"Idempotency-Key": uuid7()},
                )
                response.raise_for_status()
                task_id = response.json()["task_id"]
                await seed.until_succeeded(conn, task_id, deployment.logs, poll=0.001)
                if n >= WARMUP:
                    measured.append(task_id)
                await asyncio.sleep(random.uniform(0.01, 0.03))
        rows = await conn.fetch(
            "SELECT extract(epoch FROM started_at - created_at) AS latency FROM wvs.tasks WHERE task_id = ANY($1)",
            measured,
        )
        return [float(row["latency"]) for row in rows]
    finally:
        await conn.close()
