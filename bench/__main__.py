"""Print WVS's figures on this machine: wake-up latency, end-to-end throughput, API latency, clone cost.

Runs on a real embedded PostgreSQL and a real JuiceFS volume (localfs when FUSE is unusable).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
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
from wvs_core.storage import open_tree
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

        # 3. The API alone: `wvs api` in a process of its own, loaded by wrk (an httpx client in this busy
        # process would measure itself).
        if shutil.which("wrk") is None:
            print("API: skipped, wrk is not installed (apt-get install wrk; make bench installs it as root)")
            return
        async with separate_api(dsn) as api_url:
            for name, script in (("GET workspace", WRK_GET), ("POST snapshot (accept)", WRK_POST)):
                print(
                    f"API (wvs api process, wrk 2 threads x 32 connections, 5 s) {name}: {await wrk(api_url, script)}"
                )


# wrk scripts: spread requests over the 50 load-N workspaces; every POST gets its own Idempotency-Key.
WRK_GET = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/v1/workspaces/load-" .. (counter % 50))
end
"""
WRK_POST = """
counter = 0
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  counter = counter + 1
  local key = "bench-" .. math.random(1, 2^31) .. "-" .. counter
  return wrk.format("POST", "/v1/workspaces/load-" .. (counter % 50) .. "/snapshots",
    {["Idempotency-Key"] = key, ["Content-Type"] = "application/json"}, "{}")
end
"""


async def wrk(url: str, script: str) -> str:
    """Requests/s and latency percentiles of a 5-second wrk run of ``script`` against ``url``."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        run = await asyncio.create_subprocess_exec(
            "wrk", "-t2", "-c32", "-d5s", "--latency", "-s", lua.name, url, stdout=asyncio.subprocess.PIPE
        )
        output = (await run.communicate())[0].decode()
    figures = dict(re.findall(r"^\s*(50%|99%|Requests/sec:|Non-2xx or 3xx responses:)\s+(\S+)", output, re.MULTILINE))
    errors = figures.get("Non-2xx or 3xx responses:", "0")
    return f"{float(figures['Requests/sec:']):.0f} req/s, p50 {figures['50%']}, p99 {figures['99%']}, non-2xx {errors}"


@contextlib.asynccontextmanager
async def separate_api(dsn: str) -> AsyncIterator[str]:
    """``wvs api`` on a free loopback port, as its own process; yields its URL."""
    ports = [free_port(), free_port()]
    env = {
        **os.environ,
        "WVS_DB_DSN": dsn,
        "WVS_LISTEN_ADDR": f"127.0.0.1:{ports[0]}",
        "WVS_METRICS_ADDR": f"127.0.0.1:{ports[1]}",
        "WVS_LOG_LEVEL": "warning",
    }
    process = await asyncio.create_subprocess_exec(str(Path(sys.executable).with_name("wvs")), "api", env=env)
    url = f"http://127.0.0.1:{ports[0]}"
    try:
        async with httpx.AsyncClient() as probe:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get(f"{url}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        await process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def bench_clone(mount: Path, storage: str) -> None:
    backend = JuiceFSBackend({}) if storage == "juicefs" else LocalFSBackend({})
    for files in (100, 1_000, 10_000):
        source = mount / f"tree-{files}"
        for n in range(files):
            directory = source / f"d{n // 100}"
            directory.mkdir(parents=True, exist_ok=True)
            (directory / f"f{n}.txt").write_bytes(b"x" * 4096)
        started = time.monotonic()
        fd = open_tree(source)
        try:
            await backend.clone_tree(fd, mount / f"clone-{files}")
        finally:
            os.close(fd)
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
