"""Print WVS's figures on this machine: wake-up latency, end-to-end throughput, API latency, clone cost.

Runs on a real embedded PostgreSQL and a real JuiceFS volume (localfs when FUSE is unusable).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from wvs_core.config import config_from_dict
from wvs_core.db.engine import async_dsn
from wvs_core.embedded import EmbeddedPostgres
from wvs_core.ids import uuid7
from wvs_core.migrate import upgrade
from wvs_core.runtime import Service
from wvs_juicefs.backend import JuiceFSBackend
from wvs_juicefs.volume import JuiceFSVolume, fuse_unavailable_reason
from wvs_localfs import LocalFSBackend


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def claim_latencies(dsn: str) -> list[float]:
    """Seconds from a task's creation (commit) to its claim, as recorded by the database."""
    engine = create_async_engine(async_dsn(dsn))
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text("SELECT extract(epoch FROM started_at - created_at) FROM wvs.tasks WHERE attempt = 1")
        )
        values = [float(row[0]) for row in rows]
    await engine.dispose()
    return values


async def until_succeeded(client: httpx.AsyncClient, task_ids: set[str]) -> None:
    """Poll until every task SUCCEEDED."""
    while task_ids:
        await asyncio.sleep(0.005)
        task_ids = {t for t in task_ids if (await client.get(f"/v1/tasks/{t}")).json()["status"] != "SUCCEEDED"}


async def timed_requests(
    client: httpx.AsyncClient, count: int, concurrency: int, send: Callable[[int], Awaitable[httpx.Response]]
) -> tuple[list[float], float]:
    """Send ``count`` requests, ``concurrency`` at a time; returns each latency and the total seconds."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        async with gate:
            started = time.monotonic()
            response = await send(n)
            latencies.append(time.monotonic() - started)
            assert response.status_code < 300, response.text

    started = time.monotonic()
    await asyncio.gather(*(one(n) for n in range(count)))
    return latencies, time.monotonic() - started


async def bench_service(dsn: str, mount: Path, storage: str) -> None:
    config = config_from_dict(
        {
            "database": {"dsn": dsn},
            "api": {"listen_addr": "127.0.0.1:0"},
            "worker": {"poll_interval": "5s", "concurrency": 8},
            "executor": {"grpc_addr": "127.0.0.1:0", "mount_path": str(mount)},
            "plugins": {"storage": storage, "quiesce": "none", "notifiers": []},
        }
    )
    async with Service(config, serve_metrics=False) as service, httpx.AsyncClient(base_url=service.api_url or "") as c:
        # 1. Idle wake-up: one workspace at a time, so every task finds the scheduler idle.
        for n in range(30):
            body = {"wsid": f"idle-{n}", "owner": "bench"}
            task_id = (await c.post("/v1/workspaces", json=body, headers={"Idempotency-Key": uuid7()})).json()[
                "init_task_id"
            ]
            await until_succeeded(c, {task_id})
        idle = await claim_latencies(dsn)
        print(
            f"idle wake-up (commit → claim), poll interval 5s: median {statistics.median(idle) * 1000:.1f} ms, "
            f"p95 {percentile(idle, 0.95) * 1000:.1f} ms over {len(idle)} tasks"
        )

        # 2. Throughput: 50 workspaces created at once, then 4 snapshots each.
        started = time.monotonic()
        wsids = [f"load-{n}" for n in range(50)]
        inits = await asyncio.gather(
            *(
                c.post("/v1/workspaces", json={"wsid": w, "owner": "b"}, headers={"Idempotency-Key": uuid7()})
                for w in wsids
            )
        )
        await until_succeeded(c, {r.json()["init_task_id"] for r in inits})
        snaps = await asyncio.gather(
            *(
                c.post(f"/v1/workspaces/{w}/snapshots", json={}, headers={"Idempotency-Key": uuid7()})
                for w in wsids
                for _ in range(4)
            )
        )
        await until_succeeded(c, {r.json()["task_id"] for r in snaps})
        elapsed = time.monotonic() - started
        print(
            f"throughput ({storage}, 1 scheduler x 8 slots, 1 executor): 250 tasks (50 init + 200 snapshots) "
            f"in {elapsed:.1f} s = {250 / elapsed:.1f} tasks/s"
        )

        # 3. API latency under concurrency (client and every plane share this process's one core).
        reads = await timed_requests(c, 2000, 32, lambda n: c.get(f"/v1/workspaces/{wsids[n % 50]}"))
        writes = await timed_requests(
            c,
            500,
            16,
            lambda n: c.post(
                f"/v1/workspaces/{wsids[n % 50]}/snapshots", json={}, headers={"Idempotency-Key": uuid7()}
            ),
        )
        for name, (latencies, seconds) in (("GET workspace", reads), ("POST snapshot (accept)", writes)):
            print(
                f"API {name}: {len(latencies) / seconds:.0f} req/s, p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms ({len(latencies)} requests)"
            )


async def bench_clone(mount: Path, storage: str) -> None:
    backend = JuiceFSBackend({}) if storage == "juicefs" else LocalFSBackend({})
    for files in (100, 1_000, 10_000):
        source = mount / f"tree-{files}"
        for n in range(files):
            directory = source / f"d{n // 100}"
            directory.mkdir(parents=True, exist_ok=True)
            (directory / f"f{n}.txt").write_bytes(b"x" * 4096)
        started = time.monotonic()
        await backend.clone_tree(source, mount / f"clone-{files}")
        elapsed = time.monotonic() - started
        print(f"clone ({storage}) of {files:>6} files x 4 KiB: {elapsed * 1000:8.1f} ms")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="wvs-bench-") as scratch:
        base = Path(scratch)
        postgres = EmbeddedPostgres(base / "postgres")
        volume = None
        try:
            postgres.start()
            postgres.psql("CREATE DATABASE bench;")
            dsn = postgres.dsn("bench")
            upgrade(dsn)
            if fuse_unavailable_reason() is None:
                volume = JuiceFSVolume(base / "juicefs").start()
                mount, storage = volume.mount_path, "juicefs"
            else:
                mount, storage = base / "plain", "localfs"
                mount.mkdir()
            asyncio.run(bench_service(dsn, mount, storage))
            asyncio.run(bench_clone(mount, storage))
        finally:
            if volume is not None:
                volume.close()
            postgres.stop()


if __name__ == "__main__":
    main()
