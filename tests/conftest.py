"""Shared fixtures: fresh in-memory OpenTelemetry providers and clean voice_otel state per test.

Every test runs with its own ``TracerProvider`` (``InMemorySpanExporter`` behind a
``SimpleSpanProcessor``) and ``MeterProvider`` (``InMemoryMetricReader``), installed with
``voice_otel._runtime.use_providers``, and with the fault guard in strict mode so voice_otel's own
bugs fail the test. Afterwards everything is reset: any ``configure()`` is shut down, options,
price table, listeners, SIGTERM handler and the guard's "already logged" set go back to how they
were.

Fixtures to ask for:

* ``otel``: the test's providers (a :class:`Captured`), with ``spans(name)``, ``span(name)``,
  ``stage_spans()``, ``metrics()``, ``points(name, attributes)``, ``point(...)``, ``total(...)``;
  call ``otel.install()`` again after a ``configure()`` to record into it;
* ``lenient``: strict mode off, internal faults are logged once and dropped (fault tests);
* ``options``: voice_otel's runtime options, restored after the test;
* ``clean_otel_env``: no ``OTEL_*`` / ``VOICE_OTEL_*`` variable set (returns ``monkeypatch``).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import voice_otel
from voice_otel import _events, _guard, _runtime, _setup, _usage


class Captured:
    """The in-memory providers of one test and helpers to read what they recorded."""

    def __init__(self) -> None:
        self.span_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader])

    def install(self) -> None:
        """Point voice_otel at these providers (again, e.g. after a ``configure()``)."""
        _runtime.use_providers(self.tracer_provider, self.meter_provider)

    @property
    def tracer(self) -> trace.Tracer:
        """A tracer for the test's own spans (consumers, parents)."""
        return self.tracer_provider.get_tracer("tests")

    # -- spans ---------------------------------------------------------------------------

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans, oldest first, optionally only those called ``name``."""
        spans = list(self.span_exporter.get_finished_spans())
        return spans if name is None else [s for s in spans if s.name == name]

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name`` (fails if there are none or several)."""
        found = self.spans(name)
        names = [s.name for s in self.spans()]
        assert len(found) == 1, f"expected one span {name!r}, finished spans: {names}"
        return found[0]

    def stage_spans(self) -> list[ReadableSpan]:
        """Finished STT, LLM and TTS spans."""
        return [s for s in self.spans() if s.attributes and "voice.stage" in s.attributes]

    # -- metrics -------------------------------------------------------------------------

    def metrics(self) -> dict[str, Metric]:
        """Every metric collected now, by name (cumulative since the test started)."""
        data = self.metric_reader.get_metrics_data()
        found: dict[str, Metric] = {}
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found[metric.name] = metric
        return found

    def points(self, name: str, attributes: Mapping[str, Any] | None = None) -> list[Any]:
        """Data points of metric ``name`` whose attributes include ``attributes``."""
        metric = self.metrics().get(name)
        if metric is None:
            return []
        wanted = dict(attributes or {})
        return [
            p
            for p in metric.data.data_points
            if all((p.attributes or {}).get(k) == v for k, v in wanted.items())
        ]

    def point(self, name: str, attributes: Mapping[str, Any] | None = None) -> Any:
        """The one data point of ``name`` matching ``attributes`` (fails otherwise)."""
        found = self.points(name, attributes)
        assert len(found) == 1, f"expected one point of {name} with {attributes}, got {found}"
        return found[0]

    def total(self, name: str, attributes: Mapping[str, Any] | None = None) -> float:
        """Sum of a counter's values, or count of a histogram's records, over matching points."""
        total = 0.0
        for p in self.points(name, attributes):
            total += p.count if hasattr(p, "bucket_counts") else p.value
        return total

    def clear(self) -> None:
        """Forget finished spans (metrics are cumulative and cannot be cleared)."""
        self.span_exporter.clear()

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture(autouse=True)
def _voice_otel_isolation() -> Iterator[Captured]:
    """Fresh providers, strict guard and clean global state around every test."""
    strict_before = _guard.is_strict()
    stage_listeners, turn_listeners = _events._stage_listeners, _events._turn_listeners
    sigterm_before = signal.getsignal(signal.SIGTERM)
    captured = Captured()
    _setup.reset_for_tests()
    _guard.reset_seen()
    _guard.set_strict(True)
    captured.install()
    try:
        yield captured
    finally:
        voice_otel.shutdown(timeout=5)
        _setup.reset_for_tests()
        _runtime.use_providers(None, None)
        _usage.set_price_table(_usage.default_table())
        _events._stage_listeners, _events._turn_listeners = stage_listeners, turn_listeners
        if signal.getsignal(signal.SIGTERM) is not sigterm_before:
            signal.signal(signal.SIGTERM, sigterm_before)
        _guard.set_strict(strict_before)
        _guard.reset_seen()
        captured.shutdown()


@pytest.fixture
def otel(_voice_otel_isolation: Captured) -> Captured:
    """The test's in-memory providers, installed for voice_otel, with read helpers."""
    return _voice_otel_isolation


@pytest.fixture
def lenient(_voice_otel_isolation: Captured) -> Iterator[None]:
    """Turn strict mode off: voice_otel's internal faults are logged once and dropped."""
    _guard.set_strict(False)
    _guard.reset_seen()
    yield
    _guard.set_strict(True)


@pytest.fixture
def clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Remove every ``OTEL_*`` and ``VOICE_OTEL_*`` variable for the test; returns monkeypatch."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "VOICE_OTEL_")):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def options(_voice_otel_isolation: Captured) -> _runtime.Options:
    """voice_otel's runtime options for this test; changes are undone afterwards."""
    return _runtime.options
