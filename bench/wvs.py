"""One round of WVS's figures, each measured on WVS's own processes as deployed (``bench.processes``).

Drains and CPU per task (``bench.drain``), pickup (``bench.pickup``), the API's accept rate (``bench.accept``),
snapshot overhead (``bench.snapshots``, on JuiceFS only), list latency and the claim against a backlog at two
scales (``bench.lists``, ``bench.scale``), and the peak RSS of every process the round started.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import attrs

from bench import figures
from bench.accept import WRK_THREADS, accept_rates
from bench.anchors.measure import Sizes
from bench.drain import drain
from bench.lists import list_latencies
from bench.parts import PARTS, Parts
from bench.pickup import WORKSPACES as PICKUP_WORKSPACES
from bench.pickup import pickup_latencies
from bench.processes import bench_config, describe
from bench.progress import progress
from bench.report import Rounds, percentile
from bench.scale import ScaleDatabase, backlog_drain
from bench.seed import ScaleRows
from bench.snapshots import snapshot_overhead
from bench.stage import Stage
from wvs_core.config import config_from_dict

WVS = "WVS"


@attrs.frozen
class WvsSizes:
    """WVS's own sizes; those it shares with the anchors (drain, pickup, enqueue) are the anchors' ``Sizes``."""

    executed_drain_tasks: int = 3_000  # through the executor: 3 per workspace of the drain
    snapshot_files: tuple[int, ...] = (100, 10_000)
    snapshot_samples: int = 5  # one clone of 10,000 files and the next differ by up to 20 % on a busy machine
    scale_rows: tuple[int, int] = (1_000, 1_000_000)
    backlog_drain_tasks: int = 5_000  # 25 per workspace: at 2,000 tasks/s, 1,000 took half a second, too short to time
    backlog_drain_workspaces: int = 200
    backlog_deadline: float = 60.0  # today's claim drains ~0.2 tasks/s past 1M blocked tasks
    list_samples: int = 10


QUICK = WvsSizes(
    executed_drain_tasks=100,
    snapshot_files=(100,),
    snapshot_samples=1,
    scale_rows=(1_000, 10_000),
    backlog_drain_tasks=100,
    backlog_drain_workspaces=20,
    list_samples=3,
)


def step(what: str) -> None:
    progress(f"  WVS: {what}")


async def measure_wvs(
    stage: Stage, sizes: WvsSizes, common: Sizes, scale: list[ScaleDatabase], rounds: Rounds, parts: Parts = PARTS
) -> None:
    """One round of WVS's figures of ``parts`` into ``rounds``."""
    if "drain" in parts:
        await measure_drains(stage, sizes, common, rounds)
    if "pickup" in parts:
        step(f"pickup, {common.pickup_samples} samples")
        latencies = await pickup_latencies(stage, common.pickup_samples)
        rounds.add(WVS, figures.WVS_PICKUP_P50, percentile(latencies, 0.5) * 1000)
        rounds.add(WVS, figures.WVS_PICKUP_P99, percentile(latencies, 0.99) * 1000)
    if "accept" in parts:
        await measure_accept(stage, common, rounds)
    if "snapshots" in parts:
        await measure_snapshots(stage, sizes, rounds)
    if "lists" in parts:
        step(f"list endpoints, {' and '.join(f'{database.rows.rows:,}' for database in scale)} rows")
        for (endpoint, rows), latency in (await list_latencies(stage, scale, sizes.list_samples)).items():
            rounds.add(WVS, figures.list_latency(endpoint, rows), latency)
    if "backlog" in parts:
        for database in scale:
            await measure_backlog(stage, database, sizes, rounds)

    for plane, megabytes in stage.memory.peaks.items():
        rounds.add(WVS, figures.PEAK_RSS[plane], megabytes)
    stage.memory.peaks.clear()


async def measure_drains(stage: Stage, sizes: WvsSizes, common: Sizes, rounds: Rounds) -> None:
    step(f"drain of {common.drain_jobs:,} bench_noop tasks, 1 worker process")
    one = await drain(stage, common.drain_jobs, common.workspaces, 1, common.deadline)
    rounds.add(WVS, figures.WVS_DRAIN_1, one.tasks_per_second)
    rounds.add(WVS, figures.WVS_WORKER_CPU, one.cpu_seconds_per_task * 1000)
    step(f"the same, 1 worker process with worker.concurrency = {figures.TUNED_CONCURRENCY}")
    tuned = await drain(
        stage, common.drain_jobs, common.workspaces, 1, common.deadline, concurrency=figures.TUNED_CONCURRENCY
    )
    rounds.add(WVS, figures.WVS_DRAIN_1_TUNED, tuned.tasks_per_second)
    step("the same, 2 worker processes")
    two = await drain(stage, common.drain_jobs, common.workspaces, 2, common.deadline)
    rounds.add(WVS, figures.WVS_DRAIN_2, two.tasks_per_second)
    step(f"drain of {sizes.executed_drain_tasks:,} bench_noop_executed tasks, 1 worker process, 1 executor")
    executed = await drain(stage, sizes.executed_drain_tasks, common.workspaces, 1, common.deadline, True)
    rounds.add(WVS, figures.WVS_DRAIN_1_EXECUTED, executed.tasks_per_second)


