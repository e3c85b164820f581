"""Alerts on component health: the health monitor's ``voice.health.status`` gauge."""

from __future__ import annotations

from voice_otel._contract import HEALTH_STATES, STAGES, Attr, Metrics
from voice_otel.alerts._config import AlertConfig
from voice_otel.alerts._model import AlertRule, RuleGroup
from voice_otel.alerts._promql import duration, label

COMPONENT = label(Attr.COMPONENT)
KIND = label(Attr.COMPONENT_KIND)


def health_group(config: AlertConfig) -> RuleGroup:
    """Component unhealthy (critical) and not fully healthy (warning) alerts."""
    status = Metrics.HEALTH_STATUS.prometheus_name
    by = f"job, instance, {COMPONENT}, {KIND}"
    healthy = HEALTH_STATES["healthy"]
    unhealthy = HEALTH_STATES["unhealthy"]
    # A provider's component is "<stage>:<provider>" with kind <stage>. The alerts carry the
    # same `component` (the provider) and `stage` labels as the provider's stage alerts, so that
    # Alertmanager can mute those while the provider is unhealthy; other components keep their
    # name and get no stage. Done in PromQL rather than label templates: a template that expands
    # to "" leaves its raw text on the ALERTS series.
    stages = "|".join(STAGES)
    labelled = (
        "label_replace(\n"
        "  label_replace(\n"
        f"    min by ({by}) ({status}),\n"
        f'    "component", "$1", "{COMPONENT}", "(?:(?:{stages}):)?(.+)"\n'
        "  ),\n"
        f'  "stage", "$1", "{KIND}", "({stages})"\n'
        ")\n"
    )
    who = (
        f"{{{{ $labels.{COMPONENT} }}}} ({{{{ $labels.{KIND} }}}}) seen from {{{{ $labels.job }}}}"
    )
    scale = "(2 healthy, 1 degraded, 0 unhealthy)"
    unhealthy_for = config.for_(60)
    degraded_for = config.for_(300)

    return RuleGroup(
        name="voice-health",
        file="voice-health",
        title="component health from the health monitor's voice.health.status gauge",
        rules=(
            AlertRule(
                name="VoiceComponentUnhealthy",
                expr=f"{labelled}== {unhealthy}\n",
                for_s=unhealthy_for,
                severity="critical",
                summary="A component the voice agent depends on fails its health checks.",
                description=(
                    f"{who} on {{{{ $labels.instance }}}} has health status {{{{ $value }}}} "
                    f"{scale}: its checks have failed for {duration(unhealthy_for)}."
                ),
            ),
            AlertRule(
                name="VoiceComponentDegraded",
                expr=f"{labelled}< {healthy}\n",
                for_s=degraded_for,
                severity="warning",
                summary="A component the voice agent depends on is not fully healthy.",
                description=(
                    f"{who} on {{{{ $labels.instance }}}} has health status {{{{ $value }}}} "
                    f"{scale} and has not been healthy for {duration(degraded_for)}."
                ),
            ),
        ),
    )
