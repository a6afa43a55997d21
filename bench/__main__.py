"""Print WVS's figures beside PgQueuer's and Procrastinate's, all measured in one run on one embedded PostgreSQL.

    python -m bench [--rounds N] [--quick]

Rounds interleave the systems (WVS, PgQueuer, Procrastinate, WVS, ...) so that load from elsewhere on the
machine falls on all of them; each figure is the median over the rounds, with its spread. ``--quick`` runs
one round at toy sizes, in seconds, to check that every figure can be measured (the smoke test uses it).
Progress goes to stderr; stdout ends with the report, one ``what | WVS | anchor (library, settings) | ratio`` line
per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from bench import figures
from bench.anchors import AnchorsUnavailable, load_anchors
from bench.anchors.base import Anchor
from bench.anchors.measure import QUICK, Sizes, measure_anchor
from bench.postgres import BenchPostgres
from bench.report import Rounds, report
from bench.wvs import QUICK as WVS_QUICK
from bench.wvs import WVS, WvsSizes, measure_wvs
from wvs_core.embedded import EmbeddedPostgres
from wvs_juicefs.volume import JuiceFSVolume, fuse_unavailable_reason


async def run_rounds(
    postgres: BenchPostgres,
    volume: Path,
    storage: str,
    count: int,
    wvs_sizes: WvsSizes,
    sizes: Sizes,
    anchors: list[Anchor],
) -> Rounds:
    rounds = Rounds()
    for n in range(1, count + 1):
        print(f"round {n}/{count}: WVS", file=sys.stderr, flush=True)
        await measure_wvs(postgres, volume, storage, wvs_sizes, rounds)
        for anchor in anchors:
            print(f"round {n}/{count}: {anchor.library}", file=sys.stderr, flush=True)
            await measure_anchor(anchor, postgres, sizes, rounds)
    return rounds


def print_report(rounds: Rounds, count: int, sizes: Sizes, anchors: list[Anchor], missing: str) -> None:
    order = ", ".join([WVS, *(anchor.library for anchor in anchors)])
    print(f"{count} round(s) interleaved ({order}); each figure the median [min..max] over the rounds")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end (other work shares it)")
    print(
        f"anchors, each measurement in a fresh database: drain = {sizes.drain_jobs:,} no-op jobs over "
        f"{sizes.workspaces:,} workspaces (job n → workspace n mod {sizes.workspaces:,}), one at a time per "
        "workspace, ANALYZEd, then drained by fresh worker processes, timed from go to no job left; "
        f"pickup = enqueue call → handler start, one job at a time to an idle worker, {sizes.pickup_samples} "
        f"samples; enqueue = {sizes.enqueue_connections} concurrent single-job enqueues for "
        f"{sizes.enqueue_seconds:g} s, no worker running; worker CPU = os.times of the worker process / tasks"
    )
    for anchor in anchors:
        print(f"{anchor.library} settings: {anchor.settings(sizes.workspaces)}")
    if missing:
        print(f"anchors not measured: {missing}")
    print("what | WVS value | anchor value (library, settings) | ratio")
    shown = set()
    for metric, closest, note in figures.ANCHORED:
        wvs = rounds.summary(WVS, closest) if closest else None
        shown.add(closest)
        beside = [
            (f"{anchor.library}, {anchor.tuning()}", rounds.summary(anchor.library, metric)) for anchor in anchors
        ]
        for line in report(metric, wvs, beside, wvs_note=note if wvs else ""):
            print(line)
    for system, metric in list(rounds.values):
        if system == WVS and metric not in shown:
            for line in report(metric, rounds.summary(WVS, metric), []):
                print(line)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, help="rounds to interleave (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="one round at toy sizes (seconds): a smoke check")
    args = parser.parse_args()
    count = args.rounds or (1 if args.quick else 3)
    wvs_sizes, sizes = (WVS_QUICK, QUICK) if args.quick else (WvsSizes(), Sizes())
    try:
        anchors, missing = load_anchors(), ""
    except AnchorsUnavailable as unavailable:
        anchors, missing = [], str(unavailable)

    with tempfile.TemporaryDirectory(prefix="wvs-bench-") as scratch:
        base = Path(scratch)
        server = EmbeddedPostgres(base / "postgres")
        juicefs = None
        try:
            server.start()
            if fuse_unavailable_reason() is None:
                juicefs = JuiceFSVolume(base / "juicefs").start()
                volume, storage = juicefs.mount_path, "juicefs"
            else:
                volume, storage = base / "plain", "localfs"
                volume.mkdir()
            postgres = BenchPostgres(server)
            rounds = asyncio.run(run_rounds(postgres, volume, storage, count, wvs_sizes, sizes, anchors))
        finally:
            if juicefs is not None:
                juicefs.close()
            server.stop()
    print_report(rounds, count, sizes, anchors, missing)


if __name__ == "__main__":
    main()