async def measure_accept(stage: Stage, common: Sizes, rounds: Rounds) -> None:
    if shutil.which("wrk") is None:
        step("API accept skipped: wrk is not installed (apt-get install wrk; make bench installs it as root)")
    else:
        step(f"API accept of POST snapshot over {' and '.join(str(n) for n in figures.ACCEPT)} workspace(s)")
        rates = await accept_rates(stage, list(figures.ACCEPT), common.enqueue_connections, common.enqueue_seconds)
        for workspaces, accepted in rates.items():
            note = f"{accepted.errors} answers not 202" if accepted.errors else ""
            rounds.add(WVS, figures.ACCEPT[workspaces], accepted.rate, note)
            rounds.add(WVS, figures.ACCEPT_CPU[workspaces], accepted.cpu_seconds_per_request * 1000)


async def measure_snapshots(stage: Stage, sizes: WvsSizes, rounds: Rounds) -> None:
    if stage.storage == "juicefs":
        step(f"snapshot overhead, {' and '.join(f'{files:,}' for files in sizes.snapshot_files)} files")
        overhead = await snapshot_overhead(stage, sizes.snapshot_files, sizes.snapshot_samples)
        for files, (e2e, clone) in overhead.items():
            rounds.add(WVS, figures.snapshot_e2e(files), e2e)
            rounds.add(WVS, figures.bare_clone(files), clone)
    else:
        step("snapshot overhead skipped: it compares with juicefs clone, and FUSE is unusable here")


async def measure_backlog(stage: Stage, database: ScaleDatabase, sizes: WvsSizes, rounds: Rounds) -> None:
    metric = figures.backlog_drain(database.rows.rows)
    if database.stopped:
        step(f"backlog drain, {database.rows.rows:,} queued: skipped, stopped at its deadline in an earlier round")
        return
    step(f"backlog drain, {database.rows.rows:,} queued (deadline {sizes.backlog_deadline:g} s)")
    drained = await backlog_drain(stage, database, sizes.backlog_drain_tasks, sizes.backlog_deadline)
    note = ""
    if drained.stopped_after is not None:
        note = f"> {drained.stopped_after:g} s, stopped: {drained.drained:,} of {sizes.backlog_drain_tasks:,} drained"
    rounds.add(WVS, metric, drained.tasks_per_second, note)


def settings(sizes: WvsSizes, common: Sizes, storage: str) -> list[str]:
    """How each WVS figure is measured, for the report's header."""
    config = config_from_dict(bench_config("postgresql:///bench", Path("/bench"), storage, "none"))
    small, large = sizes.scale_rows
    return [
        "WVS processes: `wvs api`, `wvs worker`, `wvs executor`, `wvs agent`, each its own process on loopback "
        f"ports, all reading one WVS_CONFIG file per measurement with WVS's defaults but: {describe(config)}",
        f"WVS drain: {common.drain_jobs:,} tasks over {common.workspaces:,} workspaces (task n → workspace n mod "
        f"{common.workspaces:,}), created with core's tasks.insert in one transaction that ANALYZEs and announces "
        "them, committed once every worker ran its first empty claim; timed from the commit until none is "
        f"unfinished, then all checked SUCCEEDED. bench_noop: bench/noop_plugin.py, on_claimed returns "
        f"ClaimDecision.done (no executor call); bench_noop_executed: {sizes.executed_drain_tasks:,} tasks whose "
        "execute does nothing, with one `wvs executor`; worker CPU = /proc utime+stime of the worker process "
        "while draining / tasks",
        f"WVS pickup: {common.pickup_samples} bench_noop tasks POSTed one at a time to `wvs api` over "
        f"{PICKUP_WORKSPACES} workspaces, each after the last ended and a 10-30 ms pause; started_at - created_at",
        f"WVS API accept: wrk -t{WRK_THREADS} -c{common.enqueue_connections} -d{common.enqueue_seconds:g}s, POST "
        "/v1/workspaces/{wsid}/snapshots {} with a fresh Idempotency-Key, over "
        f"{' or '.join(str(n) for n in figures.ACCEPT)} ACTIVE workspaces (both runs on one `wvs api` and database, "
        "the second on workspaces of its own), no worker running; API CPU = /proc utime+stime of the `wvs api` "
        "process during the wrk run / requests answered",
        f"WVS snapshot overhead: {sizes.snapshot_samples} snapshot(s) with a `wvs agent` answering control.json, "
        "from sending the POST to the task's ended_at, alternating with `juicefs clone -p --threads 4 SRC DST` of "
        "the same live tree; medians",
        f"WVS scale databases, seeded once per run by INSERT ... SELECT generate_series then VACUUM ANALYZE: N = "
        f"{small:,} and {large:,}: N workspaces ({ScaleRows.RARE} DISABLED), N tasks queued behind N/100 busy "
        f"workspaces (each: its oldest task RUNNING, held by no live worker, then 99 PENDING), {ScaleRows.RARE} "
        "DEAD snapshot_create tasks, N snapshots and N audit rows in one workspace; lists: median of up to "
        f"{sizes.list_samples} GETs of the first page after 2, alternating between the two databases' `wvs api`s; "
        f"backlog drain: {sizes.backlog_drain_tasks:,} new bench_noop tasks over {sizes.backlog_drain_workspaces} "
        "other workspaces, 1 `wvs worker`, rate from the first started_at to the last ended_at, deadline "
        f"{sizes.backlog_deadline:g} s",
        "WVS peak RSS: VmHWM of each process as it stops; the highest per plane over the round",
    ]
