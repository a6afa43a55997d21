"""Every figure a bench run prints, and which WVS figure stands beside each anchored one."""

from __future__ import annotations

from bench.report import Metric

# Measured for the anchors (bench/anchors/measure.py); the run's header says how.
DRAIN_1 = Metric("drain, 1 worker process", "tasks/s", True)
DRAIN_2 = Metric("drain, 2 worker processes", "tasks/s", True)
PICKUP_P50 = Metric("pickup p50, idle worker", "ms", False)
PICKUP_P99 = Metric("pickup p99, idle worker", "ms", False)
ENQUEUE = Metric("single-job enqueue, 64 connections", "req/s", True)
WORKER_CPU = Metric("worker CPU per task, 1-process drain", "ms", False)

# WVS's own figures (bench/wvs.py).
WAKEUP_MEDIAN = Metric("idle wake-up median (created_at → claim, database clock)", "ms", False)
WAKEUP_P95 = Metric("idle wake-up p95 (created_at → claim, database clock)", "ms", False)
THROUGHPUT = Metric("throughput: init + snapshot tasks, 1 scheduler x 8 slots, 1 executor", "tasks/s", True)
API_RATE = {
    route: Metric(f"API {route}, wvs api process, wrk 2 threads x 32 connections", "req/s", True)
    for route in ("GET workspace", "POST snapshot (accept)")
}
API_P50 = {route: Metric(f"API {route} latency p50 (wrk)", "ms", False) for route in API_RATE}
API_P99 = {route: Metric(f"API {route} latency p99 (wrk)", "ms", False) for route in API_RATE}


def clone_metric(storage: str, files: int) -> Metric:
    return Metric(f"clone ({storage}) of {files:,} files x 4 KiB", "ms", False)


# Each anchored figure, with the existing WVS figure printed beside it (and what that figure really is), or None.
ANCHORED: list[tuple[Metric, Metric | None, str]] = [
    (DRAIN_1, THROUGHPUT, " (closest: init + snapshot throughput over 50 workspaces, not no-op)"),
    (DRAIN_2, None, ""),
    (PICKUP_P50, WAKEUP_MEDIAN, " (closest: idle wake-up median, created_at → claim)"),
    (PICKUP_P99, None, ""),
    (ENQUEUE, API_RATE["POST snapshot (accept)"], " (POST snapshot accepted, wrk 2 x 32 connections)"),
    (WORKER_CPU, None, ""),
]
