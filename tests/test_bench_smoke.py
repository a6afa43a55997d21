"""``python -m bench --quick`` measures WVS and both anchors in one short round and prints every figure as a
positive number, in the ``what | WVS value | anchor value (library, settings) | ratio`` lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import figures
from bench.anchors import AnchorsUnavailable, load_anchors

ROOT = Path(__file__).resolve().parent.parent
HEADER = "what | WVS value | anchor value (library, settings) | ratio"
NUMBER = r"-?[\d,]+(?:\.\d+)?(?:e[-+]?\d+)?"


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

    measured = set()
    for what, wvs, anchor, ratio in rows:
        if wvs != "WVS: not measured yet":
            assert wvs.startswith("WVS "), wvs
            assert figure(wvs.removeprefix("WVS ")) > 0, what
        if anchor != "no anchor":
            assert figure(anchor) > 0, what
            measured.add((what, next(library for library in anchors if f"({library}, " in anchor)))
        if ratio != "-":
            assert figure(ratio.removeprefix("WVS/anchor = ")) > 0, what
    expected = {(metric.label(), library) for metric, _, _ in figures.ANCHORED for library in anchors}
    assert measured == expected
    assert any(row[1] != "WVS: not measured yet" for row in rows), "no WVS figure at all"
