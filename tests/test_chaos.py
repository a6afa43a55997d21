"""Chaos: 200+ mixed tasks over 10 workspaces with 2 schedulers and 2 executors as real processes, while a
loop kill -9s a random scheduler or executor every few seconds and restarts it, and PostgreSQL restarts once.

Reproducible: WVS_CHAOS_SEED=<n> replays the same schedule of kills and requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import create_async_engine

from tests.helpers import free_port
from wvs_controlfile import QuiesceResponder
from wvs_core.cli.wvs import cli
from wvs_core.db.engine import async_dsn
from wvs_core.ids import uuid7

BIN = Path(sys.executable).parent
WORKSPACES = 10
TASKS = 210
TERMINAL = {"SUCCEEDED", "DEAD", "CANCELED"}
ENDINGS = ("task.succeeded", "task.failed", "task.dead", "task.canceled", "task.released")
pytestmark = pytest.mark.chaos


class Plane:
    """One `wvs` process that the chaos loop may kill and restart."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.args, self.env, self.log = name, args, env, log_dir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        log = await asyncio.to_thread(open, self.log, "ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                str(BIN / "wvs"), *self.args, env=self.env, stderr=log, stdout=asyncio.subprocess.DEVNULL
            )
        finally:
            log.close()

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                await self.kill()


async def until_ready(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never became ready")


async def submit(client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
    """Retry through outages with the same Idempotency-Key: the API makes that safe."""
    headers = {"Idempotency-Key": uuid7()}
    for _ in range(200):
        try:
            response = await client.request(method, path, json=body, headers=headers)
            if response.status_code < 500:
                return response
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.25)
    raise AssertionError(f"{method} {path} never got an answer")


async def wait_active(client: httpx.AsyncClient, wsids: list[str]) -> None:
    for _ in range(600):
        states = {(await client.get(f"/v1/workspaces/{wsid}")).json()["state"] for wsid in wsids}
        if states == {"ACTIVE"}:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"workspaces never became ACTIVE: {states}")


def serialization_violations(events: list[Any]) -> list[str]:
    """From the audit trail: an attempt starts at task.started and ends at the task's next outcome; a
    workspace must never have two attempts open at once."""
    open_attempt: dict[str, str] = {}
    violations = []
    for event in events:
        if event.action == "task.started":
            if event.wsid in open_attempt:
                violations.append(f"{event.wsid}: {event.task_id} started while {open_attempt[event.wsid]} ran")
            open_attempt[event.wsid] = event.task_id
        elif event.action in ENDINGS and open_attempt.get(event.wsid) == event.task_id:
            del open_attempt[event.wsid]
    return violations


