"""Prometheus alerting and recording rules for voice agents, defined in Python.

The rules read the metrics of the telemetry contract (:mod:`voice_otel._contract`), the health
monitor's gauges, the collector's own metrics and the system metrics. Thresholds and objectives
live in :class:`AlertConfig`; the files under ``collector/rules/`` are what
:func:`render_rule_files` produces with the defaults (``voice-otel rules render``).

Example::

    from voice_otel.alerts import AlertConfig, write_rule_files

    write_rule_files("rules", AlertConfig(latency_objective_s=1.5, latency_target=0.99))
"""

from __future__ import annotations

from voice_otel.alerts._config import DEFAULT_RUNBOOK_BASE_URL, AlertConfig
from voice_otel.alerts._model import AlertRule, RecordingRule, RuleGroup, runbook_url
from voice_otel.alerts._render import render_group, render_rule_files, write_rule_files
from voice_otel.alerts._rules import alert_names, rule_groups
from voice_otel.alerts._slo import BURN_RATE_WINDOWS

__all__ = [
    "BURN_RATE_WINDOWS",
    "DEFAULT_RUNBOOK_BASE_URL",
    "AlertConfig",
    "AlertRule",
    "RecordingRule",
    "RuleGroup",
    "alert_names",
    "render_group",
    "render_rule_files",
    "rule_groups",
    "runbook_url",
    "write_rule_files",
]
