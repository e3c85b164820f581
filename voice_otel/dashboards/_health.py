"""Health and Alerts: component health states over time, health-check latency and failures,
and the alerts Prometheus is firing."""

from __future__ import annotations

from typing import Any

from voice_otel._contract import Metrics
from voice_otel.dashboards import _variables as var
from voice_otel.dashboards._external import External
from voice_otel.dashboards._panels import (
    HEALTH_MAPPINGS,
    Board,
    Query,
    stat_panel,
    state_panel,
    table_panel,
    timeseries_panel,
)
from voice_otel.dashboards._promql import SERVICE, gauge, name, sel

UID = "voice-health"
TITLE = "Voice Health and Alerts"
DESCRIPTION = (
    "Health of the components the voice agent depends on (state over time, check latency, "
    "consecutive failures, time since the last success) and the alerts firing now."
)

COMPONENT = 'voice_component=~"$component"'
F = (SERVICE, COMPONENT)
BY = ("voice_component", "voice_component_kind")
LEGEND = "{{voice_component}} ({{voice_component_kind}})"
FIRING = 'alertstate="firing"'


def _by_component(metric: str) -> str:
    return gauge("max", metric, F, BY)


def build() -> dict[str, Any]:
    """The dashboard JSON model."""
    status = name(Metrics.HEALTH_STATUS)
    alerts = External.ALERTS.name
    board = (
        Board(UID, TITLE, DESCRIPTION, ("health", "alerts"))
        .variable(var.datasource())
        .variable(var.service(status))
        .variable(var.environment())
        .variable(
            var.label_values("component", "voice_component", "Component", status, ('job=~"$job"',))
        )
    )

    board.row("Now").add(
        stat_panel(
            "Components healthy",
            "Components whose last check reported healthy (voice.health.status == 2).",
            "none",
            [Query(f"count(({gauge('max', status, F, ('voice_component',))}) == 2) or vector(0)")],
            width=6,
        ),
        stat_panel(
            "Components degraded or unhealthy",
            "Components whose last check reported degraded or unhealthy (voice.health.status < 2).",
            "none",
            [Query(f"count(({gauge('max', status, F, ('voice_component',))}) < 2) or vector(0)")],
            width=6,
            thresholds=((None, "green"), (1, "red")),
        ),
        stat_panel(
            "Alerts firing",
            "Alerts Prometheus is firing now, all rule groups (ALERTS).",
            "none",
            [Query(f"count({sel(alerts, (FIRING,))}) or vector(0)")],
            width=6,
            thresholds=((None, "green"), (1, "red")),
        ),
        stat_panel(
            "Worst component state",
            "The lowest health state across the selected components: healthy, degraded or "
            "unhealthy.",
            "none",
            [Query(gauge("min", status, F))],
            width=6,
            thresholds=((None, "red"), (1, "yellow"), (2, "green")),
            mappings=HEALTH_MAPPINGS,
        ),
    )

    board.row("Components").add(
        state_panel(
            "Component states over time",
            "Health state of each component over time (voice.health.status): green healthy, "
            "yellow degraded, red unhealthy.",
            [Query(_by_component(status), LEGEND)],
        ),
        timeseries_panel(
            "Health check latency",
            "How long the last health check of each component took (voice.health.check.duration).",
            "s",
            [Query(_by_component(name(Metrics.HEALTH_CHECK_DURATION)), LEGEND)],
            width=8,
        ),
        timeseries_panel(
            "Consecutive failed checks",
            "Failed checks in a row per component; 0 once a check succeeds "
            "(voice.health.consecutive_failures).",
            "none",
            [Query(_by_component(name(Metrics.HEALTH_CONSECUTIVE_FAILURES)), LEGEND)],
            width=8,
        ),
        timeseries_panel(
            "Time since last successful check",
            "Seconds since each component last passed its check "
            "(voice.health.last_success.age); a rising line means it keeps failing.",
            "s",
            [Query(_by_component(name(Metrics.HEALTH_LAST_SUCCESS_AGE)), LEGEND)],
            width=8,
        ),
    )

    board.row("Alerts").add(
        table_panel(
            "Firing alerts",
            'Every alert firing now with its labels (ALERTS{alertstate="firing"}). Empty '
            "when all is well.",
            "none",
            [Query(sel(alerts, (FIRING,)), instant=True, table=True)],
            width=16,
        ),
        timeseries_panel(
            "Alerts firing over time",
            "Number of firing alerts by severity over time; 0 when nothing fires.",
            "none",
            [
                Query(
                    f"count by (severity) ({sel(alerts, (FIRING,))}) or vector(0)",
                    "{{severity}}",
                )
            ],
            width=8,
        ),
    )
    return board.to_dict()
