"""The whole demo conversation, in process, against in-memory OpenTelemetry providers.

The conversation runs once per module (it takes a few seconds of real speech recognition); each
test then checks one property of what it recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from voice_otel import _guard, _runtime
from voice_otel._contract import Attr, GenAI, Metrics, SpanName
from voice_otel.demo import DemoPlan, TurnResult, build_pipeline, run_demo
from voice_otel.demo._audio import load_utterances

PLAN = DemoPlan()
UTTERANCES = load_utterances()


@dataclass
class Run:
    results: list[TurnResult]
    spans: Sequence[ReadableSpan]
    metrics: MetricsData

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name == name]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        pid = parent.context.span_id
        return [s for s in self.spans if s.parent is not None and s.parent.span_id == pid]

    def stage(self, parent: ReadableSpan, stage: str) -> list[ReadableSpan]:
        return [s for s in self.children(parent) if _attrs(s).get(Attr.STAGE) == stage]

    def turn(self, number: int) -> ReadableSpan:
        turns = sorted(self.named(SpanName.TURN), key=lambda s: s.start_time or 0)
        return turns[number - 1]

    def points(self, name: str) -> list[Any]:
        for rm in self.metrics.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        return list(metric.data.data_points)
        return []


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    strict = _guard.is_strict()
    _guard.set_strict(True)  # voice_otel's own faults fail the run
    _runtime.use_providers(tracer_provider, meter_provider)
    try:
        results = run_demo(PLAN, build_pipeline())
        metrics = reader.get_metrics_data()
        assert metrics is not None
        yield Run(results, exporter.get_finished_spans(), metrics)
    finally:
        _runtime.use_providers(None, None)
        _guard.set_strict(strict)
        tracer_provider.shutdown()
        meter_provider.shutdown()


def test_one_conversation_span_with_a_turn_span_per_utterance(run: Run) -> None:
    (conversation,) = run.named(SpanName.CONVERSATION)
    turns = run.named(SpanName.TURN)
    assert len(turns) == PLAN.turns >= 5
    assert all(t.parent is not None for t in turns)
    assert {t.parent.span_id for t in turns if t.parent} == {conversation.context.span_id}
    assert _attrs(conversation)[Attr.CONVERSATION_TURNS] == PLAN.turns
    assert _attrs(conversation)[Attr.CONVERSATION_INTERRUPTIONS] == 1
    assert len({s.context.trace_id for s in run.spans}) == 1


def test_every_turn_has_stt_llm_and_tts_stages(run: Run) -> None:
    for number in range(1, PLAN.turns + 1):
        turn = run.turn(number)
        (stt,) = run.stage(turn, "stt")
        assert run.stage(turn, "llm"), number
        assert run.stage(turn, "tts"), number
        utterance = UTTERANCES[(number - 1) % len(UTTERANCES)]
        assert _attrs(stt)[Attr.USAGE_AUDIO_INPUT] == pytest.approx(utterance.seconds)
        assert _attrs(stt)[GenAI.PROVIDER_NAME] == "pocketsphinx"


def test_transcripts_come_from_the_engine(run: Run) -> None:
    heard = [r.heard for r in run.results]
    assert all(heard)
    # Real recognition: most words match what was said, not necessarily all.
    matched = sum(len(set(r.heard.split()) & set(r.said.split())) for r in run.results)
    said = sum(len(r.said.split()) for r in run.results)
    assert matched >= said // 2


def test_failed_llm_call_is_an_error_span_followed_by_a_successful_retry(run: Run) -> None:
    turn = run.turn(PLAN.failing_turn or 0)
    first, second = sorted(run.stage(turn, "llm"), key=lambda s: s.start_time or 0)
    assert first.status.status_code is StatusCode.ERROR
    assert _attrs(first)[GenAI.ERROR_TYPE] == "ProviderUnavailable"
    assert _attrs(first)[Attr.OUTCOME] == "error"
    assert any(e.name == "exception" for e in first.events)
    assert second.status.status_code is not StatusCode.ERROR
    assert _attrs(second)[Attr.OUTCOME] == "ok"
    assert _attrs(second)[Attr.RETRY_ATTEMPT] == 1
    assert (second.start_time or 0) >= (first.end_time or 0)
    assert _attrs(turn)[Attr.OUTCOME] == "ok"
    result = run.results[(PLAN.failing_turn or 0) - 1]
    assert result.llm_attempts == 2 and result.error is None
    errors = [s for s in run.spans if s.status.status_code is StatusCode.ERROR]
    assert errors == [first]


def test_barge_in_closes_exactly_one_tts_stream(run: Run) -> None:
    interrupted_tts = [
        s
        for s in run.spans
        if _attrs(s).get(Attr.STAGE) == "tts" and _attrs(s).get(Attr.OUTCOME) == "interrupted"
    ]
    assert len(interrupted_tts) == 1
    turn = run.turn(PLAN.barge_in_turn or 0)
    assert interrupted_tts[0].parent is not None
    assert interrupted_tts[0].parent.span_id == turn.context.span_id
    assert _attrs(interrupted_tts[0])[Attr.INTERRUPTED] is True
    assert _attrs(turn)[Attr.INTERRUPTED] is True
    assert _attrs(turn)[Attr.OUTCOME] == "interrupted"
    assert _attrs(turn)[Attr.WASTED_AUDIO] > 0
    others = [run.turn(n) for n in range(1, PLAN.turns + 1) if n != PLAN.barge_in_turn]
    assert not any(_attrs(t)[Attr.INTERRUPTED] for t in others)


def test_turn_records_match_the_plan(run: Run) -> None:
    for result in run.results:
        record = result.record
        assert record is not None
        assert record.latency is not None and record.latency > 0
        assert record.interrupted == (result.number == PLAN.barge_in_turn)
        assert sum(record.components.values()) == pytest.approx(record.latency)
        assert record.cost == 0.0  # local engines are priced at zero


def test_turn_latency_metrics_are_recorded(run: Run) -> None:
    (latency,) = run.points(Metrics.TURN_LATENCY.name)
    assert latency.count == PLAN.turns
    components = {
        p.attributes[Attr.LATENCY_COMPONENT]: p.count
        for p in run.points(Metrics.TURN_LATENCY_COMPONENT.name)
    }
    assert components == dict.fromkeys(("stt", "llm", "tts", "other"), PLAN.turns)
    turns = {p.attributes[Attr.OUTCOME]: p.value for p in run.points(Metrics.TURNS.name)}
    assert turns == {"ok": PLAN.turns - 1, "interrupted": 1}
    (interruptions,) = run.points(Metrics.INTERRUPTIONS.name)
    assert interruptions.value == 1


def test_usage_metrics_are_recorded(run: Run) -> None:
    audio = {
        (p.attributes[Attr.STAGE], p.attributes[Attr.USAGE_DIRECTION]): p.value
        for p in run.points(Metrics.AUDIO_DURATION.name)
    }
    assert audio[("stt", "input")] > 5 * 1.0
    assert audio[("tts", "output")] > 5 * 1.0
    (characters,) = run.points(Metrics.CHARACTERS.name)
    assert characters.value > 100
    tokens = {p.attributes[GenAI.TOKEN_TYPE]: p.sum for p in run.points(Metrics.GENAI_TOKENS.name)}
    assert tokens["input"] > 0 and tokens["output"] > 0


def test_speech_starts_while_the_llm_is_still_streaming(run: Run) -> None:
    turn = run.turn(1)
    (llm,) = run.stage(turn, "llm")
    first_tts = min(run.stage(turn, "tts"), key=lambda s: s.start_time or 0)
    assert (first_tts.start_time or 0) < (llm.end_time or 0)
    assert len(run.stage(turn, "tts")) >= 2  # one TTS call per sentence
