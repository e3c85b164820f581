"""Alerts on the STT, LLM and TTS stages: error ratio, LLM time to first token, TTS first byte."""

from __future__ import annotations

from voice_otel._contract import Attr, GenAI, Metrics
from voice_otel.alerts._config import AlertConfig
from voice_otel.alerts._model import AlertRule, RecordingRule, RuleGroup, Severity
from voice_otel.alerts._promql import duration, indent, label, number, sum_rate

STAGE = label(Attr.STAGE)
PROVIDER = label(GenAI.PROVIDER_NAME)
MODEL = label(GenAI.REQUEST_MODEL)
OUTCOME = label(Attr.OUTCOME)

_PROVIDER_LABELS = {
    "component": f"{{{{ $labels.{PROVIDER} }}}}",
    "stage": f"{{{{ $labels.{STAGE} }}}}",
}


def stage_group(config: AlertConfig) -> RuleGroup:
    """Recording rules per stage and provider, and the alerts that read them."""
    window = duration(config.stage_window_s)
    calls = f"{Metrics.STAGE_DURATION.prometheus_name}_count"
    ttfo = Metrics.STAGE_TTFO.prometheus_name
    by_provider = f"job, {STAGE}, {PROVIDER}"
    by_model = f"job, {STAGE}, {PROVIDER}, {MODEL}"

    calls_rate = RecordingRule(
        record=f"job_stage_provider:{calls}:rate{window}",
        expr=sum_rate(by_provider, calls, window),
    )
    error_ratio = RecordingRule(
        record=f"job_stage_provider:voice_stage_errors:ratio_rate{window}",
        expr=(
            sum_rate(by_provider, f'{calls}{{{OUTCOME}="error"}}', window)
            + "/\nclamp_min(\n"
            + indent(sum_rate(by_provider, calls, window)).rstrip("\n")
            + ",\n  1e-9\n)\n"
        ),
    )
    ttfo_rate = RecordingRule(
        record=f"job_stage_provider_model:{ttfo}_count:rate{window}",
        expr=sum_rate(by_model, f"{ttfo}_count", window),
    )
    ttfo_p95 = RecordingRule(
        record=f"job_stage_provider_model:{ttfo}:p95_{window}",
        expr="histogram_quantile(\n  0.95,\n"
        + indent(sum_rate(f"{by_model}, le", f"{ttfo}_bucket", window))
        + ")\n",
    )
    enough_calls = f"{calls_rate.record} * {config.stage_window_s} >= {config.stage_min_calls}\n"

    def error_alert(severity: Severity, ratio: float, for_s: int) -> AlertRule:
        return AlertRule(
            name="VoiceStageErrorRatioHigh",
            expr=f"{error_ratio.record} > {number(ratio)}\nand\n{enough_calls}",
            for_s=for_s,
            severity=severity,
            summary="Too many STT, LLM or TTS calls of one provider fail.",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of {{{{ $labels.{STAGE} }}}} calls to "
                f"{{{{ $labels.{PROVIDER} }}}} in {{{{ $labels.job }}}} failed over the last "
                f"{window} (threshold {number(ratio * 100)} % for {duration(for_s)})."
            ),
            labels=_PROVIDER_LABELS,
        )

    def first_output_alert(stage: str, name: str, what: str, threshold: float) -> AlertRule:
        for_s = config.for_(600)
        return AlertRule(
            name=name,
            expr=(
                f'{ttfo_p95.record}{{{STAGE}="{stage}"}} > {number(threshold)}\n'
                f"and\n"
                f'{ttfo_rate.record}{{{STAGE}="{stage}"}} * {config.stage_window_s} '
                f">= {config.stage_min_calls}\n"
            ),
            for_s=for_s,
            severity="warning",
            summary=f"The {stage.upper()} {what} is too slow for a natural conversation.",
            description=(
                f"p95 {what} of {{{{ $labels.{PROVIDER} }}}} {{{{ $labels.{MODEL} }}}} in "
                f"{{{{ $labels.job }}}} is {{{{ $value | humanizeDuration }}}} over the last "
                f"{window} (threshold {number(threshold)}s for {duration(for_s)})."
            ),
            labels=_PROVIDER_LABELS,
        )

    return RuleGroup(
        name="voice-stages",
        file="voice-stages",
        title="STT, LLM and TTS stages per provider: errors and time to first output",
        rules=(
            calls_rate,
            error_ratio,
            ttfo_rate,
            ttfo_p95,
            error_alert("critical", config.stage_error_ratio_critical, config.for_(300)),
            error_alert("warning", config.stage_error_ratio_warning, config.for_(600)),
            first_output_alert(
                "llm", "VoiceLLMTimeToFirstTokenHigh", "time to first token", config.llm_ttft_p95_s
            ),
            first_output_alert(
                "tts", "VoiceTTSTimeToFirstByteHigh", "time to first byte", config.tts_ttfb_p95_s
            ),
        ),
    )
