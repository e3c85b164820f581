"""PromQL building blocks shared by the dashboards.

Metric names come from the telemetry contract (:mod:`voice_otel._contract`) or from
:mod:`voice_otel.dashboards._external`, never typed by hand, so a renamed metric breaks the
generator instead of leaving a panel showing "No data".

Label filters use Grafana template variables (``$job``, ``$provider``, ...); every variable is
a regex with an "All" value of ``.*``, which also matches series that lack the label.

The deployment environment is a resource attribute: the collector's ``prometheus`` exporter keeps
resource attributes off the metric labels (no duplicated labels) and publishes them on
``target_info``, so the environment filter joins on ``job`` and ``instance`` with it. The join also
works when resource attributes are copied onto every series.
"""

from __future__ import annotations

from collections.abc import Sequence

from voice_otel._contract import Metric

RATE = "$__rate_interval"
RANGE = "$__range"

# Label names as they reach Prometheus (OTel attribute keys with dots turned into underscores).
ENV_LABEL = "deployment_environment_name"

SERVICE = 'job=~"$job"'
ENVIRONMENT = f'target_info{{{ENV_LABEL}=~"$environment"}}'
PROVIDER = 'gen_ai_provider_name=~"$provider"'
MODEL = 'gen_ai_request_model=~"$model"'


def label(key: str) -> str:
    """The Prometheus label name of an OpenTelemetry attribute key."""
    return key.replace(".", "_")


def name(metric: Metric, suffix: str = "") -> str:
    """The Prometheus series name of a contract metric (``suffix``: bucket, count or sum)."""
    base = metric.prometheus_name
    if suffix:
        if metric.instrument != "histogram":
            raise ValueError(f"{metric.name} is not a histogram; it has no _{suffix} series")
        return f"{base}_{suffix}"
    if metric.instrument == "histogram":
        raise ValueError(f"{metric.name} is a histogram: name its bucket, count or sum series")
    return base


def sel(series: str, matchers: Sequence[str]) -> str:
    """A series selector: ``name{m1,m2}``."""
    return f"{series}{{{','.join(matchers)}}}" if matchers else series


def _by(labels: Sequence[str]) -> str:
    return f"sum by ({', '.join(labels)}) " if labels else "sum "


def in_environment(vector: str, scoped: bool = True) -> str:
    """Keep the series of ``vector`` whose target is in the selected environment."""
    return f"{vector} and on (job, instance) {ENVIRONMENT}" if scoped else vector


def rate_sum(
    series: str,
    matchers: Sequence[str],
    by: Sequence[str] = (),
    window: str = RATE,
    scoped: bool = True,
) -> str:
    """``sum by (...) (rate(series{...}[window]))``, restricted to the selected environment."""
    return f"{_by(by)}({in_environment(f'rate({sel(series, matchers)}[{window}])', scoped)})"


def increase_sum(series: str, matchers: Sequence[str], by: Sequence[str] = ()) -> str:
    """``sum by (...) (increase(series{...}[$__range]))``: totals over the dashboard's range."""
    return f"{_by(by)}({in_environment(f'increase({sel(series, matchers)}[{RANGE}])')})"


def gauge(
    how: str, series: str, matchers: Sequence[str], by: Sequence[str] = (), scoped: bool = True
) -> str:
    """``how by (...) (series{...})`` for a gauge (``how``: sum, max, min, avg, count)."""
    grouping = f"{how} by ({', '.join(by)}) " if by else f"{how} "
    return f"{grouping}({in_environment(sel(series, matchers), scoped)})"


def histogram(metric: Metric | str) -> str:
    """The base name of a histogram: a contract metric, or a Prometheus name as it is."""
    if isinstance(metric, str):
        return metric
    if metric.instrument != "histogram":
        raise ValueError(f"{metric.name} is not a histogram")
    return metric.prometheus_name


def quantile(
    q: float,
    metric: Metric | str,
    matchers: Sequence[str],
    by: Sequence[str] = (),
    scoped: bool = True,
) -> str:
    """A ``histogram_quantile`` that keeps ``le`` and drops NaN at zero traffic.

    With no observation in the window every bucket rate is 0 and ``histogram_quantile`` returns
    NaN, which Grafana draws as a spike or an error; the ``and`` keeps only the series that had
    traffic, so a quiet period shows a gap instead.
    """
    base = histogram(metric)
    buckets = rate_sum(f"{base}_bucket", matchers, ("le", *by), scoped=scoped)
    traffic = rate_sum(f"{base}_count", matchers, by, scoped=scoped)
    return f"histogram_quantile({q}, {buckets}) and ({traffic} > 0)"


def mean(metric: Metric | str, matchers: Sequence[str], by: Sequence[str] = ()) -> str:
    """Mean of a histogram over the rate window; no series (instead of NaN) without traffic."""
    base = histogram(metric)
    total = rate_sum(f"{base}_sum", matchers, by)
    count = rate_sum(f"{base}_count", matchers, by)
    return f"{total} / ({count} > 0)"


def or_zero(expr: str, baseline: str) -> str:
    """``expr``, or 0 wherever ``baseline`` has series but ``expr`` has none.

    Counters such as errors or interruptions only exist once something was counted; without this
    a healthy service shows "No data" where the truth is 0.
    """
    return f"({expr}) or ({baseline} * 0)"


def ratio(part: str, whole: str) -> str:
    """``part / whole`` with no series where ``whole`` is 0."""
    return f"({part}) / (({whole}) > 0)"
