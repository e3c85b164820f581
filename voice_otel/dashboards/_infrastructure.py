"""Infrastructure: host and process metrics of the voice agent (system-metrics
instrumentation) and the health of the collector pipeline (the collector's own ``otelcol_*``
telemetry)."""

from __future__ import annotations

from typing import Any

from voice_otel.dashboards import _variables as var
from voice_otel.dashboards._external import External
from voice_otel.dashboards._panels import Board, Query, timeseries_panel
from voice_otel.dashboards._promql import SERVICE, gauge, or_zero, rate_sum, ratio

UID = "voice-infrastructure"
TITLE = "Voice Infrastructure"
DESCRIPTION = (
    "Host and process resources of the voice agent, and the OpenTelemetry Collector pipeline: "
    "data accepted, refused, exported and failed, queue usage and the collector's own footprint."
)

F = (SERVICE,)
COLLECTOR = 'job=~"$collector"'


def build() -> dict[str, Any]:
    """The dashboard JSON model."""
    board = (
        Board(UID, TITLE, DESCRIPTION, ("infrastructure",))
        .variable(var.datasource())
        .variable(var.service(External.PROCESS_MEMORY_USAGE.name))
        .variable(var.environment())
        .variable(
            var.label_values("collector", "job", "Collector", External.COL_ACCEPTED_POINTS.name)
        )
    )

    board.row("Host").add(
        timeseries_panel(
            "Host CPU busy by state",
            "Average CPU utilisation across the host's cores by state, idle excluded; the "
            "stack is the busy share (system.cpu.utilization).",
            "percentunit",
            [
                Query(
                    gauge(
                        "avg",
                        External.SYSTEM_CPU_UTILIZATION.name,
                        (*F, 'state!="idle"'),
                        ("job", "instance", "state"),
                    ),
                    "{{job}} {{state}}",
                )
            ],
            width=8,
            stacked=True,
            maximum=1,
        ),
        timeseries_panel(
            "Host memory utilisation",
            "Share of host memory in use (system.memory.utilization, state used).",
            "percentunit",
            [
                Query(
                    gauge(
                        "avg",
                        External.SYSTEM_MEMORY_UTILIZATION.name,
                        (*F, 'state="used"'),
                        ("job", "instance"),
                    ),
                    "{{job}} {{instance}}",
                )
            ],
            width=8,
            maximum=1,
        ),
        timeseries_panel(
            "Host network traffic",
            "Bytes per second sent and received on the host's interfaces, loopback excluded "
            "(system.network.io).",
            "Bps",
            [
                Query(
                    rate_sum(
                        External.SYSTEM_NETWORK_IO.name,
                        (*F, 'device!="lo"'),
                        ("job", "direction"),
                    ),
                    "{{job}} {{direction}}",
                )
            ],
            width=8,
        ),
    )

    board.row("Voice agent process").add(
        timeseries_panel(
            "Process CPU",
            "CPU utilisation of the voice agent process (process.cpu.utilization).",
            "percentunit",
            [
                Query(
                    gauge("sum", External.PROCESS_CPU_UTILIZATION.name, F, ("job", "instance")),
                    "{{job}} {{instance}}",
                )
            ],
            width=8,
        ),
        timeseries_panel(
            "Process memory",
            "Resident memory of the voice agent process (process.memory.usage).",
            "bytes",
            [
                Query(
                    gauge("sum", External.PROCESS_MEMORY_USAGE.name, F, ("job", "instance")),
                    "{{job}} {{instance}}",
                )
            ],
            width=8,
        ),
        timeseries_panel(
            "Process threads",
            "Threads of the voice agent process (process.thread.count).",
            "none",
            [
                Query(
                    gauge("sum", External.PROCESS_THREAD_COUNT.name, F, ("job", "instance")),
                    "{{job}} {{instance}}",
                )
            ],
            width=8,
        ),
    )

    c = (COLLECTOR,)
    accepted_spans = rate_sum(External.COL_ACCEPTED_SPANS.name, c, ("receiver",), scoped=False)
    refused_spans = rate_sum(External.COL_REFUSED_SPANS.name, c, ("receiver",), scoped=False)
    accepted_points = rate_sum(External.COL_ACCEPTED_POINTS.name, c, ("receiver",), scoped=False)
    refused_points = rate_sum(External.COL_REFUSED_POINTS.name, c, ("receiver",), scoped=False)
    sent_spans = rate_sum(External.COL_SENT_SPANS.name, c, ("exporter",), scoped=False)
    failed_spans = rate_sum(External.COL_FAILED_SPANS.name, c, ("exporter",), scoped=False)
    sent_points = rate_sum(External.COL_SENT_POINTS.name, c, ("exporter",), scoped=False)
    failed_points = rate_sum(External.COL_FAILED_POINTS.name, c, ("exporter",), scoped=False)
    board.row("Collector pipeline").add(
        timeseries_panel(
            "Spans received",
            "Spans per second the collector's receivers accepted and refused (refused: the "
            "memory limiter pushed back; the SDK retries).",
            "suffix: spans/s",
            [
                Query(accepted_spans, "accepted {{receiver}}"),
                Query(or_zero(refused_spans, accepted_spans), "refused {{receiver}}"),
            ],
            width=8,
        ),
        timeseries_panel(
            "Metric points received",
            "Metric data points per second the collector's receivers accepted and refused.",
            "suffix: points/s",
            [
                Query(accepted_points, "accepted {{receiver}}"),
                Query(or_zero(refused_points, accepted_points), "refused {{receiver}}"),
            ],
            width=8,
        ),
        timeseries_panel(
            "Exported and failed",
            "Spans and metric points per second each exporter sent, and those it failed to "
            "send after retries (a non-zero failed line means data is being dropped).",
            "suffix: items/s",
            [
                Query(sent_spans, "spans sent {{exporter}}"),
                Query(or_zero(failed_spans, sent_spans), "spans failed {{exporter}}"),
                Query(sent_points, "points sent {{exporter}}"),
                Query(or_zero(failed_points, sent_points), "points failed {{exporter}}"),
            ],
            width=8,
        ),
        timeseries_panel(
            "Exporter queue usage",
            "Fill level of each exporter's sending queue; near 1 the collector starts dropping.",
            "percentunit",
            [
                Query(
                    ratio(
                        gauge("max", External.COL_QUEUE_SIZE.name, c, ("exporter",), False),
                        gauge("max", External.COL_QUEUE_CAPACITY.name, c, ("exporter",), False),
                    ),
                    "{{exporter}}",
                )
            ],
            width=8,
            maximum=1,
        ),
        timeseries_panel(
            "Collector memory",
            "Resident memory of the collector process.",
            "bytes",
            [
                Query(
                    gauge("sum", External.COL_MEMORY_RSS.name, c, ("job", "instance"), False),
                    "{{job}}",
                )
            ],
            width=8,
        ),
        timeseries_panel(
            "Collector CPU",
            "CPU seconds per second the collector process used (1 = one full core).",
            "percentunit",
            [
                Query(
                    rate_sum(External.COL_CPU.name, c, ("job", "instance"), scoped=False), "{{job}}"
                )
            ],
            width=8,
        ),
        timeseries_panel(
            "Scrape targets up",
            "1 when Prometheus scraped the target successfully on its last attempt (up).",
            "none",
            [
                Query(
                    gauge("max", External.UP.name, (), ("job", "instance"), False),
                    "{{job}} {{instance}}",
                )
            ],
            width=8,
            maximum=1,
        ),
    )
    return board.to_dict()
