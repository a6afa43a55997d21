"""What a snapshot costs beyond its clone: ``POST /v1/workspaces/{wsid}/snapshots`` → SUCCEEDED, against a bare
``juicefs clone -p`` of the same live tree in the same minute.

A deployment of its own processes (``wvs api``, ``wvs worker``, ``wvs executor``) with the ``control-json``
quiesce, and a ``wvs agent`` answering the workspace's freeze and resume requests. The snapshot's time runs from
just before the POST is sent (the client's wall clock) to the task's ``ended_at`` (the database's, the same
machine's clock), so polling for the outcome adds nothing to it; the poll is slow (``OUTCOME_POLL``) so as not to
take CPU from the processes it times. The bare clone runs ``juicefs clone -p --threads N`` with the backend's
threads — the command whose request the backend sends to the mount itself — timed from its start to its exit.
The two alternate, after one unmeasured snapshot, each starting at least ``SETTLE`` after the other ended
(the clone up to ``OUTCOME_POLL`` more); the bare clones are removed after the last sample.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import asyncpg
import httpx

from bench.processes import Deployment, agent, planes
from bench.seed import until_succeeded
from bench.stage import Stage
from wvs_core.ids import uuid7
from wvs_juicefs.backend import JuiceFSBackend

FILE_SIZE = 4096
FILES_PER_DIRECTORY = 100
OUTCOME_POLL = 0.05  # seconds between two reads of the task's status: the figure is its ended_at, so a slower
# poll costs nothing but a later look; a 5 ms poll took ~5 % of a core from the processes being timed
SETTLE = 0.1  # seconds from one side's end (as the harness sees it) to the other's start


def juicefs_backend(deployment: Deployment) -> JuiceFSBackend:
    """The storage backend as ``deployment``'s executor builds it (its ``juicefs`` binary, its clone threads)."""
    return JuiceFSBackend(deployment.config.plugins.settings_for("juicefs"))


def clone_command(deployment: Deployment, source: Path, destination: Path) -> list[str]:
    """``juicefs clone`` as the backend would ask the mount for the clone: ``-p``, the backend's threads."""
    backend = juicefs_backend(deployment)
    return [backend.binary, "clone", "-p", "--threads", str(backend.clone_threads), str(source), str(destination)]


async def snapshot_overhead(stage: Stage, files: tuple[int, ...], samples: int) -> dict[int, tuple[float, float]]:
    """For each tree size in ``files``: the median of ``samples`` snapshots (ms) and of as many bare clones (ms)."""
    dsn = await stage.postgres.fresh_wvs_database("wvs_snapshot")
    deployment = stage.deployment("snapshot", dsn, quiesce="control-json")
    mount = Path(deployment.config.executor.mount_path)
    conn = await asyncpg.connect(dsn)
    found = {}
    try:
        async with (
            planes(deployment, ["executor", "worker", "api"], stage.memory) as (_executor, _worker, api),
            httpx.AsyncClient(base_url=api.url, timeout=60) as client,
        ):
            for count in files:
                wsid = f"snapshot-{count}"
                created = await client.post(
                    "/v1/workspaces", json={"wsid": wsid, "owner": "bench"}, headers={"Idempotency-Key": uuid7()}
                )
                created.raise_for_status()
                await until_succeeded(conn, created.json()["init_task_id"], deployment.logs)
                root = mount / wsid
                await asyncio.to_thread(write_tree, root / "current", count)
                live = (root / "current").resolve()
                snapshots, clones = [], []
                bare = [mount / f"bare-{count}-{n}" for n in range(samples)]
                async with agent(root, deployment.logs):
                    await snapshot(client, conn, wsid, deployment)  # unmeasured: everything warm, the agent up
                    for destination in bare:
                        await asyncio.sleep(SETTLE)
                        clones.append(await bare_clone(deployment, live, destination))
                        await asyncio.sleep(SETTLE)
                        snapshots.append(await snapshot(client, conn, wsid, deployment))
                await remove_bare_clones(deployment, bare)
                found[count] = statistics.median(snapshots), statistics.median(clones)
    finally:
        await conn.close()
    return found


def write_tree(live: Path, count: int) -> None:
    """``count`` files of 4 KiB, 100 to a directory."""
    for n in range(count):
        directory = live / f"d{n // FILES_PER_DIRECTORY}"
        directory.mkdir(exist_ok=True)
        (directory / f"f{n}.txt").write_bytes(b"x" * FILE_SIZE)


async def bare_clone(deployment: Deployment, source: Path, destination: Path) -> float:
    """Milliseconds ``juicefs clone -p`` takes to clone ``source`` to ``destination``."""
    command = clone_command(deployment, source, destination)
    started = time.monotonic()
    run = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL)
    if await run.wait() != 0:
        raise RuntimeError(f"{' '.join(command)} failed with exit {run.returncode}")
    return (time.monotonic() - started) * 1000


async def remove_bare_clones(deployment: Deployment, clones: list[Path]) -> None:
    """``juicefs rmr`` the bare clones, once every sample of a size is taken: the removals' work in the mount
    falls on neither side's figure."""
    removing = await asyncio.create_subprocess_exec(juicefs_backend(deployment).binary, "rmr", *map(str, clones))
    await removing.wait()


async def snapshot(client: httpx.AsyncClient, conn: asyncpg.Connection, wsid: str, deployment: Deployment) -> float:
    """Milliseconds from sending ``POST …/snapshots`` to the task's ``ended_at``."""
    sent = time.time()
    response = await client.post(f"/v1/workspaces/{wsid}/snapshots", json={}, headers={"Idempotency-Key": uuid7()})
    response.raise_for_status()
    ended = await until_succeeded(conn, response.json()["task_id"], deployment.logs, poll=OUTCOME_POLL)
    return (ended - sent) * 1000
