"""Figures over interleaved rounds, printed as ``what | WVS value | anchor value (library, settings) | ratio``."""

from __future__ import annotations

import statistics
from collections import defaultdict

import attrs


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@attrs.frozen
class Metric:
    """One figure measured every round: what it is, its unit, and which way is better."""

    what: str
    unit: str
    higher_is_better: bool

    def label(self) -> str:
        return f"{self.what} ({self.unit}, {'higher' if self.higher_is_better else 'lower'} better)"


@attrs.frozen
class Target:
    """What a ratio should reach: at least ``bound`` (``at_least``) or at most ``bound``."""

    bound: float
    at_least: bool

    def judge(self, value: float, unit: str = "") -> str:
        """``target ≥ 0.5: met`` (``unit`` after the bound, for a figure's own target)."""
        met = value >= self.bound if self.at_least else value <= self.bound
        bound = f"{self.bound:g} {unit}".rstrip()
        return f"target {'≥' if self.at_least else '≤'} {bound}: {'met' if met else 'missed'}"


@attrs.frozen
class Comparison:
    """Two WVS figures of one run side by side, and their ratio ``other / base`` against a target (the snapshot
    against its bare clone, the 1M-row list against the 1k-row one)."""

    what: str
    base: Metric
    other: Metric
    base_name: str
    other_name: str
    target: Target


@attrs.define
class Rounds:
    """Each system's values of each metric, one per round, with notes (a measurement stopped at its deadline);
    reported as the median over the rounds."""

    values: dict[tuple[str, Metric], list[float]] = attrs.field(factory=lambda: defaultdict(list))
    notes: dict[tuple[str, Metric], list[str]] = attrs.field(factory=lambda: defaultdict(list))

    def add(self, system: str, metric: Metric, value: float, note: str = "") -> None:
        self.values[(system, metric)].append(value)
        if note:
            self.notes[(system, metric)].append(note)

    def summary(self, system: str, metric: Metric) -> tuple[float, str] | None:
        """The median and a printable ``median unit [min..max, n rounds] (notes)``; None when never measured."""
        values = self.values.get((system, metric))
        if not values:
            return None
        median = statistics.median(values)
        spread = f" [{fmt(min(values))}..{fmt(max(values))}, {len(values)} rounds]" if len(values) > 1 else ""
        notes = self.notes.get((system, metric))
        noted = f" ({'; '.join(notes)})" if notes else ""
        return median, f"{fmt(median)} {metric.unit}{spread}{noted}"


def fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def ratio_text(name: str, numerator: float, denominator: float, target: Target | None) -> str:
    if not denominator:
        return "-"
    ratio = numerator / denominator
    return f"{name} = {ratio:.3g}" + (f" ({target.judge(ratio)})" if target else "")


def report(
    metric: Metric,
    wvs: tuple[float, str] | None,
    anchors: list[tuple[str, tuple[float, str] | None, Target | None]],
) -> list[str]:
    """The lines for one WVS figure: beside each anchor's, with the ratio WVS ÷ anchor and its target if any.

    ``wvs`` and each anchor's figure are ``(median, printable)``; ``anchors`` gives a ``"library, settings"``
    description, the figure and the target of each. Without anchors, one line with WVS alone.
    """
    wvs_text = f"WVS {wvs[1]}" if wvs else "WVS: not measured"
    if not anchors:
        return [f"{metric.label()} | {wvs_text} | no anchor | -"]
    lines = []
    for described, figure, target in anchors:
        anchor_text = f"{figure[1]} ({described})" if figure else f"not measured ({described})"
        ratio = ratio_text("WVS/anchor", wvs[0], figure[0], target) if wvs and figure else "-"
        lines.append(f"{metric.label()} | {wvs_text} | {anchor_text} | {ratio}")
    return lines


def compare(comparison: Comparison, rounds: Rounds, system: str) -> str:
    """The line of a comparison between two of ``system``'s figures."""
    base, other = rounds.summary(system, comparison.base), rounds.summary(system, comparison.other)
    unit = comparison.base.unit
    what = f"{comparison.what} ({unit}, {'higher' if comparison.base.higher_is_better else 'lower'} better)"
    if base is None or other is None:
        return f"{what} | WVS: not measured | no anchor | -"
    values = f"WVS {comparison.other_name} {other[1]}; {comparison.base_name} {base[1]}"
    name = f"{comparison.other_name}/{comparison.base_name}"
    return f"{what} | {values} | no anchor | {ratio_text(name, other[0], base[0], comparison.target)}"