async def test_chaos(postgres, juicefs_volume, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = int(os.environ.get("WVS_CHAOS_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    with capsys.disabled():
        print(f"\nchaos seed {seed} (rerun with WVS_CHAOS_SEED={seed})")
    postgres.psql("CREATE DATABASE chaos;")
    dsn = postgres.dsn("chaos")
    mount = juicefs_volume.mount_path / f"chaos-{seed}"
    mount.mkdir()
    api_port, grpc = free_port(), [free_port(), free_port()]
    config = tmp_path / "wvs.toml"
    config.write_text(
        f"""
        [database]
        dsn = "{dsn}"
        pool_size = 4
        [api]
        listen_addr = "127.0.0.1:{api_port}"
        metrics_addr = "127.0.0.1:{free_port()}"
        [worker]
        executor_addrs = ["127.0.0.1:{grpc[0]}", "127.0.0.1:{grpc[1]}"]
        lease = "2s"
        retry_base = "200ms"
        retry_max = "2s"
        max_attempts = 12
        poll_interval = "500ms"
        shutdown_timeout = "5s"
        [executor]
        mount_path = "{mount}"
        quiesce_timeout = "5s"
        task_timeout = "30s"
        shutdown_timeout = "5s"
        """
    )
    base_env = {**os.environ, "WVS_CONFIG": str(config), "WVS_LOG_LEVEL": "warning"}
    subprocess_migrate = await asyncio.create_subprocess_exec(
        str(BIN / "wvs"), "migrate", env=base_env, stdout=asyncio.subprocess.DEVNULL
    )
    assert await subprocess_migrate.wait() == 0
    planes = [
        Plane(
            f"executor-{n}",
            ["executor"],
            {
                **base_env,
                "EXECUTOR_GRPC_ADDR": f"127.0.0.1:{grpc[n]}",
                "EXECUTOR_METRICS_ADDR": f"127.0.0.1:{free_port()}",
            },
            tmp_path,
        )
        for n in range(2)
    ] + [
        Plane(f"worker-{n}", ["worker"], {**base_env, "WVS_METRICS_ADDR": f"127.0.0.1:{free_port()}"}, tmp_path)
        for n in range(2)
    ]
    api = Plane("api", ["api"], base_env, tmp_path)
    for plane in [*planes, api]:
        await plane.start()
    url = f"http://127.0.0.1:{api_port}"
    await until_ready(url)
    wsids = [f"chaos-{n}" for n in range(WORKSPACES)]
    counts: Counter[str] = Counter()
    accepted: list[str] = []
    snapshots: dict[str, list[str]] = {wsid: [] for wsid in wsids}
    stop_chaos = asyncio.Event()

    async def chaos() -> None:
        restarted_pg = False
        started = time.monotonic()
        while not stop_chaos.is_set():
            await asyncio.sleep(rng.uniform(2, 4))
            victim = rng.choice(planes)
            await victim.kill()
            counts["kills"] += 1
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            await victim.start()
            counts["restarts"] += 1
            if not restarted_pg and time.monotonic() - started > 15:
                await asyncio.to_thread(postgres.stop)
                await asyncio.sleep(1)
                await asyncio.to_thread(postgres.start)
                restarted_pg = True
                counts["postgres_restarts"] += 1

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        responders = [QuiesceResponder(mount / wsid) for wsid in wsids]
        for wsid in wsids:
            response = await submit(client, "POST", "/v1/workspaces", {"wsid": wsid, "owner": "chaos"})
            assert response.status_code == 202, response.text
            accepted.append(response.json()["init_task_id"])
        chaos_task = asyncio.create_task(chaos())
        try:
            await wait_active(client, wsids)  # agents answer once their workspace exists on disk
            with contextlib.ExitStack() as agents:
                for responder in responders:
                    agents.enter_context(responder.running_in_thread())
                while len(accepted) < TASKS:
                    wsid = rng.choice(wsids)
                    roll = rng.random()
                    if roll < 0.55 or not snapshots[wsid]:
                        response = await submit(client, "POST", f"/v1/workspaces/{wsid}/snapshots", {})
                        if response.status_code == 202:
                            snapshots[wsid].append(response.json()["snapshot_id"])
                    elif roll < 0.75:
                        body = {"snapshot_id": rng.choice(snapshots[wsid])}
                        response = await submit(client, "POST", f"/v1/workspaces/{wsid}/current:set", body)
                    elif roll < 0.82:  # a fork: a new workspace from a snapshot (404 while that is not taken yet)
                        fork = {"wsid": f"fork-{counts['forks']}", "owner": "chaos"}
                        path = f"/v1/workspaces/{wsid}/snapshots/{rng.choice(snapshots[wsid])}:fork"
                        response = await submit(client, "POST", path, fork)
                        counts["forks"] += response.status_code == 202
                    else:
                        victim = rng.choice(snapshots[wsid])
                        response = await submit(client, "DELETE", f"/v1/workspaces/{wsid}/snapshots/{victim}", None)
                    counts[f"http_{response.status_code}"] += 1
                    if response.status_code == 202:
                        answer = response.json()
                        accepted.append(answer.get("task_id") or answer["init_task_id"])
                    await asyncio.sleep(rng.uniform(0.05, 0.4))
                stop_chaos.set()
                await chaos_task
                deadline = time.monotonic() + 360
                pending = set(accepted)
                while pending and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    page = [(await client.get(f"/v1/tasks/{t}")).json() for t in list(pending)[:50]]
                    pending -= {t["task_id"] for t in page if t["status"] in TERMINAL}
        finally:
            stop_chaos.set()
            await asyncio.gather(chaos_task, return_exceptions=True)
            for plane in [*planes, api]:
                await plane.stop()

    engine = create_async_engine(async_dsn(dsn))
    async with engine.connect() as conn:
        rows = list(
            await conn.execute(
                sa.text("SELECT status, error->>'reason' AS reason FROM wvs.tasks WHERE task_id = ANY(:ids)"),
                {"ids": accepted},
            )
        )
        statuses = Counter(row.status for row in rows)
        dead_reasons = Counter(row.reason for row in rows if row.status == "DEAD")
        events = list(await conn.execute(sa.text("SELECT action, wsid, task_id FROM wvs.audit ORDER BY event_id")))
        retries = (await conn.execute(sa.text("SELECT count(*) FROM wvs.audit WHERE action = 'task.failed'"))).scalar()
        unreported_rollbacks = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FROM wvs.tasks WHERE op = 'set_current' AND status = 'SUCCEEDED'"
                    " AND NOT (result->>'noop')::boolean AND result->>'previous_live_path' IS NULL"
                )
            )
        ).scalar()
        unfinished = [
            dict(row._mapping)
            for row in await conn.execute(
                sa.text(
                    "SELECT task_id, wsid, op, status, attempt, error, next_run_at, worker_id, lease_expires_at"
                    " FROM wvs.tasks WHERE status NOT IN ('SUCCEEDED', 'DEAD', 'CANCELED')"
                )
            )
        ]
    await engine.dispose()

    assert sum(statuses.values()) == len(accepted) >= 200
    assert set(statuses) <= TERMINAL, f"unfinished tasks: {statuses} {unfinished} logs in {tmp_path}"
    assert serialization_violations(events) == []
    # A task may die only by a rule's refusal at claim time (a drop of a snapshot made current after the drop
    # was accepted); exhausting its attempts under chaos would mean the engine lost work.
    assert set(dead_reasons) <= {"REJECTED"}, dead_reasons
    assert unreported_rollbacks == 0, "every rollback names the live tree it replaced, re-runs included"
    fsck = await asyncio.to_thread(CliRunner().invoke, cli, ["fsck", "--config", str(config), "--json"])
    report = json.loads(fsck.output)
    assert fsck.exit_code == 0 and report["clean"], report
    assert counts["kills"] >= 5 and counts["postgres_restarts"] == 1
    assert counts["forks"] >= 1, "the mix forked no workspace"
    with capsys.disabled():
        print(
            f"\nchaos: seed={seed} tasks={len(accepted)} succeeded={statuses['SUCCEEDED']} "
            f"dead={statuses['DEAD']}{dict(dead_reasons) or ''} "
            f"canceled={statuses['CANCELED']} forks={counts['forks']} "
            f"kills={counts['kills']} restarts={counts['restarts']} "
            f"postgres_restarts={counts['postgres_restarts']} retries={retries}"
        )
