"""Metrics the dashboards read that voice_otel's contract does not define.

They come from documented sources outside the contract: the system-metrics instrumentation,
the FastAPI (ASGI) HTTP server instrumentation, the collector's own telemetry, the collector's
span_metrics connector, and Prometheus itself. Names are the ones Prometheus stores after the
collector's ``prometheus`` exporter (unit suffixes added, ``_total`` on counters, ``_ratio`` on
unit-1 gauges), checked against a live stack by ``tests/integration/test_dashboards_live.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from voice_otel._contract import Metrics

Kind = Literal["histogram", "counter", "gauge"]
Source = Literal["system-metrics", "http-server", "collector", "span-metrics", "prometheus"]


@dataclass(frozen=True)
class ExternalMetric:
    """A Prometheus metric from outside the contract, with where it comes from."""

    name: str
    kind: Kind
    source: Source
    otel_name: str = ""

    def series(self) -> tuple[str, ...]:
        """The series names Prometheus stores for this metric."""
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_count", f"{self.name}_sum")
        return (self.name,)


class External:
    """The external metrics the dashboards use."""

    # opentelemetry-instrumentation-system-metrics (host and process), through the collector.
    SYSTEM_CPU_UTILIZATION = ExternalMetric(
        "system_cpu_utilization_ratio", "gauge", "system-metrics", "system.cpu.utilization"
    )
    SYSTEM_MEMORY_USAGE = ExternalMetric(
        "system_memory_usage_bytes", "gauge", "system-metrics", "system.memory.usage"
    )
    SYSTEM_MEMORY_UTILIZATION = ExternalMetric(
        "system_memory_utilization_ratio", "gauge", "system-metrics", "system.memory.utilization"
    )
    SYSTEM_NETWORK_IO = ExternalMetric(
        "system_network_io_bytes_total", "counter", "system-metrics", "system.network.io"
    )
    PROCESS_CPU_UTILIZATION = ExternalMetric(
        "process_cpu_utilization_ratio", "gauge", "system-metrics", "process.cpu.utilization"
    )
    PROCESS_MEMORY_USAGE = ExternalMetric(
        "process_memory_usage_bytes", "gauge", "system-metrics", "process.memory.usage"
    )
    PROCESS_THREAD_COUNT = ExternalMetric(
        "process_thread_count", "gauge", "system-metrics", "process.thread.count"
    )

    # opentelemetry-instrumentation-fastapi with the stable HTTP semantic conventions.
    HTTP_DURATION = ExternalMetric(
        "http_server_request_duration_seconds",
        "histogram",
        "http-server",
        "http.server.request.duration",
    )
    HTTP_ACTIVE = ExternalMetric(
        "http_server_active_requests", "gauge", "http-server", "http.server.active_requests"
    )
    HTTP_RESPONSE_SIZE = ExternalMetric(
        "http_server_response_body_size_bytes",
        "histogram",
        "http-server",
        "http.server.response.body.size",
    )

    # The collector's own telemetry (its internal metrics endpoint, scraped by Prometheus). At
    # the pinned v0.161 the endpoint writes counters without _total and without unit suffixes.
    COL_ACCEPTED_SPANS = ExternalMetric("otelcol_receiver_accepted_spans", "counter", "collector")
    COL_REFUSED_SPANS = ExternalMetric("otelcol_receiver_refused_spans", "counter", "collector")
    COL_ACCEPTED_POINTS = ExternalMetric(
        "otelcol_receiver_accepted_metric_points", "counter", "collector"
    )
    COL_REFUSED_POINTS = ExternalMetric(
        "otelcol_receiver_refused_metric_points", "counter", "collector"
    )
    COL_SENT_SPANS = ExternalMetric("otelcol_exporter_sent_spans", "counter", "collector")
    COL_FAILED_SPANS = ExternalMetric("otelcol_exporter_send_failed_spans", "counter", "collector")
    COL_SENT_POINTS = ExternalMetric("otelcol_exporter_sent_metric_points", "counter", "collector")
    COL_FAILED_POINTS = ExternalMetric(
        "otelcol_exporter_send_failed_metric_points", "counter", "collector"
    )
    COL_QUEUE_SIZE = ExternalMetric("otelcol_exporter_queue_size", "gauge", "collector")
    COL_QUEUE_CAPACITY = ExternalMetric("otelcol_exporter_queue_capacity", "gauge", "collector")
    COL_MEMORY_RSS = ExternalMetric("otelcol_process_memory_rss", "gauge", "collector")
    COL_CPU = ExternalMetric("otelcol_process_cpu_seconds", "counter", "collector")

    # The collector's span_metrics connector (RED metrics from every span).
    SPAN_CALLS = ExternalMetric("traces_span_metrics_calls_total", "counter", "span-metrics")
    SPAN_DURATION = ExternalMetric(
        "traces_span_metrics_duration_seconds", "histogram", "span-metrics"
    )

    # Prometheus itself.
    ALERTS = ExternalMetric("ALERTS", "gauge", "prometheus")
    UP = ExternalMetric("up", "gauge", "prometheus")
    TARGET_INFO = ExternalMetric("target_info", "gauge", "collector")

    @classmethod
    def all(cls) -> tuple[ExternalMetric, ...]:
        return tuple(v for v in vars(cls).values() if isinstance(v, ExternalMetric))


def contract_series() -> frozenset[str]:
    """Every series name the contract's metrics produce in Prometheus."""
    names: set[str] = set()
    for metric in Metrics.all():
        base = metric.prometheus_name
        if metric.instrument == "histogram":
            names.update((f"{base}_bucket", f"{base}_count", f"{base}_sum"))
        else:
            names.add(base)
    return frozenset(names)


KNOWN_SERIES: Final = contract_series() | frozenset(
    series for metric in External.all() for series in metric.series()
)
