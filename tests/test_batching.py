"""The batch span processor configure() installs: spans pass through, a full queue drops cheaply.

A stuck exporter holds the processor's worker thread inside ``export()``, so the queue fills
up deterministically: the worker takes the first span and blocks, every later span waits in the
queue until it is full, and every span after that is dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags

from voice_otel._batching import BatchSpanProcessor

QUEUE = 8
LOGGER = "voice_otel._batching"


class StuckExporter(SpanExporter):
    """Blocks in ``export()`` until released; keeps the names of the spans it was given."""

    def __init__(self, stuck: bool) -> None:
        self.names: list[str] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not stuck:
            self.release.set()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(10)
        self.names.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


class Pipeline:
    def __init__(self, stuck: bool, meter_provider: MeterProvider | None = None) -> None:
        self.exporter = StuckExporter(stuck)
        # Batches of one and no timer: the worker wakes for the first span and exports it alone.
        self.processor = BatchSpanProcessor(
            self.exporter,
            max_queue_size=QUEUE,
            max_export_batch_size=1,
            schedule_delay_millis=60_000,
            meter_provider=meter_provider,
        )
        self.provider = TracerProvider()
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("tests")

    def end_spans(self, count: int, prefix: str = "span") -> None:
        for i in range(count):
            self.tracer.start_span(f"{prefix}-{i}").end()

    def fill_queue(self) -> None:
        """One span in the stuck export, then a full queue."""
        self.end_spans(1, "first")
        assert self.exporter.entered.wait(10), "the worker never called export()"
        self.end_spans(QUEUE, "queued")

    def unstick(self) -> None:
        self.exporter.release.set()
        assert self.processor.force_flush(10_000)


@pytest.fixture
def stuck() -> Iterator[Pipeline]:
    pipeline = Pipeline(stuck=True)
    yield pipeline
    pipeline.exporter.release.set()
    pipeline.provider.shutdown()


def test_spans_pass_through_when_the_queue_is_not_full() -> None:
    pipeline = Pipeline(stuck=False)
    try:
        for batch in range(5):  # at most a queue's worth at a time
            pipeline.end_spans(QUEUE, f"batch{batch}")
            assert pipeline.processor.force_flush(10_000)
    finally:
        pipeline.provider.shutdown()

    expected = [f"batch{b}-{i}" for b in range(5) for i in range(QUEUE)]
    assert sorted(pipeline.exporter.names) == sorted(expected)
    assert pipeline.processor.dropped == 0


def test_a_full_queue_drops_and_counts_the_new_spans(stuck: Pipeline) -> None:
    stuck.fill_queue()
    assert stuck.processor.dropped == 0  # full, nothing dropped yet

    stuck.end_spans(25, "late")
    assert stuck.processor.dropped == 25

    stuck.unstick()
    # What was queued is exported once the exporter answers again; the late spans are gone.
    expected = ["first-0", *(f"queued-{i}" for i in range(QUEUE))]
    assert sorted(stuck.exporter.names) == sorted(expected)

    stuck.end_spans(3, "after")
    assert stuck.processor.force_flush(10_000)
    assert stuck.exporter.names[-3:] == ["after-0", "after-1", "after-2"]
    assert stuck.processor.dropped == 25


def test_drops_warn_at_the_1st_10th_and_100th(
    stuck: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    stuck.fill_queue()
    with caplog.at_level(logging.WARNING):
        stuck.end_spans(150, "late")

    ours = [r for r in caplog.records if r.name == LOGGER]
    assert [r.args for r in ours] == [(QUEUE, 1), (QUEUE, 10), (QUEUE, 100)]
    assert all(r.levelno == logging.WARNING for r in ours)
    # The SDK's own per-span "Queue full" record is never built on the cheap path.
    assert [r for r in caplog.records if r.name != LOGGER] == []
    assert stuck.processor.dropped == 150


def test_unsampled_spans_are_not_counted_as_dropped(stuck: Pipeline) -> None:
    stuck.fill_queue()
    context = SpanContext(
        trace_id=1, span_id=2, is_remote=False, trace_flags=TraceFlags(TraceFlags.DEFAULT)
    )
    stuck.processor.on_end(ReadableSpan("unsampled", context=context))

    assert stuck.processor.dropped == 0


def test_drops_reach_the_sdk_processor_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    pipeline = Pipeline(stuck=True, meter_provider=meter_provider)
    try:
        pipeline.fill_queue()
        pipeline.end_spans(7, "late")
        data = reader.get_metrics_data()
    finally:
        pipeline.exporter.release.set()
        pipeline.provider.shutdown()
        meter_provider.shutdown()

    assert data is not None
    dropped = [
        point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "otel.sdk.processor.span.processed"
        for point in metric.data.data_points
        if (point.attributes or {}).get("error.type") == "queue_full"
    ]
    assert dropped == [7]
