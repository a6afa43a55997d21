"""An anchor's own process, driven over stdin/stdout by ``bench.anchors.measure``.

    python -m bench.anchors.child NAME DSN worker WORKSPACES [--report-starts]
    python -m bench.anchors.child NAME DSN enqueue WORKSPACES --connections N --seconds S

It imports and connects, prints ``ready``, and starts on ``go``; a worker runs until ``stop``. Its last line
is ``done TASKS CPU_SECONDS [ELAPSED]``, CPU being this process's user + system time since ``go``
(``os.times``). A worker started with ``--report-starts`` prints ``start KEY MONOTONIC`` as each handler
begins (CLOCK_MONOTONIC is one clock for every process on Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import time

from bench.anchors import anchor_named
from bench.anchors.base import Anchor, workspace_key


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def line_from_parent() -> str:
    return (await asyncio.to_thread(sys.stdin.readline)).strip()


async def expect(word: str) -> None:
    if (line := await line_from_parent()) != word:
        raise SystemExit(f"expected {word!r} from the parent, got {line!r}")


async def run_worker(anchor: Anchor, dsn: str, workspaces: int, report_starts: bool) -> None:
    tasks = 0

    def started(key: str) -> None:
        nonlocal tasks
        tasks += 1
        if report_starts:
            print(f"start {key} {time.monotonic()!r}", flush=True)

    stop = asyncio.Event()
    print("ready", flush=True)
    await expect("go")
    cpu_at_go = cpu_seconds()
    work = asyncio.create_task(anchor.work(dsn, workspaces, started, stop))
    told = asyncio.create_task(expect("stop"))
    await asyncio.wait({work, told}, return_when=asyncio.FIRST_COMPLETED)
    if work.done():
        told.cancel()
        work.result()  # raises what stopped the worker
        raise SystemExit("the worker stopped before it was told to")
    told.result()
    counted, cpu = tasks, cpu_seconds() - cpu_at_go
    stop.set()
    await work
    print(f"done {counted} {cpu!r}", flush=True)


async def run_enqueue(anchor: Anchor, dsn: str, workspaces: int, connections: int, seconds: float) -> None:
    keys = (workspace_key(n % workspaces) for n in itertools.count())
    enqueued = 0
    async with anchor.enqueuer(dsn, connections) as enqueue:
        print("ready", flush=True)
        await expect("go")
        cpu_at_go, started = cpu_seconds(), time.monotonic()
        deadline = started + seconds

        async def client() -> None:
            nonlocal enqueued
            while time.monotonic() < deadline:
                await enqueue(next(keys))
                enqueued += 1

        await asyncio.gather(*(client() for _ in range(connections)))
        elapsed = time.monotonic() - started
    print(f"done {enqueued} {cpu_seconds() - cpu_at_go!r} {elapsed!r}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.anchors.child")
    parser.add_argument("name")
    parser.add_argument("dsn")
    parser.add_argument("role", choices=["worker", "enqueue"])
    parser.add_argument("workspaces", type=int)
    parser.add_argument("--report-starts", action="store_true")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    anchor = anchor_named(args.name)
    if args.role == "worker":
        run = run_worker(anchor, args.dsn, args.workspaces, args.report_starts)
    else:
        run = run_enqueue(anchor, args.dsn, args.workspaces, args.connections, args.seconds)
    if anchor.loop == "uvloop":
        import uvloop

        uvloop.run(run)
    else:
        asyncio.run(run)


if __name__ == "__main__":
    main()
