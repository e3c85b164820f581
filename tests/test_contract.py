"""The telemetry contract holds: docs match it, and the real exporters produce its names."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import voice_otel
from voice_otel import _guard, _runtime
from voice_otel._contract import SPANS, Metrics, prometheus_name
from voice_otel._telemetry_doc import render

ROOT = Path(__file__).resolve().parents[1]


class ProviderDown(Exception):
    pass


async def _full_pipeline() -> None:
    """A conversation that exercises every metric the SDK records."""
    attempts = {"n": 0}

    @voice_otel.stt(provider="openai", model="whisper-1")
    def transcribe(audio: bytes) -> str:
        voice_otel.record_usage(input_audio_seconds=1.5)
        return "hello"

    @voice_otel.llm(provider="openai", model="gpt-4o-mini")
    async def reply(text: str):  # type: ignore[no-untyped-def]
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise ProviderDown("503")
        for word in ("hi", " there"):
            yield word
        voice_otel.record_usage(input_tokens=12, output_tokens=2)

    @voice_otel.tts(provider="openai", model="tts-1", voice="alloy")
    def speak(text: str):  # type: ignore[no-untyped-def]
        voice_otel.record_usage(characters=len(text))
        for _ in range(4):
            voice_otel.record_usage(output_audio_seconds=0.25)
            yield b"\0" * 320

    async with voice_otel.conversation("contract-check"):
        for index in range(2):
            async with voice_otel.turn() as turn:
                turn.user_stopped_speaking()
                text = transcribe(b"")
                try:
                    words = [w async for w in reply(text)]
                except ProviderDown:
                    words = [w async for w in reply(text)]
                stream = speak("".join(words))
                for n, _chunk in enumerate(stream, 1):
                    if index == 1 and n == 2:
                        turn.interrupt()
                        stream.close()
                        break


@pytest.fixture
def exporters():  # type: ignore[no-untyped-def]
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[reader])
    _runtime.use_providers(tracer_provider, meter_provider)
    _guard.set_strict(True)
    try:
        yield registry, spans
    finally:
        _guard.set_strict(False)
        _runtime.use_providers(None, None)
        meter_provider.shutdown()


def test_telemetry_doc_matches_the_contract() -> None:
    assert (ROOT / "docs" / "telemetry.md").read_text() == render(), (
        "docs/telemetry.md is stale: run `voice-otel telemetry-doc > docs/telemetry.md`"
    )


def test_prometheus_exporter_produces_the_documented_names_and_labels(exporters) -> None:  # type: ignore[no-untyped-def]
    registry, _ = exporters
    asyncio.run(_full_pipeline())
    text = generate_latest(registry).decode()
    samples = {
        s.name: s.labels for family in text_string_to_metric_families(text) for s in family.samples
    }
    scope_labels = {"otel_scope_name", "otel_scope_version", "otel_scope_schema_url", "le"}
    for metric in Metrics.all():
        if metric.emitted_by != "sdk":
            continue
        base = metric.prometheus_name
        expected = base + "_bucket" if metric.instrument == "histogram" else base
        assert expected in samples, f"{metric.name} not exported as {expected}"
        allowed = {a.replace(".", "_") for a in metric.attributes} | scope_labels
        got = {
            label for name, labels in samples.items() if name.startswith(base) for label in labels
        }
        assert got <= allowed, f"{metric.name} carries unbounded labels {got - allowed}"


def test_every_span_attribute_is_in_the_contract(exporters) -> None:  # type: ignore[no-untyped-def]
    _, spans = exporters
    asyncio.run(_full_pipeline())
    declared = {a for spec in SPANS for a in spec.attributes}
    finished = spans.get_finished_spans()
    assert {s.name for s in finished} >= {
        "voice.conversation",
        "voice.turn",
        "speech_to_text whisper-1",
        "chat gpt-4o-mini",
        "text_to_speech tts-1",
    }
    for span in finished:
        undeclared = set(span.attributes or {}) - declared
        assert not undeclared, f"{span.name} sets attributes missing from the contract"


@pytest.mark.parametrize(
    ("name", "unit", "instrument", "expected"),
    [
        ("voice.turn.latency", "s", "histogram", "voice_turn_latency_seconds"),
        ("voice.turns", "{turn}", "counter", "voice_turns_total"),
        ("gen_ai.client.token.usage", "{token}", "histogram", "gen_ai_client_token_usage"),
        ("voice.usage.audio", "s", "counter", "voice_usage_audio_seconds_total"),
        ("voice.health.status", "{status}", "observable_gauge", "voice_health_status"),
    ],
)
def test_prometheus_name_translation(name: str, unit: str, instrument: str, expected: str) -> None:
    assert prometheus_name(name, unit, instrument) == expected
