"""``wvsctl obs``: the service's health read from a Prometheus-compatible query API (vmsingle, Prometheus).
That API is not WVS's, so it is read with plain httpx rather than the WVS SDK.

Everything is computed from WVS's own metrics (SPEC §10) over a window: task outcomes and success rate,
task latency p50/p95, queue depth, quiesce timeout rate. Each figure is one query; see ``QUERIES``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import click
import httpx

from wvs_core.cli.output import F, cell, emit_json, emit_table, output_options, show, wants_json

WINDOW = re.compile(r"^[1-9][0-9]*[smhd]$")
OUTCOMES = ("SUCCEEDED", "FAILED", "DEAD", "CANCELED")  # wvs_task_total's statuses: how each run ended

# One query per figure; {window} is the look-back, e.g. 1h.
QUERIES = {
    "runs": "sum by (op, status) (increase(wvs_task_total[{window}]))",
    "p50": "histogram_quantile(0.5, sum by (op, le) (increase(wvs_task_duration_seconds_bucket[{window}])))",
    "p95": "histogram_quantile(0.95, sum by (op, le) (increase(wvs_task_duration_seconds_bucket[{window}])))",
    "queue_depth": "max(wvs_task_queue_depth)",
    "queue_peak": "max(max_over_time(wvs_task_queue_depth[{window}]))",
    "freezes": "sum(increase(wvs_quiesce_wait_seconds_count[{window}]))",
    "quiesce_timeouts": "sum(increase(wvs_quiesce_timeout_total[{window}]))",
    "quiesce_p95": "histogram_quantile(0.95, sum by (le) (increase(wvs_quiesce_wait_seconds_bucket[{window}])))",
}

Sample = tuple[dict[str, str], float]


class MetricsQuery:
    """Instant queries against ``<url>/api/v1/query``."""

    def __init__(self, url: str, window: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.window = window
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def vector(self, name: str) -> list[Sample]:
        """The samples of query ``name`` of QUERIES; NaN results (no data) are left out."""
        query = QUERIES[name].format(window=self.window)
        try:
            response = self._http.get("/api/v1/query", params={"query": query})
        except httpx.HTTPError as error:
            raise click.ClickException(
                f"WVS_UNREACHABLE: cannot reach the metrics store at {self.url}: {error}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if response.is_error or body.get("status") != "success":
            detail = body.get("error") or response.text[:200]
            raise click.ClickException(f"WVS_METRICS_QUERY: {self.url} refused {query!r}: {detail}")
        samples = [(item["metric"], float(item["value"][1])) for item in body["data"]["result"]]
        return [(labels, value) for labels, value in samples if not math.isnan(value)]

    def scalar(self, name: str) -> float | None:
        """The single value of query ``name``, or None without data."""
        samples = self.vector(name)
        return samples[0][1] if samples else None


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def task_report(query: MetricsQuery) -> list[dict[str, Any]]:
    """Per op: runs by outcome, success rate (succeeded / (succeeded + dead)), latency p50 and p95."""
    runs: dict[str, dict[str, int]] = {}
    for labels, value in query.vector("runs"):
        if labels.get("status") in OUTCOMES:
            runs.setdefault(labels["op"], {})[labels["status"]] = round(value)
    quantiles = {
        name: {labels["op"]: value for labels, value in query.vector(name) if "op" in labels} for name in ("p50", "p95")
    }
    rows = []
    for op in sorted(runs.keys() | quantiles["p50"].keys()):
        counts = {status.lower(): runs.get(op, {}).get(status, 0) for status in OUTCOMES}
        rows.append(
            {
                "op": op,
                **counts,
                "success_rate": _ratio(counts["succeeded"], counts["succeeded"] + counts["dead"]),
                "p50_seconds": _seconds(quantiles["p50"].get(op)),
                "p95_seconds": _seconds(quantiles["p95"].get(op)),
            }
        )
    return rows


def queue_report(query: MetricsQuery) -> dict[str, Any]:
    """Tasks waiting now, and the most that waited at once in the window."""
    depth, peak = query.scalar("queue_depth"), query.scalar("queue_peak")
    return {"depth": None if depth is None else round(depth), "peak": None if peak is None else round(peak)}


def quiesce_report(query: MetricsQuery) -> dict[str, Any]:
    """Freezes confirmed and timed out in the window, the timeout rate, and the p95 wait for FROZEN."""
    freezes = round(query.scalar("freezes") or 0)
    timeouts = round(query.scalar("quiesce_timeouts") or 0)
    return {
        "freezes": freezes,
        "timeouts": timeouts,
        "timeout_rate": _ratio(timeouts, freezes + timeouts),
        "wait_p95_seconds": _seconds(query.scalar("quiesce_p95")),
    }


TASK_COLUMNS = ("op", "succeeded", "failed", "dead", "canceled", "success_rate", "p50_seconds", "p95_seconds")


@click.group()
def obs() -> None:
    """Service health from the metrics store (success rate, latency, queue, quiesce)."""


def _check_window(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not WINDOW.match(value):
        raise click.BadParameter(f"a number and a unit s, m, h or d (e.g. 15m), got {value!r}")
    return value


def query_options(command: F) -> F:
    """``--metrics-url``, ``--window`` and the output options of every ``obs`` command."""
    command = output_options(command)
    command = click.option(
        "--window", default="1h", show_default=True, callback=_check_window, help="Look-back window: 15m, 1h, 7d…"
    )(command)
    return click.option(
        "--metrics-url",
        envvar="WVS_METRICS_URL",
        default="http://localhost:8428",
        show_default=True,
        help="Prometheus-compatible query API, e.g. vmsingle (env: WVS_METRICS_URL).",
    )(command)


@obs.command()
@query_options
def summary(metrics_url: str, window: str, as_json: bool, output: str) -> None:
    """Task outcomes, latency, queue and quiesce at a glance."""
    query = MetricsQuery(metrics_url, window)
    tasks, queued, quiesced = task_report(query), queue_report(query), quiesce_report(query)
    if wants_json(as_json, output):
        emit_json({"window": window, "tasks": tasks, "queue": queued, "quiesce": quiesced})
        return
    click.echo(f"last {window}, from {query.url}")
    emit_table(tasks, TASK_COLUMNS)
    click.echo(f"queue: {cell(queued['depth'])} waiting now, at most {cell(queued['peak'])}")
    click.echo(
        f"quiesce: {quiesced['timeouts']} of {quiesced['freezes'] + quiesced['timeouts']} freeze requests timed out "
        f"(rate {cell(quiesced['timeout_rate'])}), wait p95 {cell(quiesced['wait_p95_seconds'])}s"
    )


@obs.command()
@query_options
def latency(metrics_url: str, window: str, as_json: bool, output: str) -> None:
    """Task latency p50/p95 and success rate per op."""
    tasks = task_report(MetricsQuery(metrics_url, window))
    if wants_json(as_json, output):
        emit_json({"window": window, "tasks": tasks})
    else:
        emit_table(tasks, TASK_COLUMNS)


@obs.command()
@query_options
def queue(metrics_url: str, window: str, as_json: bool, output: str) -> None:
    """Tasks waiting to run, now and at the peak of the window."""
    show(
        {"window": window, **queue_report(MetricsQuery(metrics_url, window))},
        ("window", "depth", "peak"),
        as_json,
        output,
    )


@obs.command()
@query_options
def quiesce(metrics_url: str, window: str, as_json: bool, output: str) -> None:
    """Freezes, quiesce timeouts and their rate, p95 wait for the agent's FROZEN."""
    report = {"window": window, **quiesce_report(MetricsQuery(metrics_url, window))}
    show(report, ("window", "freezes", "timeouts", "timeout_rate", "wait_p95_seconds"), as_json, output)
