"""Alerts on how conversations go: unusual interruption rate, spend over budget."""

from __future__ import annotations

from voice_otel._contract import Metrics
from voice_otel.alerts._config import AlertConfig
from voice_otel.alerts._model import AlertRule, RecordingRule, RuleGroup
from voice_otel.alerts._promql import duration, number

_BASELINE_S = 86400
_COST_WINDOW_S = 3600


def conversation_group(config: AlertConfig) -> RuleGroup:
    """Interruptions per turn against the last day, and cost per hour against a budget."""
    interruptions = Metrics.INTERRUPTIONS.prometheus_name
    turns = Metrics.TURNS.prometheus_name
    cost = Metrics.COST.prometheus_name
    window = duration(config.interruption_window_s)
    baseline = duration(_BASELINE_S)
    cost_window = duration(_COST_WINDOW_S)

    def per_turn(window: str) -> RecordingRule:
        return RecordingRule(
            record=f"job:voice_interruptions_per_turn:ratio_rate{window}",
            expr=(
                f"sum by (job) (rate({interruptions}[{window}]))\n"
                f"/\n"
                f"clamp_min(sum by (job) (rate({turns}[{window}])), 1e-9)\n"
            ),
        )

    recent = per_turn(window)
    usual = per_turn(baseline)
    turn_rate = RecordingRule(
        record=f"job:{turns.removesuffix('_total')}:rate{window}",
        expr=f"sum by (job) (rate({turns}[{window}]))\n",
    )
    cost_rate = RecordingRule(
        record=f"job:{cost}:rate{cost_window}",
        expr=f"sum by (job) (rate({cost}[{cost_window}]))\n",
    )
    interruption_for = config.for_(900)
    cost_for = config.for_(900)
    factor = number(config.interruption_baseline_factor)
    budget = number(config.cost_budget_usd_per_hour)

    return RuleGroup(
        name="voice-conversations",
        file="voice-conversations",
        title="how conversations go: interruptions (barge-ins) per turn and spend per hour",
        rules=(
            recent,
            usual,
            turn_rate,
            cost_rate,
            AlertRule(
                name="VoiceInterruptionRateUnusual",
                expr=(
                    f"{recent.record} > {factor} * {usual.record}\n"
                    f"and\n"
                    f"{recent.record} > {number(config.interruption_ratio_floor)}\n"
                    f"and\n"
                    f"{turn_rate.record} * {config.interruption_window_s} "
                    f">= {config.interruption_min_turns}\n"
                ),
                for_s=interruption_for,
                severity="warning",
                summary="Users interrupt the bot far more often than usual.",
                description=(
                    f"Users in {{{{ $labels.job }}}} barged in on "
                    f"{{{{ $value | humanizePercentage }}}} of turns over the last {window}, "
                    f"more than {factor}x the last {baseline}'s "
                    f"rate (for {duration(interruption_for)})."
                ),
                labels={"component": "voice-pipeline"},
            ),
            AlertRule(
                name="VoiceCostOverBudget",
                expr=f"{cost_rate.record} * 3600 > {budget}\n",
                for_s=cost_for,
                severity="warning",
                summary="The voice agent spends more per hour than its budget.",
                description=(
                    f"{{{{ $labels.job }}}} spent at a rate of {{{{ $value | humanize }}}} USD per "
                    f"hour over the last {cost_window} (budget {budget} USD per hour, for "
                    f"{duration(cost_for)})."
                ),
                labels={"component": "voice-pipeline"},
            ),
        ),
    )
