"""The voice-to-voice latency SLO: multi-window, multi-burn-rate alerts (SRE workbook).

The SLI is the fraction of turns whose voice-to-voice latency (user stopped speaking to the
bot's first audio) is within the objective, read from the ``voice.turn.latency`` histogram's
bucket at the objective. A burn rate of 1 spends the error budget exactly over 30 days; 14.4
spends 2 % of it in an hour, 6 spends 5 % in six hours.
"""

from __future__ import annotations

from dataclasses import dataclass

from voice_otel._contract import Metrics
from voice_otel.alerts._config import AlertConfig
from voice_otel.alerts._model import AlertRule, RecordingRule, RuleGroup, Severity
from voice_otel.alerts._promql import duration, le_matcher, number


@dataclass(frozen=True)
class BurnRateWindow:
    """One burn-rate alert: both windows must burn faster than ``factor``."""

    factor: float
    long_s: int
    short_s: int
    severity: Severity
    for_s: int


#: 14.4x over 1h and 5m pages; 6x over 6h and 30m opens a ticket.
BURN_RATE_WINDOWS = (
    BurnRateWindow(14.4, 3600, 300, "critical", 120),
    BurnRateWindow(6.0, 21600, 1800, "warning", 900),
)


def slow_ratio_record(window_s: int) -> str:
    """Name of the recording rule: fraction of turns over the objective in a window."""
    return f"job:voice_turn_latency_over_objective:ratio_rate{duration(window_s)}"


def turn_rate_record(window_s: int) -> str:
    """Name of the recording rule: turns per second in a window."""
    return f"job:{Metrics.TURN_LATENCY.prometheus_name}_count:rate{duration(window_s)}"


def slo_group(config: AlertConfig) -> RuleGroup:
    """Recording rules per window and the two burn-rate alerts."""
    latency = Metrics.TURN_LATENCY.prometheus_name
    windows = sorted({s for w in BURN_RATE_WINDOWS for s in (w.short_s, w.long_s)})
    objective = number(config.latency_objective_s)
    budget = number(config.error_budget)
    bucket = le_matcher(config.latency_objective_s)

    recordings: list[RecordingRule] = []
    for window_s in windows:
        window = duration(window_s)
        recordings.append(
            RecordingRule(
                record=turn_rate_record(window_s),
                expr=f"sum by (job) (rate({latency}_count[{window}]))\n",
            )
        )
        recordings.append(
            RecordingRule(
                record=slow_ratio_record(window_s),
                expr=(
                    f"(\n"
                    f"  sum by (job) (rate({latency}_count[{window}]))\n"
                    f"  -\n"
                    f"  sum by (job) (rate({latency}_bucket{{{bucket}}}[{window}]))\n"
                    f")\n"
                    f"/\n"
                    f"clamp_min(sum by (job) (rate({latency}_count[{window}])), 1e-9)\n"
                ),
            )
        )

    alerts = []
    for w in BURN_RATE_WINDOWS:
        threshold = f"({number(w.factor)} * {budget})"
        long_window, short_window = duration(w.long_s), duration(w.short_s)
        for_s = config.for_(w.for_s)
        alerts.append(
            AlertRule(
                name="VoiceLatencyBudgetBurn",
                expr=(
                    f"{slow_ratio_record(w.long_s)} > {threshold}\n"
                    f"and\n"
                    f"{slow_ratio_record(w.short_s)} > {threshold}\n"
                    f"and\n"
                    f"{turn_rate_record(w.long_s)} * {w.long_s} >= {config.slo_min_turns}\n"
                ),
                for_s=for_s,
                severity=w.severity,
                summary="Voice-to-voice latency is burning the SLO's error budget too fast.",
                description=(
                    f"{{{{ $value | humanizePercentage }}}} of turns in {{{{ $labels.job }}}} took "
                    f"longer than {objective}s over the last {long_window} (and over the last "
                    f"{short_window}): {number(w.factor)}x the error budget of a "
                    f"{number(config.latency_target * 100)} % objective (for {duration(for_s)})."
                ),
                labels={
                    "component": "voice-pipeline",
                    "long_window": long_window,
                    "short_window": short_window,
                },
            )
        )

    return RuleGroup(
        name="voice-latency-slo",
        file="voice-slo",
        title=(
            f"voice-to-voice latency SLO ({number(config.latency_target * 100)} % of turns "
            f"within {objective}s), multi-window burn-rate alerts"
        ),
        rules=(*recordings, *alerts),
    )
