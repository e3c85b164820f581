"""AI Services: STT, LLM and TTS latency, time to first output, errors, usage and cost, by
stage, provider and model."""

from __future__ import annotations

from typing import Any

from voice_otel._contract import SCOPE_NAME, Metrics
from voice_otel.dashboards import _variables as var
from voice_otel.dashboards._external import External
from voice_otel.dashboards._panels import Board, Query, timeseries_panel
from voice_otel.dashboards._promql import (
    MODEL,
    PROVIDER,
    SERVICE,
    name,
    or_zero,
    quantile,
    rate_sum,
    ratio,
)

UID = "voice-ai-services"
TITLE = "Voice AI Services"
DESCRIPTION = (
    "Speech-to-text, LLM and text-to-speech calls by provider and model: latency, time to "
    "first output, errors, tokens, characters, audio seconds and cost."
)

STAGE = 'voice_stage=~"$stage"'
F = (SERVICE, STAGE, PROVIDER, MODEL)
# gen_ai.* metrics carry the operation name, not voice.stage.
GENAI_F = (SERVICE, PROVIDER, MODEL)
# Frameworks and LLM client instrumentations (LiveKit Agents, OpenLLMetry, ...) record the same
# gen_ai.* names through the same providers: count only voice_otel's, or usage doubles.
GENAI_OURS = (*GENAI_F, f'otel_scope_name="{SCOPE_NAME}"')
BY_MODEL = ("voice_stage", "gen_ai_provider_name", "gen_ai_request_model")
# Span metrics carry service_name and the span's voice.stage; no target_info joins them.
SPANS = ('service_name=~"$job"', STAGE)
LEGEND = "{{voice_stage}} {{gen_ai_provider_name}}/{{gen_ai_request_model}}"
GENAI_BY = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")
GENAI_LEGEND = "{{gen_ai_operation_name}} {{gen_ai_provider_name}}/{{gen_ai_request_model}}"


