"""Print WVS's figures beside PgQueuer's and Procrastinate's, all measured in one run on one embedded PostgreSQL.

    python -m bench [--rounds N] [--quick] [--only PART[,PART...]]

Rounds interleave the systems (WVS, PgQueuer, Procrastinate, WVS, ...) so that load from elsewhere on the
machine falls on all of them; each figure is the median over the rounds, with its spread. The scale databases
(1k and 1M rows) are seeded once, before the rounds. ``--quick`` runs one round at toy sizes, in seconds, to
check that every figure can be measured (the smoke test uses it). ``--only drain,pickup`` measures those parts
alone (``bench.parts.PARTS``), on both sides, at the sizes asked for; the others print "not measured". Progress
goes to stderr; stdout ends with the report, one ``what | WVS value | anchor value (library, settings) | ratio``
line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from bench import figures, wvs
from bench.anchors import AnchorsUnavailable, load_anchors
from bench.anchors.base import Anchor
from bench.anchors.measure import QUICK, Sizes, measure_anchor
from bench.parts import PARTS, Parts, parse_parts
from bench.postgres import BenchPostgres
from bench.processes import print_logs
from bench.progress import progress
from bench.report import Metric, Rounds, compare, report
from bench.scale import ScaleDatabase, scale_database
from bench.stage import Stage
from bench.wvs import WVS, WvsSizes, measure_wvs
from wvs_core.embedded import EmbeddedPostgres
from wvs_juicefs.volume import JuiceFSVolume, fuse_unavailable_reason


async def run_rounds(
    stage: Stage, count: int, wvs_sizes: WvsSizes, sizes: Sizes, anchors: list[Anchor], parts: Parts
) -> Rounds:
    scale: list[ScaleDatabase] = []
    for rows in wvs_sizes.scale_rows if parts & {"lists", "backlog"} else ():
        progress(f"seeding the {rows:,}-row scale database")
        scale.append(await scale_database(stage.postgres, rows, wvs_sizes.backlog_drain_workspaces))
    rounds = Rounds()
    for n in range(1, count + 1):
        progress(f"round {n}/{count}: WVS")
        await measure_wvs(stage, wvs_sizes, sizes, scale, rounds, parts)
        for anchor in anchors if parts & {"drain", "pickup", "accept"} else ():
            progress(f"round {n}/{count}: {anchor.library}")
            await measure_anchor(anchor, stage.postgres, sizes, rounds, parts)
    for database in scale:
        stage.postgres.drop_database(database.name)
    return rounds


def wvs_figure(rounds: Rounds, metric: Metric) -> tuple[float, str] | None:
    """WVS's summary of ``metric``, with its own target judged when it has one."""
    summary = rounds.summary(WVS, metric)
    target = figures.ABSOLUTE.get(metric)
    if summary is None or target is None:
        return summary
    return summary[0], f"{summary[1]} ({target.judge(summary[0], metric.unit)})"


def print_report(
    rounds: Rounds, count: int, wvs_sizes: WvsSizes, sizes: Sizes, storage: str, anchors: list[Anchor], missing: str
) -> None:
    order = ", ".join([WVS, *(anchor.library for anchor in anchors)])
    print(f"{count} round(s) interleaved ({order}); each figure the median [min..max] over the rounds")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end (other work shares it)")
    for line in wvs.settings(wvs_sizes, sizes, storage):
        print(line)
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
    for wvs_metric, anchor_metric, targets in figures.ANCHORED:
        beside = [
            (
                f"{anchor.library}: {anchor_metric.what}; {anchor.tuning()}",
                rounds.summary(anchor.library, anchor_metric),
                targets.get(anchor.name),
            )
            for anchor in anchors
        ]
        for line in report(wvs_metric, wvs_figure(rounds, wvs_metric), beside):
            print(line)
    for comparison in figures.comparisons(wvs_sizes.scale_rows, wvs_sizes.snapshot_files):
        print(compare(comparison, rounds, WVS))
    for metric in [*figures.ACCEPT_CPU.values(), *figures.PEAK_RSS.values()]:
        for line in report(metric, wvs_figure(rounds, metric), []):
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, help="rounds to interleave (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="one round at toy sizes (seconds): a smoke check")
    parser.add_argument(
        "--only",
        type=parse_parts,
        default=PARTS,
        metavar="PART[,PART...]",
        help=f"measure only these parts, comma-separated, of: {', '.join(sorted(PARTS))} (default all)",
    )
    args = parser.parse_args()
    count = args.rounds or (1 if args.quick else 3)
    wvs_sizes, sizes = (wvs.QUICK, QUICK) if args.quick else (WvsSizes(), Sizes())
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
            stage = Stage(BenchPostgres(server), volume, storage, base / "runs")
            rounds = asyncio.run(run_rounds(stage, count, wvs_sizes, sizes, anchors, args.only))
        except BaseException:
            print_logs(base / "runs")
            raise
        finally:
            if juicefs is not None:
                juicefs.close()
            server.stop()
    print_report(rounds, count, wvs_sizes, sizes, storage, anchors, missing)


if __name__ == "__main__":
    main()
