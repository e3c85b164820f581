"""``configure()`` and ``shutdown()``: providers, exporters and the embedded default.

With an OTLP endpoint, spans and metrics go there (gRPC or HTTP). Without one, the embedded
default serves everything in-process: a Prometheus ``/metrics`` endpoint on a local port and an
OTLP-JSON lines file of spans and metrics. Export never blocks the caller: spans wait in a
bounded queue (dropped, and counted by the SDK, when it is full), and ``shutdown()`` returns
within its timeout even when the collector is unreachable.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from voice_otel import _guard, _runtime, _usage
from voice_otel._batching import BatchSpanProcessor
from voice_otel._config import ConfigurationError, Settings, resolve
from voice_otel._contract import (
    RESOURCE_ENVIRONMENT,
    RESOURCE_SERVICE_NAME,
    RESOURCE_SERVICE_VERSION,
)
from voice_otel._delivery import Delivery, WatchedMetricExporter, WatchedSpanExporter
from voice_otel._jsonfile import JsonLinesFile, JsonLinesMetricExporter, JsonLinesSpanExporter

logger = logging.getLogger(__name__)


@dataclass
class Telemetry:
    """What ``configure()`` set up; returned to the caller."""

    settings: Settings
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    prometheus_url: str | None = None
    json_path: Path | None = None
    _server: Any = None
    _closers: list[Any] = field(default_factory=list)
    _delivery: Delivery = field(default_factory=Delivery)

    def describe(self) -> list[str]:
        """One line per destination, for a CLI to print."""
        s = self.settings
        lines = []
        if s.otlp_endpoint:
            lines.append(f"traces and metrics: OTLP {s.otlp_protocol} to {s.otlp_endpoint}")
        if self.prometheus_url:
            lines.append(f"metrics: Prometheus text at {self.prometheus_url}")
        if self.json_path:
            lines.append(f"spans and metrics: OTLP-JSON lines in {self.json_path}")
        if not s.enabled:
            lines.append("telemetry disabled (enabled=False or OTEL_SDK_DISABLED=true)")
        return lines


_lock = threading.RLock()
_current: Telemetry | None = None
_exit_hooks_installed = False


def configure(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    environment: str | None = None,
    otlp_endpoint: str | None = None,
    otlp_protocol: str | None = None,
    metric_export_interval: float | None = None,
    export_timeout: float = 10.0,
    max_queue_size: int = 2048,
    prometheus_port: int | bool | None = None,
    prometheus_host: str = "127.0.0.1",
    json_path: str | Path | bool | None = None,
    capture_content: bool | None = None,
    content_max_length: int = 1000,
    redact: Any = None,
    latency_objective: float | None = None,
    prices: Any = None,
    enabled: bool | None = None,
    strict: bool = False,
    handle_sigterm: bool = True,
) -> Telemetry:
    """Set up tracing and metrics for voice_otel (and for the process, if nothing else has).

    Optional: the decorators work with whatever OpenTelemetry providers the application set up.
    Calling it again with the same settings returns the running setup; with other settings it
    replaces it. Standard variables are honoured (``OTEL_SERVICE_NAME``,
    ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_PROTOCOL``,
    ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_METRIC_EXPORT_INTERVAL``,
    ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SDK_DISABLED``).

    Args:
        service_name: ``service.name`` (default ``OTEL_SERVICE_NAME`` or ``voice-agent``).
        otlp_endpoint: collector URL; when unset, the embedded default serves ``/metrics`` on
            ``prometheus_port`` (default 9464; 0 = any free port; False = off) and writes
            ``json_path`` (default ``voice-otel-telemetry.jsonl``; False = off).
        otlp_protocol: ``grpc`` or ``http/protobuf`` (default: grpc for port 4317, else http).
        metric_export_interval: seconds between metric exports (default 10).
        capture_content: record prompts, completions and transcripts (off by default).
        latency_objective: voice-to-voice objective in seconds; slower turns are marked slow.
        prices: a price table file or mapping overriding the shipped one.
        strict: re-raise voice_otel's own internal errors (for tests).

    Returns:
        A :class:`Telemetry` describing where telemetry goes.

    Raises:
        ConfigurationError: a setting is invalid; the message says what to change.

    Example:
        >>> telemetry = voice_otel.configure(service_name="support-agent")
        >>> print("\\n".join(telemetry.describe()))
    """
    global _current
    settings = resolve(**{k: v for k, v in locals().items()})
    with _lock:
        if _current is not None and _current.settings == settings:
            return _current
        # Checked before the old setup is shut down: bad prices must not leave it untraced.
        try:
            table = _usage.load_table(settings.prices)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        if _current is not None:
            if _holds_globals(_current):
                logger.warning(
                    "voice_otel: configure() called again with new settings. voice_otel's "
                    "own spans and metrics follow the new setup, but OpenTelemetry sets the "
                    "global providers once: other instrumentations (FastAPI, httpx, your own "
                    "tracers) keep the first setup's, which is now shut down and drops what "
                    "they record. Call configure() once, before instrumenting anything."
                )
            else:
                logger.info("voice_otel: configure() called with new settings; replacing it")
            _shutdown_locked(timeout=settings.export_timeout)
        telemetry = _build(settings)
        _usage.set_price_table(table)
        _apply_options(settings)
        _runtime.use_providers(telemetry.tracer_provider, telemetry.meter_provider)
        _set_globals(telemetry)
        _install_exit_hooks(settings)
        _current = telemetry
        return telemetry


def _apply_options(settings: Settings) -> None:
    opts = _runtime.options
    opts.enabled = settings.enabled
    opts.capture_content = settings.capture_content
    opts.content_max_length = settings.content_max_length
    opts.redact = settings.redact
    opts.latency_objective = settings.latency_objective
    _guard.set_strict(settings.strict or _guard.is_strict())


def _build(s: Settings) -> Telemetry:
    attrs: dict[str, Any] = {RESOURCE_SERVICE_NAME: s.service_name}
    if s.service_version:
        attrs[RESOURCE_SERVICE_VERSION] = s.service_version
    if s.environment:
        attrs[RESOURCE_ENVIRONMENT] = s.environment
    resource = Resource.create(attrs)  # merges OTEL_RESOURCE_ATTRIBUTES

    readers: list[MetricReader] = []
    span_exporters: list[SpanExporter] = []
    closers: list[Any] = []
    delivery = Delivery()
    interval_ms = s.metric_export_interval * 1000
    timeout_ms = s.export_timeout * 1000
    if not s.enabled:  # OTEL_SDK_DISABLED: no exporter, no open port, no file
        return Telemetry(
            s,
            TracerProvider(resource=resource, shutdown_on_exit=False),
            MeterProvider(resource=resource, shutdown_on_exit=False),
        )

    # What can fail (the file, the port) comes first, so that a ConfigurationError leaves no
    # exporter thread behind.
    file = None
    if s.json_path is not None:
        try:
            file = JsonLinesFile(s.json_path)
        except OSError as exc:
            raise ConfigurationError(
                f"json_path {str(s.json_path)!r} cannot be written ({exc.strerror}); "
                "pass another path or json_path=False"
            ) from None

    server = prometheus_url = None
    if s.prometheus_port is not None:
        try:
            server, prometheus_url, reader = _prometheus(s)
        except ConfigurationError:
            if file is not None:
                file.discard()  # a failed configure() leaves no empty file behind
            raise
        readers.append(reader)
        closers.append(reader)

    # The local file before the network: the providers flush and shut down their processors
    # and readers in this order, so a collector that is away cannot use up shutdown's time
    # before the file has what it is owed.
    json_path = None
    if file is not None:
        json_path = file.path
        span_exporters.append(JsonLinesSpanExporter(file))
        readers.append(
            PeriodicExportingMetricReader(
                JsonLinesMetricExporter(file), export_interval_millis=interval_ms
            )
        )

    if s.otlp_endpoint:
        span_exp, metric_exp = _otlp_exporters(s)
        span_exporters.append(WatchedSpanExporter(span_exp, delivery))
        readers.append(
            PeriodicExportingMetricReader(
                WatchedMetricExporter(metric_exp, delivery),
                export_interval_millis=interval_ms,
                export_timeout_millis=timeout_ms,
            )
        )

    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for exporter in span_exporters:
        tracer_provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_queue_size=s.max_queue_size,
                max_export_batch_size=min(512, s.max_queue_size),
                export_timeout_millis=timeout_ms,
                schedule_delay_millis=min(1000.0, interval_ms),
            )
        )
    meter_provider = MeterProvider(
        resource=resource, metric_readers=readers, shutdown_on_exit=False
    )
    return Telemetry(
        s, tracer_provider, meter_provider, prometheus_url, json_path, server, closers, delivery
    )


def _otlp_exporters(s: Settings) -> tuple[Any, Any]:
    assert s.otlp_endpoint is not None
    if s.otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        insecure = s.otlp_endpoint.startswith("http://")
        return (
            OTLPSpanExporter(s.otlp_endpoint, insecure=insecure, timeout=s.export_timeout),
            OTLPMetricExporter(s.otlp_endpoint, insecure=insecure, timeout=s.export_timeout),
        )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HTTPMetricExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HTTPSpanExporter,
    )

    return (
        HTTPSpanExporter(f"{s.otlp_endpoint}/v1/traces", timeout=s.export_timeout),
        HTTPMetricExporter(f"{s.otlp_endpoint}/v1/metrics", timeout=s.export_timeout),
    )


def _prometheus(s: Settings) -> tuple[Any, str, MetricReader]:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import start_http_server

    assert s.prometheus_port is not None
    try:
        server, _thread = start_http_server(s.prometheus_port, addr=s.prometheus_host)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve /metrics on {s.prometheus_host}:{s.prometheus_port} ({exc.strerror}); "
            "pass prometheus_port=0 for a free port, another port, or prometheus_port=False"
        ) from None
    port = server.server_address[1]
    return server, f"http://{s.prometheus_host}:{port}/metrics", PrometheusMetricReader()


def _holds_globals(telemetry: Telemetry) -> bool:
    """Whether ``telemetry``'s providers are the process's global ones."""
    return (
        trace.get_tracer_provider() is telemetry.tracer_provider
        or metrics.get_meter_provider() is telemetry.meter_provider
    )


def _set_globals(telemetry: Telemetry) -> None:
    """Make our providers the process's, unless the application already set its own."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(telemetry.tracer_provider)
    else:
        logger.info("voice_otel: a global tracer provider exists; voice_otel uses its own")
    if type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider":
        metrics.set_meter_provider(telemetry.meter_provider)


