"""Voice Agent Overview: turn rate, voice-to-voice latency and its objective, stage breakdown,
interruptions, cost and component health on one page."""

from __future__ import annotations

from typing import Any

from voice_otel._contract import VOICE_LATENCY_BUCKETS, Metrics
from voice_otel.dashboards import _variables as var
from voice_otel.dashboards._panels import (
    Board,
    Query,
    stat_panel,
    state_panel,
    timeseries_panel,
)
from voice_otel.dashboards._promql import (
    SERVICE,
    gauge,
    increase_sum,
    mean,
    name,
    or_zero,
    quantile,
    rate_sum,
    ratio,
)

UID = "voice-overview"
TITLE = "Voice Agent Overview"
DESCRIPTION = (
    "Turns per second, voice-to-voice latency against its objective, the error budget, where "
    "the latency goes (STT, LLM, TTS, other), interruptions, cost and component health."
)

F = (SERVICE,)
OBJECTIVES = ("0.5", "0.6", "0.8", "1", "1.25", "1.5", "2", "3")
# The Python exporter writes le="1.0", the collector le="1": accept both.
OBJECTIVE_LE = 'le=~"${objective}(.0)?"'


def _turns_within_objective() -> str:
    good = increase_sum(name(Metrics.TURN_LATENCY, "bucket"), (*F, OBJECTIVE_LE))
    total = increase_sum(name(Metrics.TURN_LATENCY, "count"), F)
    return ratio(good, total)


