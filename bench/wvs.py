"""WVS's figures on this machine: wake-up latency, end-to-end throughput, API rate and latency, clone cost.

Runs on the bench's embedded PostgreSQL and a real JuiceFS volume (localfs when FUSE is unusable).
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

import attrs
import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench import figures
from bench.postgres import BenchPostgres
from bench.report import Rounds, percentile
from wvs_core.config import config_from_dict
from wvs_core.db.engine import async_dsn
from wvs_core.ids import uuid7
from wvs_core.migrate import upgrade
from wvs_core.runtime import Service
from wvs_core.storage import open_tree
from wvs_juicefs.backend import JuiceFSBackend
from wvs_localfs import LocalFSBackend

WVS = "WVS"


@attrs.frozen
class WvsSizes:
    idle_tasks: int = 30
    load_workspaces: int = 50
    snapshots_per_workspace: int = 4
    wrk_seconds: int = 5
    clone_files: tuple[int, ...] = (100, 1_000, 10_000)


QUICK = WvsSizes(idle_tasks=5, load_workspaces=5, snapshots_per_workspace=1, wrk_seconds=1, clone_files=(100,))


async def measure_wvs(postgres: BenchPostgres, volume: Path, storage: str, sizes: WvsSizes, rounds: Rounds) -> None:
    """One round of WVS's figures, in a fresh database and a fresh directory of ``volume``."""
    postgres.fresh_database("wvs_bench")
    dsn = postgres.server.dsn("wvs_bench")
    await asyncio.to_thread(upgrade, dsn)
    mount = Path(tempfile.mkdtemp(prefix="round-", dir=volume))
    try:
        await bench_service(dsn, mount, storage, sizes, rounds)
        await bench_clone(mount, storage, sizes, rounds)
    finally:
        await asyncio.to_thread(shutil.rmtree, mount, ignore_errors=True)


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


async def bench_service(dsn: str, mount: Path, storage: str, sizes: WvsSizes, rounds: Rounds) -> None:
    config = config_from_dict(
        {
            "database": {"dsn": dsn},
            "api": {"listen_addr": "127.0.0.1:0"},
            "worker": {"poll_interval": "5s", "concurrency": 8},
            "executor": {"grpc_addr": "127.0.0.1:0", "mount_path": str(mount)},
            "plugins": {"storage": storage, "quiesce": "none", "notifiers": []},
        }
    )
    # A generous client timeout: on a busy machine 50 workspaces created at once can take over httpx's 5 s.
    async with (
        Service(config, serve_metrics=False) as service,
        httpx.AsyncClient(base_url=service.api_url or "", timeout=120) as c,
    ):
        # 1. Idle wake-up: one workspace at a time, so every task finds the scheduler idle.
        for n in range(sizes.idle_tasks):
            body = {"wsid": f"idle-{n}", "owner": "bench"}
            task_id = (await c.post("/v1/workspaces", json=body, headers={"Idempotency-Key": uuid7()})).json()[
                "init_task_id"
            ]
            await until_succeeded(c, {task_id})
        idle = await claim_latencies(dsn)
        rounds.add(WVS, figures.WAKEUP_MEDIAN, statistics.median(idle) * 1000)
        rounds.add(WVS, figures.WAKEUP_P95, percentile(idle, 0.95) * 1000)

        # 2. Throughput: the load workspaces (50) created at once, then snapshots of each (4).
        started = time.monotonic()
        wsids = [f"load-{n}" for n in range(sizes.load_workspaces)]
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
                for _ in range(sizes.snapshots_per_workspace)
            )
        )
        await until_succeeded(c, {r.json()["task_id"] for r in snaps})
        elapsed = time.monotonic() - started
        rounds.add(WVS, figures.THROUGHPUT, (len(inits) + len(snaps)) / elapsed)

        # 3. The API alone: `wvs api` in a process of its own, loaded by wrk (an httpx client in this busy
        # process would measure itself).
        if shutil.which("wrk") is None:
            print("API: skipped, wrk is not installed (apt-get install wrk; make bench installs it as root)")
            return
        async with separate_api(dsn) as api_url:
            for route, script in (("GET workspace", WRK_GET), ("POST snapshot (accept)", WRK_POST)):
                rate, p50, p99, errors = await wrk(api_url, script.replace("LOAD_WORKSPACES", str(len(wsids))), sizes)
                if errors:
                    print(f"warning: {route} answered {errors} requests with a non-2xx status")
                rounds.add(WVS, figures.API_RATE[route], rate)
                rounds.add(WVS, figures.API_P50[route], p50)
                rounds.add(WVS, figures.API_P99[route], p99)


# wrk scripts: spread requests over the load-N workspaces; every POST gets its own Idempotency-Key.
WRK_GET = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/v1/workspaces/load-" .. (counter % LOAD_WORKSPACES))
end
"""
WRK_POST = """
counter = 0
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  counter = counter + 1
  local key = "bench-" .. math.random(1, 2^31) .. "-" .. counter
  return wrk.format("POST", "/v1/workspaces/load-" .. (counter % LOAD_WORKSPACES) .. "/snapshots",
    {["Idempotency-Key"] = key, ["Content-Type"] = "application/json"}, "{}")
end
"""


async def wrk(url: str, script: str, sizes: WvsSizes) -> tuple[float, float, float, int]:
    """Requests/s, p50 and p99 latency (ms) and non-2xx responses of a wrk run of ``script`` against ``url``."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        run = await asyncio.create_subprocess_exec(
            "wrk",
            "-t2",
            "-c32",
            f"-d{sizes.wrk_seconds}s",
            "--latency",
            "-s",
            lua.name,
            url,
            stdout=asyncio.subprocess.PIPE,
        )
        output = (await run.communicate())[0].decode()
    found = dict(re.findall(r"^\s*(50%|99%|Requests/sec:|Non-2xx or 3xx responses:)\s+(\S+)", output, re.MULTILINE))
    errors = int(found.get("Non-2xx or 3xx responses:", "0"))
    return float(found["Requests/sec:"]), milliseconds(found["50%"]), milliseconds(found["99%"]), errors


def milliseconds(duration: str) -> float:
    """A wrk duration (``812.00us``, ``3.20ms``, ``1.05s``, ``2.00m``) in milliseconds."""
    parsed = re.fullmatch(r"([\d.]+)(us|ms|s|m)", duration)
    if parsed is None:
        raise ValueError(f"not a wrk duration: {duration!r}")
    return float(parsed[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[parsed[2]]


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


async def bench_clone(mount: Path, storage: str, sizes: WvsSizes, rounds: Rounds) -> None:
    backend = JuiceFSBackend({}) if storage == "juicefs" else LocalFSBackend({})
    for files in sizes.clone_files:
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
        rounds.add(WVS, figures.clone_metric(storage, files), elapsed * 1000)
