"""The measured work and its variants: bare, instrumented by hand with the raw SDK, decorated.

Every variant does the same stage body: it serialises a small chat request to JSON, the least
work any real STT, LLM or TTS call does before it reaches the network. The hand-instrumented
variants produce what our decorator produces for that call: one CLIENT span with the same name
and attributes, current while the body runs, the outcome attribute, and the same metric records
(``voice.stage.duration`` and ``gen_ai.client.operation.duration``; streams also record time to
first output on ``voice.stage.time_to_first_output`` and ``gen_ai...time_to_first_chunk``).
All spans go to one :class:`DropSpanExporter` behind a ``BatchSpanProcessor``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

import voice_otel
from voice_otel._contract import Metrics
from voice_otel._stage import StageSpec

PROVIDER, MODEL = "openai", "gpt-4o-mini"
REQUEST = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "You are a helpful voice assistant. Answer briefly."},
        {"role": "user", "content": "What time does the pharmacy on Main Street close?"},
    ],
    "stream": True,
    "temperature": 0.3,
}
SPEC = StageSpec("llm", PROVIDER, MODEL)


def work(text: str) -> str:
    """The stage body every variant runs."""
    return json.dumps(REQUEST) + text


class DropSpanExporter(SpanExporter):
    """Accepts every batch and keeps nothing; counts what it was given."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def providers() -> tuple[TracerProvider, MeterProvider, DropSpanExporter]:
    """A tracer provider exporting to a discarding exporter and a meter provider."""
    exporter = DropSpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return tracer_provider, meter_provider, exporter


class RawInstrumentation:
    """The same telemetry as the decorator, written by hand against the OpenTelemetry SDK."""

    def __init__(self, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
        self.tracer = tracer_provider.get_tracer("hand-instrumented")
        meter = meter_provider.get_meter("hand-instrumented")

        def histogram(metric: Any) -> Any:
            return meter.create_histogram(
                metric.name,
                unit=metric.unit,
                explicit_bucket_boundaries_advisory=list(metric.buckets),
            )

        self.stage_duration = histogram(Metrics.STAGE_DURATION)
        self.genai_duration = histogram(Metrics.GENAI_DURATION)
        self.stage_ttfo = histogram(Metrics.STAGE_TTFO)
        self.genai_ttfc = histogram(Metrics.GENAI_TTFC)
        self.span_attrs = dict(SPEC.span_attrs)
        self.stage_attrs, self.genai_attrs = SPEC.outcome_attrs("ok", None)
        self.metric_attrs = dict(SPEC.metric_attrs)
        self.name = SPEC.span_name

    def call(self, text: str) -> str:
        start = time.monotonic()
        with self.tracer.start_as_current_span(
            self.name, kind=SpanKind.CLIENT, attributes=self.span_attrs
        ) as span:
            result = work(text)
            span.set_attribute("voice.outcome", "ok")
            duration = time.monotonic() - start
            self.stage_duration.record(duration, self.stage_attrs)
            self.genai_duration.record(duration, self.genai_attrs)
        return result

    def span_only(self, text: str) -> str:
        """The same span, without the metric records (what a span-only decorator costs)."""
        with self.tracer.start_as_current_span(
            self.name, kind=SpanKind.CLIENT, attributes=self.span_attrs
        ) as span:
            result = work(text)
            span.set_attribute("voice.outcome", "ok")
        return result

    async def acall(self, text: str) -> str:
        start = time.monotonic()
        with self.tracer.start_as_current_span(
            self.name, kind=SpanKind.CLIENT, attributes=self.span_attrs
        ) as span:
            result = work(text)
            span.set_attribute("voice.outcome", "ok")
            duration = time.monotonic() - start
            self.stage_duration.record(duration, self.stage_attrs)
            self.genai_duration.record(duration, self.genai_attrs)
        return result

    def _stream_end(self, span: Any, start: float, first: float | None, items: int) -> None:
        span.set_attribute("voice.outcome", "ok")
        span.set_attribute("voice.stream.items", items)
        duration = time.monotonic() - start
        self.stage_duration.record(duration, self.stage_attrs)
        self.genai_duration.record(duration, self.genai_attrs)
        if first is not None:
            span.set_attribute("voice.stage.time_to_first_output", first - start)
            self.stage_ttfo.record(first - start, self.metric_attrs)
            self.genai_ttfc.record(first - start, self.genai_attrs)

    def stream(self, text: str, items: int) -> Iterator[str]:
        start = time.monotonic()
        first = None
        with self.tracer.start_as_current_span(
            self.name, kind=SpanKind.CLIENT, attributes=self.span_attrs
        ) as span:
            for i in range(items):
                item = work(text) if i == 0 else text
                if first is None:
                    first = time.monotonic()
                yield item
            self._stream_end(span, start, first, items)

    async def astream(self, text: str, items: int) -> AsyncIterator[str]:
        start = time.monotonic()
        first = None
        with self.tracer.start_as_current_span(
            self.name, kind=SpanKind.CLIENT, attributes=self.span_attrs
        ) as span:
            for i in range(items):
                item = work(text) if i == 0 else text
                if first is None:
                    first = time.monotonic()
                yield item
            self._stream_end(span, start, first, items)


# -- the bare and decorated stage bodies -------------------------------------------------------


def bare_call(text: str) -> str:
    return work(text)


async def bare_acall(text: str) -> str:
    return work(text)


def bare_stream(text: str, items: int) -> Iterator[str]:
    for i in range(items):
        yield work(text) if i == 0 else text


async def bare_astream(text: str, items: int) -> AsyncIterator[str]:
    for i in range(items):
        yield work(text) if i == 0 else text


def decorated(fn: Callable[..., Any]) -> Callable[..., Any]:
    return voice_otel.llm(provider=PROVIDER, model=MODEL)(fn)


ours_call = decorated(bare_call)
ours_acall = decorated(bare_acall)
ours_stream = decorated(bare_stream)
ours_astream = decorated(bare_astream)


# -- driving coroutines and async generators without an event loop ------------------------------
# None of the measured coroutines suspends, so stepping them by hand measures the call itself,
# not an event loop's scheduling.


def run_coroutine(coro: Any) -> Any:
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("the measured coroutine suspended")


def drain_async(agen: Any) -> int:
    count = 0
    while True:
        step = agen.__anext__()
        try:
            step.send(None)
        except StopIteration:
            count += 1
            continue
        except StopAsyncIteration:
            return count
        raise RuntimeError("the measured async generator suspended")


def loop_call(fn: Callable[[str], Any]) -> Callable[[int], None]:
    def block(n: int) -> None:
        for _ in range(n):
            fn("?")

    return block


def loop_acall(fn: Callable[[str], Any]) -> Callable[[int], None]:
    def block(n: int) -> None:
        for _ in range(n):
            run_coroutine(fn("?"))

    return block


def loop_stream(fn: Callable[[str, int], Any], items: int) -> Callable[[int], None]:
    def block(n: int) -> None:
        for _ in range(n):
            for _item in fn("?", items):
                pass

    return block


def loop_astream(fn: Callable[[str, int], Any], items: int) -> Callable[[int], None]:
    def block(n: int) -> None:
        for _ in range(n):
            drain_async(fn("?", items))

    return block
