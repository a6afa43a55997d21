"""``python -m bench --quick`` measures WVS and both anchors in one short round and prints every figure as a
positive number, in the ``what | WVS value | anchor value (library, settings) | ratio`` lines: each WVS figure
beside each anchor's, and each WVS-against-WVS comparison with its ratio and target."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import figures
from bench.anchors import AnchorsUnavailable, load_anchors
from bench.wvs import QUICK
from wvs_juicefs.volume import fuse_unavailable_reason

ROOT = Path(__file__).resolve().parent.parent
HEADER = "what | WVS value | anchor value (library, settings) | ratio"
NUMBER = r"-?[\d,]+(?:\.\d+)?(?:e[-+]?\d+)?"
TARGET = re.compile(r"\(target [≥≤] [\d.]+(?: \w+)?: (?:met|missed)\)")


def figure(text: str) -> float:
    """The number a printed figure starts with."""
    match = re.match(NUMBER, text)
    assert match, f"not a figure: {text!r}"
    return float(match[0].replace(",", ""))


@pytest.fixture
def anchors() -> list[str]:
    try:
        return [anchor.library for anchor in load_anchors()]
    except AnchorsUnavailable as missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the bench smoke test, but the bench extra is missing: {missing}")
        pytest.skip(f"the bench extra is not installed: {missing}")


def unmeasurable() -> set[str]:
    """Figures this machine cannot give: the snapshot's without FUSE (it compares with juicefs clone), the API's
    accept rate and CPU without wrk."""
    labels = set()
    if fuse_unavailable_reason() is not None:
        labels |= {c.what for c in figures.comparisons(QUICK.scale_rows, QUICK.snapshot_files) if "snapshot" in c.what}
    if shutil.which("wrk") is None:
        labels |= {metric.label() for metric in [*figures.ACCEPT.values(), *figures.ACCEPT_CPU.values()]}
    return labels


def test_a_quick_run_prints_every_figure_as_a_positive_number(anchors: list[str], tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    lines = run.stdout.splitlines()
    assert HEADER in lines, run.stdout
    rows = [line.split(" | ") for line in lines[lines.index(HEADER) + 1 :]]
    assert rows and all(len(row) == 4 for row in rows), run.stdout

    skipped = unmeasurable()
    paired, compared = set(), set()
    for what, wvs, anchor, ratio in rows:
        if any(what.startswith(label) for label in skipped):
            continue
        assert wvs.startswith("WVS "), f"{what}: {wvs}"
        assert "stopped" not in wvs, f"{what} ran out of time at quick sizes: {wvs}"
        if anchor == "no anchor" and ratio != "-":  # a comparison: "WVS 10k 41.6 tasks/s; 1k 119 tasks/s"
            values = [figure(part.partition(" ")[2]) for part in wvs.removeprefix("WVS ").split("; ")]
        else:
            values = [figure(wvs.removeprefix("WVS "))]
        assert all(value > 0 for value in values), f"{what}: {wvs}"
        if anchor != "no anchor":
            assert figure(anchor) > 0, what
            assert figure(ratio.removeprefix("WVS/anchor = ")) > 0, what
            paired.add((what, next(library for library in anchors if f"({library}: " in anchor)))
        elif ratio != "-":
            assert figure(ratio.partition(" = ")[2]) > 0 and TARGET.search(ratio), f"{what}: {ratio}"
            compared.add(what.rpartition(" (")[0])
    expected_pairs = {(wvs.label(), library) for wvs, _, _ in figures.ANCHORED for library in anchors}
    assert paired == {pair for pair in expected_pairs if pair[0] not in skipped}
    expected = {c.what for c in figures.comparisons(QUICK.scale_rows, QUICK.snapshot_files)}
    assert compared == expected - skipped
