"""Read latency from Prometheus (``/api/v1/query``).

Prometheus keeps histograms, not turns, so each waterfall bar is one time step: the mean of
each latency component over the turns that ended in it (the components of a turn add up to its
latency, so their means add up to the mean latency). Percentiles come from the histograms:
over time as lines, and over the whole range as the summary bars.

The raw samples of the cumulative ``_bucket``, ``_sum`` and ``_count`` series are read once, and
consecutive samples of each series are differenced here, each increase going to the step its
later sample falls in. Evaluating ``increase(x[step])`` at every step instead would lose every
increase that falls between the last sample of one window and the first of the next, all of
them when the step is no more than twice the scrape interval. A drop between two samples is a
counter reset (the process restarted): the later value is then all new.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from voice_otel._contract import LATENCY_COMPONENTS, Metrics
from voice_otel._http import not_json
from voice_otel.alerts._promql import string
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
# Samples this far before the range are read too, so an increase from the last sample before
# the range to the first in it is counted (Prometheus' default lookback).
LOOKBACK = 300.0

# (histogram, suffix, component or "", bucket bound or None) -> summed increase
_Key = tuple[str, str, str, float | None]
_Totals = dict[_Key, float]


class _Prometheus:
    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def instant(self, expr: str, at: float) -> list[dict[str, Any]]:
        try:
            response = self._client.get("/api/v1/query", params={"query": expr, "time": at})
        except httpx.HTTPError as exc:
            raise ReportSourceError(f"Prometheus is unreachable: {exc}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise ReportSourceError(not_json("Prometheus", response)) from exc
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error", body) if isinstance(body, dict) else body
            raise ReportSourceError(f"Prometheus query failed: {error}")
        try:
            result: list[dict[str, Any]] = body["data"]["result"]
        except (KeyError, TypeError) as exc:
            raise ReportSourceError("Prometheus answered without data.result") from exc
        return result


def _selector(job: str | None) -> str:
    names = f"{LATENCY}|{COMPONENT}"
    matchers = [f'__name__=~"({names})_(bucket|sum|count)"']
    if job:
        matchers.append(f"job=~{string(job)}")
    return "{" + ",".join(matchers) + "}"


def _increases(samples: Sequence[tuple[float, float]]) -> Iterator[tuple[float, float]]:
    """``(time, increase)`` from each sample to the next; a drop is a reset to zero."""
    for (_, before), (at, after) in itertools.pairwise(samples):
        yield at, after - before if after >= before else after


def _key(metric: dict[str, str]) -> _Key | None:
    histogram, _, suffix = metric.get("__name__", "").rpartition("_")
    if histogram not in (LATENCY, COMPONENT) or suffix not in ("bucket", "sum", "count"):
        return None
    if suffix == "bucket" and "le" not in metric:
        return None
    bound = float(metric["le"]) if suffix == "bucket" else None
    component = metric.get(COMPONENT_LABEL, "") if histogram == COMPONENT else ""
    return histogram, suffix, component, bound


class _Steps:
    """Counter increases summed per step and over the whole range.

    Step ``k`` covers ``(end - (k + 1) * step, end - k * step]``: bars end on ``end``.
    """

    def __init__(self, start: float, end: float, step: float) -> None:
        self.start, self.end, self.step = start, end, step
        self.by_step: dict[float, _Totals] = defaultdict(lambda: defaultdict(float))
        self.whole: _Totals = defaultdict(float)
        self.sampled = False  # a voice_turn_latency_seconds_count sample is in the range

    def add(self, series: Iterable[dict[str, Any]]) -> None:
        for one in series:
            key = _key(one.get("metric", {}))
            if key is None:
                continue
            samples = sorted((float(t), float(v)) for t, v in one.get("values", []))
            if key[:2] == (LATENCY, "count"):
                self.sampled |= any(self.start < t <= self.end for t, _ in samples)
            for at, increase in _increases(samples):
                if not self.start < at <= self.end:
                    continue
                self.whole[key] += increase
                self.by_step[self._step_end(at)][key] += increase

    def _step_end(self, at: float) -> float:
        return self.end - math.floor((self.end - at) / self.step) * self.step


def _mean(totals: _Totals, histogram: str, component: str = "") -> float | None:
    count = totals.get((histogram, "count", component, None), 0.0)
    if count <= 0:
        return None
    return totals.get((histogram, "sum", component, None), 0.0) / count


def _components(totals: _Totals) -> dict[str, float]:
    names = sorted({key[2] for key in totals if key[0] == COMPONENT})
    means = {name: _mean(totals, COMPONENT, name) for name in names}
    return {name: mean for name, mean in means.items() if mean is not None}


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The ``q`` quantile of a cumulative histogram ``{upper bound: count}``, as PromQL's.

    Linear interpolation inside the bucket holding the rank; the lowest bucket starts at 0; a
    rank in the ``+Inf`` bucket gives the highest finite bound. None without observations or
    without a ``+Inf`` bucket.
    """
    bounds = sorted(buckets)
    if len(bounds) < 2 or bounds[-1] != math.inf:
        return None
    counts = list(itertools.accumulate((buckets[b] for b in bounds), max))  # keep it monotonic
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    index = next(i for i, count in enumerate(counts) if count >= rank)
    if index == len(bounds) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    low = bounds[index - 1] if index > 0 else 0.0
    below = counts[index - 1] if index > 0 else 0.0
    inside = counts[index] - below
    return low + (bounds[index] - low) * ((rank - below) / inside if inside > 0 else 1.0)


