"""Every rule group voice_otel ships, in rendering order."""

from __future__ import annotations

from voice_otel.alerts._config import AlertConfig
from voice_otel.alerts._conversations import conversation_group
from voice_otel.alerts._health import health_group
from voice_otel.alerts._model import AlertRule, RuleGroup
from voice_otel.alerts._platform import host_group, pipeline_group
from voice_otel.alerts._slo import slo_group
from voice_otel.alerts._stages import stage_group


def rule_groups(config: AlertConfig | None = None) -> tuple[RuleGroup, ...]:
    """The rule groups for these settings (defaults when ``None``)."""
    config = config or AlertConfig()
    return (
        health_group(config),
        stage_group(config),
        slo_group(config),
        conversation_group(config),
        pipeline_group(config),
        host_group(config),
    )


def alert_names(config: AlertConfig | None = None) -> tuple[str, ...]:
    """Every distinct alert name, in rendering order (each has a runbook)."""
    names: dict[str, None] = {}
    for group in rule_groups(config):
        for rule in group.rules:
            if isinstance(rule, AlertRule):
                names[rule.name] = None
    return tuple(names)
