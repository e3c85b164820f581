"""OTLP-JSON lines file exporters for spans and metrics (the embedded default's local record).

Each export appends one line: an OTLP ``ExportTraceServiceRequest`` or
``ExportMetricsServiceRequest`` in the OTLP/JSON encoding (hex trace and span ids), the same
format the collector's ``file`` exporter writes and its ``otlpjsonfile`` receiver reads. The
protobuf encoding is the OTLP exporter package's own; the file is rotated once at ``max_bytes``
so it cannot fill the disk.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)

_ID_KEYS = frozenset(("traceId", "spanId", "parentSpanId"))


class JsonLinesFile:
    """An append-only, size-bounded, thread-safe lines file shared by both exporters."""

    def __init__(self, path: str | Path, max_bytes: int = 50 * 1024 * 1024) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._created = not self.path.exists()
        with self.path.open("a"):
            pass  # fail now, at configure(), if it cannot be written

    def discard(self) -> None:
        """Remove the file if this object created it and nothing was written (a failed setup)."""
        with self._lock:
            try:
                if self._created and self.path.stat().st_size == 0:
                    self.path.unlink()
            except OSError:
                pass

    def write(self, message: Any) -> None:
        line = json.dumps(_hex_ids(MessageToDict(message)), separators=(",", ":")) + "\n"
        with self._lock:
            try:
                if self.path.stat().st_size + len(line) > self.max_bytes:
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            except FileNotFoundError:
                pass
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)


def _hex_ids(value: Any) -> Any:
    """OTLP/JSON wants ids as hex, protobuf's JSON mapping gives base64."""
    if isinstance(value, dict):
        return {
            k: base64.b64decode(v).hex() if k in _ID_KEYS and isinstance(v, str) else _hex_ids(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids(v) for v in value]
    return value


class JsonLinesSpanExporter(SpanExporter):
    def __init__(self, file: JsonLinesFile) -> None:
        self._file = file

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self._file.write(encode_spans(spans))
        except OSError as exc:
            logger.warning("voice_otel: could not write spans to %s: %s", self._file.path, exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class JsonLinesMetricExporter(MetricExporter):
    def __init__(self, file: JsonLinesFile, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._file = file

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        try:
            self._file.write(encode_metrics(metrics_data))
        except OSError as exc:
            logger.warning("voice_otel: could not write metrics to %s: %s", self._file.path, exc)
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


def read_lines(path: str | Path) -> list[dict[str, Any]]:
    """Read an OTLP-JSON lines file back (for reports and tests)."""
    out = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.append(json.loads(line))
    return out