def build() -> dict[str, Any]:
    """The dashboard JSON model."""
    calls = name(Metrics.STAGE_DURATION, "count")
    all_calls = rate_sum(calls, F, BY_MODEL)
    errors = rate_sum(calls, (*F, 'voice_outcome="error"'), BY_MODEL)
    board = (
        Board(UID, TITLE, DESCRIPTION, ("ai-services",))
        .variable(var.datasource())
        .variable(var.service(calls))
        .variable(var.environment())
        .variable(var.label_values("stage", "voice_stage", "Stage", calls, ('job=~"$job"',)))
        .variable(
            var.label_values(
                "provider", "gen_ai_provider_name", "Provider", calls, ('job=~"$job"', STAGE)
            )
        )
        .variable(
            var.label_values(
                "model", "gen_ai_request_model", "Model", calls, ('job=~"$job"', STAGE, PROVIDER)
            )
        )
    )

    board.row("Latency").add(
        timeseries_panel(
            "Stage duration p95",
            "95th percentile duration of each STT, LLM and TTS call by provider and model "
            "(voice.stage.duration; streams count until exhausted, closed or cancelled).",
            "s",
            [Query(quantile(0.95, Metrics.STAGE_DURATION, F, BY_MODEL), LEGEND, exemplar=True)],
        ),
        timeseries_panel(
            "Time to first output p95",
            "95th percentile time to first output: STT first transcript, LLM first token, TTS "
            "first audio byte (voice.stage.time_to_first_output).",
            "s",
            [Query(quantile(0.95, Metrics.STAGE_TTFO, F, BY_MODEL), LEGEND, exemplar=True)],
        ),
        timeseries_panel(
            "GenAI operation duration p50",
            "Median GenAI client operation duration by operation, provider and model "
            "(gen_ai.client.operation.duration, OpenTelemetry GenAI conventions).",
            "s",
            [
                Query(
                    quantile(0.5, Metrics.GENAI_DURATION, GENAI_OURS, GENAI_BY),
                    GENAI_LEGEND,
                    exemplar=True,
                )
            ],
        ),
        timeseries_panel(
            "GenAI time to first chunk p50",
            "Median time to the first chunk of a streamed GenAI operation "
            "(gen_ai.client.operation.time_to_first_chunk).",
            "s",
            [
                Query(
                    quantile(0.5, Metrics.GENAI_TTFC, GENAI_OURS, GENAI_BY),
                    GENAI_LEGEND,
                    exemplar=True,
                )
            ],
        ),
    )

    board.row("Calls and errors").add(
        timeseries_panel(
            "Calls per second",
            "STT, LLM and TTS calls per second by outcome: ok, error, interrupted "
            "(voice.stage.duration count).",
            "reqps",
            [
                Query(
                    rate_sum(calls, F, ("voice_stage", "voice_outcome")),
                    "{{voice_stage}} {{voice_outcome}}",
                )
            ],
            width=8,
        ),
        timeseries_panel(
            "Error ratio",
            "Share of calls that raised, by stage, provider and model. 0 when nothing failed.",
            "percentunit",
            [Query(or_zero(ratio(errors, all_calls), all_calls), LEGEND)],
            width=8,
            maximum=1,
        ),
        timeseries_panel(
            "Calls from traces (span metrics)",
            "Spans per second by span name, from the collector's span_metrics connector; a "
            "cross-check of the SDK's metrics against the traces Jaeger received.",
            "reqps",
            [
                Query(
                    rate_sum(External.SPAN_CALLS.name, SPANS, ("span_name",), scoped=False),
                    "{{span_name}}",
                )
            ],
            width=8,
        ),
    )

    cost = rate_sum(name(Metrics.COST), F, BY_MODEL)
    audio = rate_sum(name(Metrics.AUDIO_DURATION), F, (*BY_MODEL, "voice_usage_direction"))
    # voice.tts.wasted.* carry provider and model only (no voice.stage label).
    by_provider = ("gen_ai_provider_name", "gen_ai_request_model")
    wasted = rate_sum(name(Metrics.WASTED_AUDIO), GENAI_F, by_provider)
    wasted_characters = rate_sum(name(Metrics.WASTED_CHARACTERS), GENAI_F, by_provider)
    synthesised = rate_sum(name(Metrics.CHARACTERS), GENAI_F, by_provider)
    board.row("Usage and cost").add(
        timeseries_panel(
            "LLM tokens per second",
            "Input and output tokens per second by model (gen_ai.client.token.usage).",
            "suffix: tokens/s",
            [
                Query(
                    rate_sum(
                        name(Metrics.GENAI_TOKENS, "sum"),
                        GENAI_OURS,
                        ("gen_ai_request_model", "gen_ai_token_type"),
                    ),
                    "{{gen_ai_request_model}} {{gen_ai_token_type}}",
                )
            ],
            width=8,
        ),
        timeseries_panel(
            "TTS characters per second",
            "Characters sent to text-to-speech per second by provider and model "
            "(voice.usage.characters).",
            "suffix: chars/s",
            [Query(rate_sum(name(Metrics.CHARACTERS), F, BY_MODEL), LEGEND)],
            width=8,
        ),
        timeseries_panel(
            "Audio seconds per minute",
            "Seconds of audio processed per minute of wall time: STT input and TTS output "
            "(voice.usage.audio).",
            "s",
            [Query(f"{audio} * 60", LEGEND + " {{voice_usage_direction}}")],
            width=8,
        ),
        timeseries_panel(
            "Cost per hour",
            "Estimated US dollars per hour by stage, provider and model (voice.cost).",
            "currencyUSD",
            [Query(f"{cost} * 3600", LEGEND)],
            width=8,
            stacked=True,
        ),
        timeseries_panel(
            "Wasted TTS audio per minute",
            "Seconds of synthesised speech per minute that were never played because the user "
            "interrupted (voice.tts.wasted.audio, estimated). 0 without interruptions.",
            "s",
            [
                Query(
                    or_zero(f"{wasted} * 60", synthesised),
                    "{{gen_ai_provider_name}}/{{gen_ai_request_model}}",
                )
            ],
            width=8,
        ),
        timeseries_panel(
            "Wasted TTS characters per minute",
            "Characters synthesised per minute that were never played because the user "
            "interrupted (voice.tts.wasted.characters, estimated). 0 without interruptions.",
            "suffix: chars/min",
            [
                Query(
                    or_zero(f"{wasted_characters} * 60", synthesised),
                    "{{gen_ai_provider_name}}/{{gen_ai_request_model}}",
                )
            ],
            width=8,
        ),
    )
    return board.to_dict()
