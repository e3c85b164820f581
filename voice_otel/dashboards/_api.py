"""API Performance: the voice agent's HTTP server by route (FastAPI instrumentation, stable
HTTP semantic conventions) and its server spans from the collector's span metrics."""

from __future__ import annotations

from typing import Any

from voice_otel.dashboards import _variables as var
from voice_otel.dashboards._external import External
from voice_otel.dashboards._panels import Board, Query, stat_panel, timeseries_panel
from voice_otel.dashboards._promql import (
    SERVICE,
    gauge,
    or_zero,
    quantile,
    rate_sum,
    ratio,
)

UID = "voice-api"
TITLE = "Voice API Performance"
DESCRIPTION = (
    "HTTP server metrics of the voice agent by route template: request rate, latency "
    "percentiles, server errors, in-flight requests and response sizes."
)

ROUTE = 'http_route=~"$route"'
F = (SERVICE, ROUTE)
DURATION = External.HTTP_DURATION.name
SERVER_ERROR = 'http_response_status_code=~"5.."'
SERVER_SPANS = ('service_name=~"$job"', 'span_kind="SPAN_KIND_SERVER"')


def build() -> dict[str, Any]:
    """The dashboard JSON model."""
    count = f"{DURATION}_count"
    requests = rate_sum(count, F)
    by_route = rate_sum(count, F, ("http_route",))
    errors_by_route = rate_sum(count, (*F, SERVER_ERROR), ("http_route",))
    board = (
        Board(UID, TITLE, DESCRIPTION, ("api",))
        .variable(var.datasource())
        .variable(var.service(count))
        .variable(var.environment())
        .variable(var.label_values("route", "http_route", "Route", count, ('job=~"$job"',)))
    )

    board.row("Traffic").add(
        stat_panel(
            "Requests per second",
            "HTTP requests served per second, all routes selected (http.server.request.duration "
            "count).",
            "reqps",
            [Query(requests)],
            width=6,
        ),
        stat_panel(
            "Server error ratio",
            "Share of requests answered with a 5xx status over the rate window.",
            "percentunit",
            [Query(or_zero(ratio(rate_sum(count, (*F, SERVER_ERROR)), requests), requests))],
            width=6,
            thresholds=((None, "green"), (0.01, "yellow"), (0.05, "red")),
        ),
        stat_panel(
            "p95 latency",
            "95th percentile HTTP server request duration, all routes selected.",
            "s",
            [Query(quantile(0.95, DURATION, F))],
            width=6,
            decimals=3,
        ),
        stat_panel(
            "In-flight requests",
            "Requests being served right now (http.server.active_requests).",
            "none",
            [Query(gauge("sum", External.HTTP_ACTIVE.name, (SERVICE,)))],
            width=6,
        ),
    )

    board.row("By route").add(
        timeseries_panel(
            "Requests per second by route and status",
            "Request rate by route template and response status code.",
            "reqps",
            [
                Query(
                    rate_sum(count, F, ("http_route", "http_response_status_code")),
                    "{{http_route}} {{http_response_status_code}}",
                )
            ],
        ),
        timeseries_panel(
            "Latency p95 by route",
            "95th percentile request duration by route template. Exemplar dots open the "
            "request's trace in Jaeger.",
            "s",
            [Query(quantile(0.95, DURATION, F, ("http_route",)), "{{http_route}}", exemplar=True)],
        ),
        timeseries_panel(
            "Latency p50 and p99",
            "Median and 99th percentile request duration across the selected routes.",
            "s",
            [
                Query(quantile(0.5, DURATION, F), "p50", exemplar=True),
                Query(quantile(0.99, DURATION, F), "p99", exemplar=True),
            ],
        ),
        timeseries_panel(
            "Server error ratio by route",
            "Share of 5xx responses by route template; 0 when every request succeeded.",
            "percentunit",
            [Query(or_zero(ratio(errors_by_route, by_route), by_route), "{{http_route}}")],
            maximum=1,
        ),
        timeseries_panel(
            "Response body size p95 by route",
            "95th percentile response body size by route (http.server.response.body.size).",
            "bytes",
            [
                Query(
                    quantile(0.95, External.HTTP_RESPONSE_SIZE.name, F, ("http_route",)),
                    "{{http_route}}",
                )
            ],
        ),
        timeseries_panel(
            "Server spans p95 (span metrics)",
            "95th percentile duration of server spans by span name, from the collector's "
            "span_metrics connector (traces, not the SDK's HTTP metrics).",
            "s",
            [
                Query(
                    quantile(
                        0.95, External.SPAN_DURATION.name, SERVER_SPANS, ("span_name",), False
                    ),
                    "{{span_name}}",
                    exemplar=True,
                )
            ],
        ),
    )
    return board.to_dict()
