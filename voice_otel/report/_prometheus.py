"""Read latency from Prometheus (``/api/v1/query_range`` and ``/api/v1/query``).

Prometheus keeps histograms, not turns, so each waterfall bar is one time step: the mean of
each latency component over the turns that ended in it (the components of a turn add up to its
latency, so their means add up to the mean latency). Percentiles come from the histograms:
over time as lines, and over the whole range as the summary bars.
"""

from __future__ import annotations

import itertools
import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from voice_otel._contract import LATENCY_COMPONENTS, Metrics
from voice_otel.report._model import (
    PERCENTILES,
    PercentileLine,
    ReportData,
    TurnTiming,
)
from voice_otel.report._otlp import ReportSourceError

logger = logging.getLogger(__name__)

LATENCY = Metrics.TURN_LATENCY.prometheus_name
COMPONENT = Metrics.TURN_LATENCY_COMPONENT.prometheus_name
COMPONENT_LABEL = "voice_latency_component"


class _Prometheus:
    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def _get(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise ReportSourceError(f"Prometheus is unreachable: {exc}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            status = response.status_code
            raise ReportSourceError(f"Prometheus answered {status}, not JSON") from exc
        if body.get("status") != "success":
            raise ReportSourceError(f"Prometheus query failed: {body.get('error', body)}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return self._get(
            "/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step}
        )

    def instant(self, expr: str, at: float) -> list[dict[str, Any]]:
        return self._get("/api/v1/query", {"query": expr, "time": at})


def _selector(series: str, job: str | None) -> str:
    return f'{series}{{job=~"{job}"}}' if job else series


def _mean(base: str, window: str, job: str | None, by: str = "") -> str:
    grouping = f"sum by ({by}) " if by else "sum "
    total = f"{grouping}(increase({_selector(base + '_sum', job)}[{window}]))"
    count = f"{grouping}(increase({_selector(base + '_count', job)}[{window}]))"
    return f"{total} / ({count} > 0)"


def _quantile(q: float, base: str, window: str, job: str | None, by: str = "") -> str:
    keep = f"le, {by}" if by else "le"
    grouping = f"sum by ({by}) " if by else "sum "
    buckets = f"sum by ({keep}) (increase({_selector(base + '_bucket', job)}[{window}]))"
    count = f"{grouping}(increase({_selector(base + '_count', job)}[{window}]))"
    return f"histogram_quantile({q}, {buckets}) and ({count} > 0)"


def _points(series: dict[str, Any]) -> dict[float, float]:
    return {float(t): float(v) for t, v in series.get("values", [])}


def _window(seconds: float) -> str:
    return f"{max(int(seconds), 1)}s"


def load_prometheus(
    url: str,
    *,
    start: float | None = None,
    end: float | None = None,
    step: float = 60.0,
    job: str | None = None,
    objective: float | None = None,
    title: str = "Voice latency report",
    client: httpx.Client | None = None,
    timeout: float = 30.0,
) -> ReportData:
    """Build the report from Prometheus over ``[start, end]`` (default: the last hour).

    Args:
        url: Prometheus base URL, e.g. ``http://localhost:9090``.
        step: seconds per waterfall bar and per point of the percentile lines.
        job: regex on the ``job`` label (the ``service.name``); all jobs when None.
        objective: latency objective in seconds to draw, if any.

    Raises:
        ReportSourceError: Prometheus is unreachable, a query fails, or no turn is in range.
    """
    end = time.time() if end is None else end
    start = end - 3600 if start is None else start
    if start >= end or step <= 0:
        raise ReportSourceError("need start < end and a positive step")
    owned = client is None
    http = client or httpx.Client(base_url=url, timeout=timeout)
    try:
        prom = _Prometheus(http)
        window = _window(step)
        totals = prom.range(_mean(LATENCY, window, job), start, end, step)
        parts = prom.range(_mean(COMPONENT, window, job, COMPONENT_LABEL), start, end, step)
        lines = [
            PercentileLine(
                f"p{round(q * 100)}",
                tuple(
                    sorted(
                        (t, v)
                        for s in prom.range(_quantile(q, LATENCY, window, job), start, end, step)
                        for t, v in _points(s).items()
                    )
                ),
            )
            for q in PERCENTILES
        ]
        whole = _window(end - start)
        percentiles = _overall_percentiles(prom, whole, job, end)
        share = _objective_share(prom, whole, job, end, objective)
        turns = _bars(totals, parts)
        # No increase at all: were there samples that never increased (a short run)?
        counted = (
            prom.instant(f"sum(max_over_time({_selector(LATENCY + '_count', job)}[{whole}]))", end)
            if not turns
            else []
        )
    finally:
        if owned:
            http.close()

    if not turns:
        where = f"between {_stamp(start)} and {_stamp(end)} UTC" + (
            f" for job=~{job!r}" if job else ""
        )
        if counted and float(counted[0]["value"][1]) > 0:
            raise ReportSourceError(
                f"{LATENCY} has samples {where} but never increases between two of them: a run "
                "shorter than the scrape interval appears at its final count, and Prometheus "
                "cannot tell how much of it is new. For a short run, use --from-json (the "
                "embedded default's file); otherwise widen --since or --step."
            )
        raise ReportSourceError(f"no {LATENCY} data in Prometheus {where}")
    logger.info("report: %s steps from %s", len(turns), url)
    return ReportData(
        title=title,
        source=(
            f"Prometheus {url}, {_stamp(start)} to {_stamp(end)} UTC, one bar per "
            f"{int(step)} s" + (f", job=~{job!r}" if job else "")
        ),
        turns=turns,
        per_turn=False,
        percentiles=percentiles,
        lines=[line for line in lines if line.points],
        objective=objective,
        objective_share=share,
    )


def _overall_percentiles(
    prom: _Prometheus, window: str, job: str | None, at: float
) -> dict[str, dict[float, float]]:
    out: dict[str, dict[float, float]] = {}
    for q in PERCENTILES:
        for series in prom.instant(_quantile(q, LATENCY, window, job), at):
            out.setdefault("voice-to-voice", {})[q] = float(series["value"][1])
        by_component = _quantile(q, COMPONENT, window, job, COMPONENT_LABEL)
        for series in prom.instant(by_component, at):
            name = series["metric"].get(COMPONENT_LABEL, "")
            out.setdefault(name, {})[q] = float(series["value"][1])
    ordered = ["voice-to-voice", *LATENCY_COMPONENTS]
    return {k: out[k] for k in ordered if k in out and len(out[k]) == len(PERCENTILES)}


def _le(bound: float) -> str:
    """The bucket label at ``bound``, whichever exporter wrote it (``1`` or ``1.0``)."""
    text = f"{bound:g}"
    return f'le=~"{text}|{text}.0"' if float(bound).is_integer() else f'le="{text}"'


def _objective_share(
    prom: _Prometheus, window: str, job: str | None, at: float, objective: float | None
) -> float | None:
    """Share of turns within the objective over the range, from the histogram bucket."""
    if objective is None:
        return None
    job_matcher = f'job=~"{job}",' if job else ""
    good = f"sum(increase({LATENCY}_bucket{{{job_matcher}{_le(objective)}}}[{window}]))"
    total = f"sum(increase({_selector(LATENCY + '_count', job)}[{window}]))"
    result = prom.instant(f"{good} / ({total} > 0)", at)
    return float(result[0]["value"][1]) if result else None


def _stamp(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M")


def _bars(totals: list[dict[str, Any]], parts: list[dict[str, Any]]) -> list[TurnTiming]:
    total_points: dict[float, float] = {}
    for series in totals:
        total_points.update(_points(series))
    by_time: dict[float, dict[str, float]] = {}
    for series in parts:
        component = series["metric"].get(COMPONENT_LABEL, "")
        for t, v in _points(series).items():
            by_time.setdefault(t, {})[component] = v
    times = sorted(total_points)
    spacing = min((b - a for a, b in itertools.pairwise(times)), default=60.0)
    clock = "%H:%M" if spacing >= 60 else "%H:%M:%S"
    bars = []
    for t in times:
        components = by_time.get(t, {})
        # The parts of every turn add up to its latency, so their means add up to the mean
        # latency; drawing their sum keeps the bar and its parts consistent where the separate
        # increase() estimates of the two histograms differ (a series starting mid-window).
        latency = sum(components.values()) if components else total_points[t]
        bars.append(
            TurnTiming(
                label=datetime.fromtimestamp(t, UTC).strftime(clock),
                latency=latency,
                components=components,
                start_ns=int(t * 1e9),
            )
        )
    return bars
