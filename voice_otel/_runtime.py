"""Where voice_otel finds its tracer, meter and instruments at call time.

By default everything goes through the global OpenTelemetry API, so an application that set up
OpenTelemetry itself receives our spans and metrics without calling :func:`voice_otel.configure`.
``configure()`` (or :func:`use_providers`, for tests) points voice_otel at specific providers.
Instruments are created once per meter provider and reused.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace

from voice_otel._contract import SCOPE_NAME, Metric, Metrics

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter, MeterProvider
    from opentelemetry.trace import Tracer, TracerProvider

try:
    from importlib.metadata import version as _pkg_version

    VERSION = _pkg_version("voice-otel")
except Exception:  # not installed (running from a checkout)
    VERSION = "0.0.0"


@dataclass
class Options:
    """Behaviour switches read on the hot path; set by configure()."""

    enabled: bool = True
    capture_content: bool = False
    content_max_length: int = 1000
    redact: Any = None  # Callable[[str], str] | None
    latency_objective: float = 1.0


options = Options()

_lock = threading.Lock()
_tracer_provider: TracerProvider | None = None
_meter_provider: MeterProvider | None = None
_tracer_cache: tuple[object, Tracer] | None = None
_instrument_cache: tuple[object, Instruments] | None = None


def use_providers(
    tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
) -> None:
    """Send voice_otel's telemetry to these providers instead of the global ones.

    ``None`` for either means "the global provider". Intended for tests and for applications
    that keep several providers; ``configure()`` calls it for you.
    """
    global _tracer_provider, _meter_provider, _tracer_cache, _instrument_cache
    with _lock:
        _tracer_provider = tracer_provider
        _meter_provider = meter_provider
        _tracer_cache = None
        _instrument_cache = None


def tracer_provider() -> TracerProvider:
    return _tracer_provider or trace.get_tracer_provider()


def meter_provider() -> MeterProvider:
    return _meter_provider or metrics.get_meter_provider()


def get_tracer() -> Tracer:
    global _tracer_cache
    provider = tracer_provider()
    cached = _tracer_cache
    if cached is not None and cached[0] is provider:
        return cached[1]
    tracer = provider.get_tracer(SCOPE_NAME, VERSION)
    _tracer_cache = (provider, tracer)
    return tracer


def get_meter() -> Meter:
    """The voice_otel meter of the current meter provider (for health and system gauges)."""
    return meter_provider().get_meter(SCOPE_NAME, VERSION)


class Instruments:
    """The synchronous instruments of the contract, created on one meter."""

    def __init__(self, meter: Meter) -> None:
        self.genai_duration = _histogram(meter, Metrics.GENAI_DURATION)
        self.genai_ttfc = _histogram(meter, Metrics.GENAI_TTFC)
        self.genai_tokens = _histogram(meter, Metrics.GENAI_TOKENS)
        self.stage_duration = _histogram(meter, Metrics.STAGE_DURATION)
        self.stage_ttfo = _histogram(meter, Metrics.STAGE_TTFO)
        self.turn_latency = _histogram(meter, Metrics.TURN_LATENCY)
        self.turn_latency_component = _histogram(meter, Metrics.TURN_LATENCY_COMPONENT)
        self.turns = _counter(meter, Metrics.TURNS)
        self.interruptions = _counter(meter, Metrics.INTERRUPTIONS)
        self.interruption_stop_latency = _histogram(meter, Metrics.INTERRUPTION_STOP_LATENCY)
        self.wasted_characters = _counter(meter, Metrics.WASTED_CHARACTERS)
        self.wasted_audio = _counter(meter, Metrics.WASTED_AUDIO)
        self.audio = _counter(meter, Metrics.AUDIO_DURATION)
        self.characters = _counter(meter, Metrics.CHARACTERS)
        self.cost = _counter(meter, Metrics.COST)
        self.conversations_active = meter.create_up_down_counter(
            Metrics.CONVERSATIONS_ACTIVE.name,
            unit=Metrics.CONVERSATIONS_ACTIVE.unit,
            description=Metrics.CONVERSATIONS_ACTIVE.description,
        )
        self.conversation_duration = _histogram(meter, Metrics.CONVERSATION_DURATION)


def _histogram(meter: Meter, m: Metric) -> Any:
    return meter.create_histogram(
        m.name,
        unit=m.unit,
        description=m.description,
        explicit_bucket_boundaries_advisory=list(m.buckets) if m.buckets else None,
    )


def _counter(meter: Meter, m: Metric) -> Any:
    return meter.create_counter(m.name, unit=m.unit, description=m.description)


def instruments() -> Instruments:
    global _instrument_cache
    provider = meter_provider()
    cached = _instrument_cache
    if cached is not None and cached[0] is provider:
        return cached[1]
    with _lock:
        built = Instruments(provider.get_meter(SCOPE_NAME, VERSION))
        _instrument_cache = (provider, built)
    return built