def _quantile(totals: _Totals, q: float, histogram: str, component: str = "") -> float | None:
    buckets = {
        key[3]: value
        for key, value in totals.items()
        if key[:3] == (histogram, "bucket", component) and key[3] is not None
    }
    return histogram_quantile(q, buckets)


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
        step: seconds per waterfall bar and per point of the percentile lines; any step loses
            nothing, the samples are read raw.
        job: regex on the ``job`` label (the ``service.name``); all jobs when None.
        objective: latency objective in seconds to draw, if any.

    Raises:
        ReportSourceError: a bad range or objective, Prometheus is unreachable, a query fails,
            or no turn is in range.
    """
    end = time.time() if end is None else end
    start = end - 3600 if start is None else start
    if not (math.isfinite(start) and math.isfinite(end) and start < end):
        raise ReportSourceError(f"need finite start < end, not {start!r} and {end!r}")
    if not (math.isfinite(step) and step > 0):
        raise ReportSourceError(f"need a finite positive step, not {step!r}")
    if objective is not None and not (math.isfinite(objective) and objective > 0):
        raise ReportSourceError(f"need a finite positive objective in seconds, not {objective!r}")

    owned = client is None
    http = client or httpx.Client(base_url=url, timeout=timeout)
    try:
        window = f"{math.ceil(end - start + LOOKBACK)}s"
        series = _Prometheus(http).instant(f"{_selector(job)}[{window}]", end)
    finally:
        if owned:
            http.close()
    steps = _Steps(start, end, step)
    try:
        steps.add(series)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportSourceError(
            f"Prometheus answered samples of an unexpected shape: {exc}"
        ) from exc

    turns = _bars(steps)
    if not turns:
        where = f"between {_stamp(start)} and {_stamp(end)} UTC" + (
            f" for job=~{job!r}" if job else ""
        )
        if steps.sampled:
            raise ReportSourceError(
                f"{LATENCY} has samples {where} but its count never rises from one sample to "
                "the next: the turns were counted before the range (widen --since), or the run "
                "was shorter than the scrape interval, so its series first appeared at its "
                "final count and no earlier sample tells how much of it is new (for a short "
                "run, use --from-json with the embedded default's file)."
            )
        raise ReportSourceError(f"no {LATENCY} data in Prometheus {where}")
    logger.info("report: %s steps from %s", len(turns), url)
    return ReportData(
        title=title,
        source=(
            f"Prometheus {url}, {_stamp(start)} to {_stamp(end)} UTC, one bar per "
            f"{step:g} s" + (f", job=~{job!r}" if job else "")
        ),
        turns=turns,
        per_turn=False,
        percentiles=_overall_percentiles(steps.whole),
        lines=_lines(steps),
        objective=objective,
        objective_share=_objective_share(steps.whole, objective),
    )


def _lines(steps: _Steps) -> list[PercentileLine]:
    lines = []
    for q in PERCENTILES:
        points = []
        for at in sorted(steps.by_step):
            value = _quantile(steps.by_step[at], q, LATENCY)
            if value is not None:
                points.append((at, value))
        if points:
            lines.append(PercentileLine(f"p{round(q * 100)}", tuple(points)))
    return lines


def _overall_percentiles(totals: _Totals) -> dict[str, dict[float, float]]:
    out: dict[str, dict[float, float]] = {}
    for name, histogram, component in [
        ("voice-to-voice", LATENCY, ""),
        *((c, COMPONENT, c) for c in LATENCY_COMPONENTS),
    ]:
        values = {q: _quantile(totals, q, histogram, component) for q in PERCENTILES}
        if all(v is not None for v in values.values()):
            out[name] = {q: v for q, v in values.items() if v is not None}
    return out


def _objective_share(totals: _Totals, objective: float | None) -> float | None:
    """Share of turns within the objective over the range, from the bucket at the objective."""
    if objective is None:
        return None
    count = totals.get((LATENCY, "count", "", None), 0.0)
    good = [
        value
        for key, value in totals.items()
        if key[:3] == (LATENCY, "bucket", "")
        and key[3] is not None
        and math.isclose(key[3], objective)
    ]
    if not good or count <= 0:
        return None
    return min(sum(good) / count, 1.0)


def _stamp(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M")


def _bars(steps: _Steps) -> list[TurnTiming]:
    times = [at for at in sorted(steps.by_step) if _mean(steps.by_step[at], LATENCY) is not None]
    spacing = min((b - a for a, b in itertools.pairwise(times)), default=steps.step)
    clock = "%H:%M" if spacing >= 60 else "%H:%M:%S"
    bars = []
    for at in times:
        totals = steps.by_step[at]
        components = _components(totals)
        # The parts of every turn add up to its latency, so their means add up to the mean
        # latency; drawing their sum keeps the bar and its parts consistent where the two
        # histograms were scraped a moment apart.
        latency = sum(components.values()) if components else _mean(totals, LATENCY)
        assert latency is not None
        bars.append(
            TurnTiming(
                label=datetime.fromtimestamp(at, UTC).strftime(clock),
                latency=latency,
                components=components,
                start_ns=int(at * 1e9),
            )
        )
    return bars
