"""Every figure a bench run prints: the anchors', WVS's beside them, and WVS's compared with one another."""

from __future__ import annotations

from bench.report import Comparison, Metric, Target

# Measured for the anchors (bench/anchors/measure.py); the run's header says how.
DRAIN_1 = Metric("drain, 1 worker process", "tasks/s", True)
DRAIN_2 = Metric("drain, 2 worker processes", "tasks/s", True)
PICKUP_P50 = Metric("pickup p50, idle worker", "ms", False)
PICKUP_P99 = Metric("pickup p99, idle worker", "ms", False)
ENQUEUE = Metric("single-job enqueue, 64 connections", "req/s", True)
WORKER_CPU = Metric("worker CPU per task, 1-process drain", "ms", False)

# WVS's, measured the same way (bench/wvs.py); the header gives the settings.
WVS_DRAIN_1 = Metric("drain, 1 wvs worker process, bench_noop (done in the claiming transaction)", "tasks/s", True)
# worker.concurrency for the tuned drain: a claim takes as many tasks as there are free slots, so the slots set
# the batch. Bare claim loop of bench_noop, 1,000 workspaces, tasks/s: 16 → 1,328 to 1,806, 32 → 2,309 to 3,242,
# 64 → 3,046 to 3,711, 128 → 4,089 to 4,127.
TUNED_CONCURRENCY = 64
WVS_DRAIN_1_TUNED = Metric(
    f"drain, 1 wvs worker process, bench_noop, worker.concurrency = {TUNED_CONCURRENCY} (tuned, as the anchors are)",
    "tasks/s",
    True,
)
WVS_DRAIN_1_EXECUTED = Metric(
    "drain, 1 wvs worker process + 1 wvs executor, bench_noop_executed (an executor call doing nothing)",
    "tasks/s",
    True,
)
WVS_DRAIN_2 = Metric("drain, 2 wvs worker processes, bench_noop", "tasks/s", True)
WVS_WORKER_CPU = Metric("worker CPU per task, 1-process drain of bench_noop", "ms", False)
WVS_PICKUP_P50 = Metric("pickup p50, idle wvs worker: created_at → started_at, database clock", "ms", False)
WVS_PICKUP_P99 = Metric("pickup p99, idle wvs worker: created_at → started_at, database clock", "ms", False)
ACCEPT = {
    workspaces: Metric(f"API accept of POST snapshot, {workspaces} workspace(s), 64 connections", "req/s", True)
    for workspaces in (50, 1)
}
ACCEPT_CPU = {
    workspaces: Metric(f"API CPU per accepted POST snapshot, {workspaces} workspace(s), 64 connections", "ms", False)
    for workspaces in ACCEPT
}

# Each WVS figure, the anchors' figure printed beside it, and the issue's target for WVS ÷ anchor by anchor name.
ANCHORED: list[tuple[Metric, Metric, dict[str, Target]]] = [
    (WVS_DRAIN_1, DRAIN_1, {"pgqueuer": Target(0.5, at_least=True), "procrastinate": Target(3, at_least=True)}),
    (WVS_DRAIN_1_TUNED, DRAIN_1, {"pgqueuer": Target(0.5, at_least=True), "procrastinate": Target(3, at_least=True)}),
    (WVS_DRAIN_1_EXECUTED, DRAIN_1, {}),
    (WVS_DRAIN_2, DRAIN_2, {}),
    (WVS_WORKER_CPU, WORKER_CPU, {}),
    (WVS_PICKUP_P50, PICKUP_P50, {"pgqueuer": Target(1, at_least=False)}),
    (WVS_PICKUP_P99, PICKUP_P99, {"pgqueuer": Target(1, at_least=False)}),
    *((metric, ENQUEUE, {"pgqueuer": Target(0.5, at_least=True)}) for metric in ACCEPT.values()),
]

# Targets a WVS figure has on its own (in its unit).
PLANES = ("api", "worker", "executor")
PEAK_RSS = {plane: Metric(f"peak RSS of a wvs {plane} process over the round's loads", "MB", False) for plane in PLANES}
ABSOLUTE: dict[Metric, Target] = {
    WVS_PICKUP_P50: Target(3, at_least=False),
    WVS_PICKUP_P99: Target(10, at_least=False),
    **{metric: Target(120, at_least=False) for metric in PEAK_RSS.values()},
}

# The list endpoints, each timed at the two scale sizes (bench/lists.py builds their paths).
LIST_ENDPOINTS = (
    "GET /v1/workspaces",
    "GET /v1/workspaces?state=DISABLED",
    "GET /v1/workspaces/{history}/snapshots",
    "GET /v1/workspaces/{history}/audit",
    "GET /v1/tasks",
    "GET /v1/tasks?status=DEAD",
    "GET /v1/tasks?status=PENDING",
    "GET /v1/tasks?op=snapshot_create",
    "GET /v1/tasks?wsid={busy}",
    "GET /v1/tasks?wsid={busy}&status=PENDING",
    "GET /v1/events",
    "GET /v1/events?after={newest - 10}",
    "GET /v1/events?wsid={history}",
)
SNAPSHOT_TARGETS = {100: Target(1.5, at_least=False), 10_000: Target(1.10, at_least=False)}


def short(count: int) -> str:
    """1000 → ``1k``, 1000000 → ``1M``."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if count >= size and count % size == 0:
            return f"{count // size}{suffix}"
    return f"{count:,}"


def backlog_drain(queued: int) -> Metric:
    return Metric(
        f"drain of new bench_noop tasks, 1 wvs worker, {short(queued)} queued tasks blocked behind "
        f"{short(queued // 100)} busy workspaces (database clock)",
        "tasks/s",
        True,
    )


def snapshot_e2e(files: int) -> Metric:
    return Metric(f"snapshot of {files:,} files x 4 KiB, POST → SUCCEEDED", "ms", False)


def bare_clone(files: int) -> Metric:
    return Metric(f"bare juicefs clone -p of the same {files:,} files", "ms", False)


def list_latency(endpoint: str, rows: int) -> Metric:
    return Metric(f"{endpoint}, {short(rows)} rows, median latency", "ms", False)


def comparisons(scale: tuple[int, int], snapshot_files: tuple[int, ...]) -> list[Comparison]:
    """The WVS-against-WVS figures of a run at these sizes."""
    small, large = (short(rows) for rows in scale)
    found = [
        Comparison(
            f"claim independent of backlog: drain rate with {small} → {large} queued tasks",
            backlog_drain(scale[0]),
            backlog_drain(scale[1]),
            small,
            large,
            Target(0.67, at_least=True),
        )
    ]
    found += [
        Comparison(
            f"snapshot overhead, {files:,} files x 4 KiB: POST → SUCCEEDED vs bare juicefs clone -p",
            bare_clone(files),
            snapshot_e2e(files),
            "clone",
            "e2e",
            SNAPSHOT_TARGETS.get(files, Target(1.5, at_least=False)),
        )
        for files in snapshot_files
    ]
    found += [
        Comparison(
            f"{endpoint}: latency, {small} → {large} rows",
            list_latency(endpoint, scale[0]),
            list_latency(endpoint, scale[1]),
            small,
            large,
            Target(1.5, at_least=False),
        )
        for endpoint in LIST_ENDPOINTS
    ]
    return found