def build() -> dict[str, Any]:
    """The dashboard JSON model."""
    # An objective is only measurable at a bucket boundary of voice.turn.latency.
    off_grid = [o for o in OBJECTIVES if float(o) not in VOICE_LATENCY_BUCKETS]
    if off_grid:
        raise ValueError(f"latency objectives {off_grid} are not voice.turn.latency buckets")

    turns = name(Metrics.TURNS)
    turn_rate = rate_sum(turns, F)
    sli = _turns_within_objective()
    board = (
        Board(UID, TITLE, DESCRIPTION, ("overview",))
        .variable(var.datasource())
        .variable(var.service(turns))
        .variable(var.environment())
        .variable(
            var.custom(
                "objective",
                "Latency objective (s)",
                "Voice-to-voice latency a turn should stay under; a bucket boundary of "
                "voice.turn.latency.",
                OBJECTIVES,
                "1",
            )
        )
        .variable(
            var.custom(
                "slo_target",
                "Objective target",
                "Share of turns that must meet the latency objective.",
                ("0.9", "0.95", "0.99"),
                "0.95",
            )
        )
    )

    board.row("Service level").add(
        stat_panel(
            "Turns per second",
            "Turns ended per second, all outcomes (voice.turns).",
            "suffix: turns/s",
            [Query(turn_rate)],
        ),
        stat_panel(
            "Voice-to-voice p95",
            "95th percentile of the time from the user stopping speaking to the bot's first "
            "audio (voice.turn.latency), over the rate window.",
            "s",
            [Query(quantile(0.95, Metrics.TURN_LATENCY, F))],
            thresholds=((None, "green"), (0.8, "yellow"), (1.0, "red")),
            decimals=2,
        ),
        stat_panel(
            "Turns within objective",
            "Share of turns in the dashboard's time range whose voice-to-voice latency was "
            "at most the objective variable.",
            "percentunit",
            [Query(sli)],
            thresholds=((None, "red"), (0.9, "yellow"), (0.95, "green")),
            decimals=1,
        ),
        stat_panel(
            "Error budget remaining",
            "Share of the latency error budget left over the dashboard's time range: "
            "1 - (slow turns share) / (1 - objective target). Below 0 the objective is missed.",
            "percentunit",
            [Query(f"1 - (1 - ({sli})) / (1 - $slo_target)")],
            thresholds=((None, "red"), (0.25, "yellow"), (0.5, "green")),
            decimals=1,
        ),
        stat_panel(
            "Active conversations",
            "Conversations in progress right now (voice.conversations.active).",
            "none",
            [Query(gauge("sum", name(Metrics.CONVERSATIONS_ACTIVE), F))],
        ),
        stat_panel(
            "Cost per hour",
            "Estimated spend rate in US dollars per hour from the offline price table "
            "(voice.cost).",
            "currencyUSD",
            [Query(f"{rate_sum(name(Metrics.COST), F)} * 3600")],
            decimals=2,
        ),
    )

    board.row("Latency").add(
        timeseries_panel(
            "Voice-to-voice latency",
            "p50, p95 and p99 of voice.turn.latency, with the objective as a line. Exemplar "
            "dots open the turn's trace in Jaeger.",
            "s",
            [
                Query(quantile(0.5, Metrics.TURN_LATENCY, F), "p50", exemplar=True),
                Query(quantile(0.95, Metrics.TURN_LATENCY, F), "p95", exemplar=True),
                Query(quantile(0.99, Metrics.TURN_LATENCY, F), "p99", exemplar=True),
                Query(f"{turn_rate} * 0 + $objective", "objective"),
            ],
        ),
        timeseries_panel(
            "Where the latency goes (mean per turn)",
            "Mean voice-to-voice latency split by stage (voice.turn.latency.component): STT, "
            "LLM to first token, TTS to first byte, and other. The stacked parts add up to the "
            "mean turn latency.",
            "s",
            [
                Query(
                    mean(Metrics.TURN_LATENCY_COMPONENT, F, ("voice_latency_component",)),
                    "{{voice_latency_component}}",
                )
            ],
            stacked=True,
            bars=True,
        ),
        timeseries_panel(
            "Latency component p95",
            "95th percentile of each latency component (voice.turn.latency.component). "
            "Exemplar dots open a slow turn's trace.",
            "s",
            [
                Query(
                    quantile(0.95, Metrics.TURN_LATENCY_COMPONENT, F, ("voice_latency_component",)),
                    "{{voice_latency_component}}",
                    exemplar=True,
                )
            ],
        ),
        timeseries_panel(
            "Turns by outcome",
            "Turns ended per second by outcome: ok, error, interrupted (voice.turns).",
            "suffix: turns/s",
            [Query(rate_sum(turns, F, ("voice_outcome",)), "{{voice_outcome}}")],
            stacked=True,
        ),
    )

    interruptions = f"{rate_sum(name(Metrics.INTERRUPTIONS), F)} * 60"
    board.row("Conversations, interruptions and cost").add(
        timeseries_panel(
            "Interruptions per minute",
            "Barge-ins per minute: the user spoke over the bot (voice.interruptions). 0 when "
            "nobody interrupted.",
            "none",
            [Query(or_zero(interruptions, turn_rate), "interruptions")],
            width=6,
        ),
        timeseries_panel(
            "Interruption stop latency p95",
            "95th percentile of the time from a barge-in to the TTS stream actually stopping "
            "(voice.interruption.stop_latency).",
            "s",
            [Query(quantile(0.95, Metrics.INTERRUPTION_STOP_LATENCY, F), "p95", exemplar=True)],
            width=6,
        ),
        timeseries_panel(
            "Conversation length",
            "Median and 95th percentile duration of ended conversations "
            "(voice.conversation.duration).",
            "s",
            [
                Query(quantile(0.5, Metrics.CONVERSATION_DURATION, F), "p50", exemplar=True),
                Query(quantile(0.95, Metrics.CONVERSATION_DURATION, F), "p95", exemplar=True),
            ],
            width=6,
        ),
        timeseries_panel(
            "Cost per hour by stage",
            "Estimated US dollars per hour by stage (voice.cost), from the offline price table.",
            "currencyUSD",
            [
                Query(
                    f"{rate_sum(name(Metrics.COST), F, ('voice_stage',))} * 3600", "{{voice_stage}}"
                )
            ],
            width=6,
            stacked=True,
        ),
    )

    health = gauge("max", name(Metrics.HEALTH_STATUS), F, ("voice_component",))
    board.row("Component health").add(
        stat_panel(
            "Components unhealthy",
            "Number of components whose last health check reported unhealthy "
            "(voice.health.status == 0).",
            "none",
            [Query(f"count(({health}) == 0) or vector(0)")],
            thresholds=((None, "green"), (1, "red")),
        ),
        state_panel(
            "Component health",
            "State of each checked component over time (voice.health.status): healthy, "
            "degraded or unhealthy.",
            [Query(health, "{{voice_component}}")],
            width=20,
        ),
    )
    return board.to_dict()
