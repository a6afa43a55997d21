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


@attrs.define
class Rounds:
    """Each system's values of each metric, one per round; reported as the median over the rounds."""

    values: dict[tuple[str, Metric], list[float]] = attrs.field(factory=lambda: defaultdict(list))

    def add(self, system: str, metric: Metric, value: float) -> None:
        self.values[(system, metric)].append(value)

    def summary(self, system: str, metric: Metric) -> tuple[float, str] | None:
        """The median and a printable ``median unit [min..max, n rounds]``; None when never measured."""
        values = self.values.get((system, metric))
        if not values:
            return None
        median = statistics.median(values)
        spread = f" [{fmt(min(values))}..{fmt(max(values))}, {len(values)} rounds]" if len(values) > 1 else ""
        return median, f"{fmt(median)} {metric.unit}{spread}"


def fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def report(
    metric: Metric,
    wvs: tuple[float, str] | None,
    anchors: list[tuple[str, tuple[float, str] | None]],
    wvs_note: str = "",
) -> list[str]:
    """The lines for one metric: WVS's figure beside each anchor's, with the ratio WVS ÷ anchor.

    ``wvs`` and each anchor's figure are ``(median, printable)``; ``anchors`` pairs a
    ``"library, settings"`` description with its figure. Without anchors, one line with WVS alone.
    """
    wvs_text = f"WVS {wvs[1]}{wvs_note}" if wvs else "WVS: not measured yet"
    if not anchors:
        return [f"{metric.label()} | {wvs_text} | no anchor | -"]
    lines = []
    for described, figure in anchors:
        anchor_text = f"{figure[1]} ({described})" if figure else f"not measured ({described})"
        ratio = f"WVS/anchor = {wvs[0] / figure[0]:.3g}" if wvs and figure and figure[0] else "-"
        lines.append(f"{metric.label()} | {wvs_text} | {anchor_text} | {ratio}")
    return lines