def current() -> Telemetry | None:
    """The running setup from ``configure()``, if any."""
    return _current


def shutdown(timeout: float = 5.0) -> bool:
    """Flush what can be flushed and stop exporting; returns within ``timeout`` seconds.

    Returns True when everything was flushed in time and the collector took every export made
    while flushing. Safe to call twice, or without configure().
    """
    with _lock:
        return _shutdown_locked(timeout)


def _shutdown_locked(timeout: float) -> bool:
    global _current
    telemetry = _current
    if telemetry is None:
        return True
    _current = None
    _runtime.use_providers(None, None)
    deadline = time.monotonic() + timeout
    telemetry._delivery.reset()  # what failed before shutdown was reported as it happened

    def flush_traces() -> None:
        with _guard.guard("shutdown"):
            telemetry.tracer_provider.force_flush(int(timeout * 1000))
            telemetry.tracer_provider.shutdown()

    def flush_metrics() -> None:
        with _guard.guard("shutdown"):
            telemetry.meter_provider.shutdown(timeout_millis=timeout * 1000)

    # Daemon threads: an unreachable collector cannot hold the process past the timeout. Traces
    # and metrics side by side, so spans stuck on the way to a collector do not keep the final
    # metrics from the file or the collector.
    workers = [
        threading.Thread(target=work, name="voice-otel-shutdown", daemon=True)
        for work in (flush_traces, flush_metrics)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    finished = not any(worker.is_alive() for worker in workers)
    if not finished:
        logger.warning(
            "voice_otel: shutdown timed out after %.1fs; unsent telemetry dropped", timeout
        )
    delivered = telemetry._delivery.failures == 0
    if telemetry._server is not None:
        with _guard.guard("prometheus server"):
            telemetry._server.shutdown()
            telemetry._server.server_close()
    return finished and delivered


def _install_exit_hooks(settings: Settings) -> None:
    global _exit_hooks_installed
    if _exit_hooks_installed:
        return
    _exit_hooks_installed = True
    atexit.register(shutdown, 5.0)
    if not settings.handle_sigterm or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # the application (or its server) handles SIGTERM and exits through atexit

    def on_sigterm(signum: int, frame: Any) -> None:
        shutdown(timeout=5.0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)


def reset_for_tests() -> None:
    """Forget the current setup without shutting providers down (test helper)."""
    global _current
    with _lock:
        _current = None
    _runtime.use_providers(None, None)
    _runtime.options.__dict__.update(replace(_runtime.Options()).__dict__)
