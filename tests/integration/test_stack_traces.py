"""SDK -> collector (otelcol.yaml) -> Jaeger: the conversation's trace, span tree and attributes."""

from __future__ import annotations

from typing import Any

import pytest
from _stack_support import WorkloadRun, eventually

from voice_otel._contract import STAGE_OPERATION, Attr, GenAI, SpanName
from voice_otel.stack import LocalStack, StoredSpan

pytestmark = pytest.mark.integration

STAGES = {
    "stt": ("test-stt", "test-stt-model"),
    "llm": ("test-llm", "test-llm-model"),
    "tts": ("test-tts", "test-tts-model"),
}


def stored_trace(stack: LocalStack, trace_id: str, expected_spans: int) -> list[StoredSpan]:
    def complete() -> list[StoredSpan] | None:
        spans = stack.jaeger.get_trace(trace_id)
        return spans if spans and len(spans) >= expected_spans else None

    result: list[StoredSpan] = eventually(
        complete, timeout=60, what=f"trace {trace_id} with {expected_spans} spans in Jaeger"
    )
    return result


def by_kind(run: WorkloadRun, kind: str) -> list[dict[str, Any]]:
    found = [c for c in run.conversations if c["kind"] == kind]
    assert found, f"workload produced no {kind} conversation"
    return found


def test_conversation_trace_has_conversation_turn_and_stage_spans(
    stack: LocalStack, pipeline_run: WorkloadRun
) -> None:
    conversation = by_kind(pipeline_run, "fast")[0]
    spans = stored_trace(stack, conversation["trace_id"], expected_spans=5)
    by_name = {span.name: span for span in spans}

    root = by_name[SpanName.CONVERSATION]
    turn = by_name[SpanName.TURN]
    assert root.parent_span_id == ""
    assert turn.parent_span_id == root.span_id
    assert root.service == "voice-otel-it"
    assert root.attributes[GenAI.CONVERSATION_ID] == turn.attributes[GenAI.CONVERSATION_ID]

    for stage, (provider, model) in STAGES.items():
        name = SpanName.stage(STAGE_OPERATION[stage], model)
        assert name in by_name, f"no {name!r} span in {sorted(by_name)}"
        span = by_name[name]
        assert span.parent_span_id == turn.span_id
        assert span.attributes[Attr.STAGE] == stage
        assert span.attributes[GenAI.OPERATION_NAME] == STAGE_OPERATION[stage]
        assert span.attributes[GenAI.PROVIDER_NAME] == provider
        assert span.attributes[GenAI.REQUEST_MODEL] == model
        assert span.status_code != "ERROR"

    llm = by_name[SpanName.stage(STAGE_OPERATION["llm"], "test-llm-model")]
    assert llm.attributes[GenAI.USAGE_INPUT_TOKENS] == 12
    assert llm.attributes[GenAI.USAGE_OUTPUT_TOKENS] == 6
    assert llm.attributes[Attr.STAGE_TTFO] >= 0

    # Times survive the trip: stages run in order inside their turn, inside the conversation.
    stages = sorted(
        (s for s in spans if s.parent_span_id == turn.span_id), key=lambda s: s.start_time_ns
    )
    assert [s.attributes[Attr.STAGE] for s in stages] == ["stt", "llm", "tts"]
    assert root.start_time_ns <= turn.start_time_ns <= stages[0].start_time_ns
    assert stages[-1].end_time_ns <= turn.end_time_ns <= root.end_time_ns

    assert turn.attributes[Attr.TURN_LATENCY] == pytest.approx(conversation["latency"])
    assert turn.attributes[Attr.TURN_SLOW] is False
    assert turn.attributes[Attr.INTERRUPTED] is False
    assert turn.attributes[Attr.OUTCOME] == "ok"


def test_interrupted_turn_is_marked_on_the_turn_span(
    stack: LocalStack, pipeline_run: WorkloadRun
) -> None:
    conversation = by_kind(pipeline_run, "interrupted")[0]
    spans = stored_trace(stack, conversation["trace_id"], expected_spans=5)
    turn = next(s for s in spans if s.name == SpanName.TURN)
    assert turn.attributes[Attr.INTERRUPTED] is True
    assert turn.attributes[Attr.OUTCOME] == "interrupted"


def test_slow_turn_is_marked_on_the_turn_span(stack: LocalStack, pipeline_run: WorkloadRun) -> None:
    conversation = by_kind(pipeline_run, "slow")[0]
    assert conversation["slow"] is True
    spans = stored_trace(stack, conversation["trace_id"], expected_spans=5)
    turn = next(s for s in spans if s.name == SpanName.TURN)
    assert turn.attributes[Attr.TURN_SLOW] is True
    assert turn.attributes[Attr.TURN_LATENCY] > turn.attributes[Attr.TURN_OBJECTIVE]


def test_failed_llm_call_is_an_error_span_with_its_type(
    stack: LocalStack, pipeline_run: WorkloadRun
) -> None:
    conversation = by_kind(pipeline_run, "error")[0]
    # conversation, turn, stt, llm; no TTS after the LLM failed
    spans = stored_trace(stack, conversation["trace_id"], expected_spans=4)
    llm = next(s for s in spans if s.attributes.get(Attr.STAGE) == "llm")
    assert llm.status_code == "ERROR"
    assert llm.attributes[GenAI.ERROR_TYPE] == "ProviderError"
    assert not any(s.attributes.get(Attr.STAGE) == "tts" for s in spans)
    turn = next(s for s in spans if s.name == SpanName.TURN)
    assert turn.status_code == "ERROR"


def test_every_conversation_of_the_run_reaches_jaeger(
    stack: LocalStack, pipeline_run: WorkloadRun
) -> None:
    missing: list[str] = []

    def all_stored() -> bool:
        missing[:] = [
            c["trace_id"]
            for c in pipeline_run.conversations
            if stack.jaeger.get_trace(c["trace_id"]) is None
        ]
        return not missing

    eventually(all_stored, timeout=60, what="every trace in Jaeger")
    assert "voice-otel-it" in stack.jaeger.services()
