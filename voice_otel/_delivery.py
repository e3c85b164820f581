"""Whether the collector took what was sent: the OTLP exporters, watched.

The SDK's batch processor and metric reader drop an exporter's result, so ``shutdown()`` could
only tell that flushing ended in time, not that anything arrived. These wrappers note each
export's result; ``shutdown()`` reports False when an export failed while it flushed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class Delivery:
    """Failed exports counted since :meth:`reset` (one per setup, shared by both exporters)."""

    def __init__(self) -> None:
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def note(self, ok: bool) -> None:
        if not ok:
            self.failures += 1


class WatchedSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, delivery: Delivery) -> None:
        self._inner = inner
        self._delivery = delivery

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._inner.export(spans)
        self._delivery.note(result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class WatchedMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, delivery: Delivery) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner = inner
        self._delivery = delivery

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        result = self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        self._delivery.note(result is MetricExportResult.SUCCESS)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)
