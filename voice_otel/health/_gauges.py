"""The health gauges: observable instruments whose callbacks only read cached results.

Instruments are created once per meter provider (an SDK meter refuses a second instrument of
the same name) and report every running monitor attached to that provider. A callback never
runs a check: it copies the last results under a short lock.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from opentelemetry.metrics import CallbackOptions, Observation

from voice_otel._contract import SCOPE_NAME, Attr, Metric, Metrics
from voice_otel._guard import guard
from voice_otel._runtime import VERSION

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

    from voice_otel.health._types import ComponentHealth


class _Source(Protocol):
    def components(self) -> list[ComponentHealth]: ...


def _status(c: ComponentHealth) -> float | None:
    return float(c.state.code) if c.state is not None else None


def _duration(c: ComponentHealth) -> float | None:
    return c.latency


def _failures(c: ComponentHealth) -> float | None:
    return float(c.consecutive_failures) if c.probe_state is not None else None


def _success_age(c: ComponentHealth) -> float | None:
    return c.last_success_age


_GAUGES: tuple[tuple[Metric, Callable[[ComponentHealth], float | None]], ...] = (
    (Metrics.HEALTH_STATUS, _status),
    (Metrics.HEALTH_CHECK_DURATION, _duration),
    (Metrics.HEALTH_CONSECUTIVE_FAILURES, _failures),
    (Metrics.HEALTH_LAST_SUCCESS_AGE, _success_age),
)


class _Hub:
    """The four health gauges on one meter provider, fed by the attached monitors."""

    def __init__(self, provider: MeterProvider) -> None:
        self._sources: list[weakref.ref[_Source]] = []
        self._lock = threading.Lock()
        meter = provider.get_meter(SCOPE_NAME, VERSION)
        for metric, value in _GAUGES:
            meter.create_observable_gauge(
                metric.name,
                callbacks=[self._callback(metric.name, value)],
                unit=metric.unit,
                description=metric.description,
            )

    def attach(self, source: _Source) -> None:
        with self._lock:
            if not any(ref() is source for ref in self._sources):
                self._sources.append(weakref.ref(source))

    def detach(self, source: _Source) -> None:
        with self._lock:
            self._sources = [r for r in self._sources if r() is not None and r() is not source]

    def _callback(
        self, name: str, value: Callable[[ComponentHealth], float | None]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            observations: list[Observation] = []
            with guard(f"health gauge {name}"):
                with self._lock:
                    sources = [s for s in (r() for r in self._sources) if s is not None]
                for source in sources:
                    for component in source.components():
                        v = value(component)
                        if v is not None:
                            attributes = {
                                Attr.COMPONENT: component.name,
                                Attr.COMPONENT_KIND: component.kind,
                            }
                            observations.append(Observation(v, attributes))
            return observations

        return observe


_hubs: weakref.WeakKeyDictionary[MeterProvider, _Hub] = weakref.WeakKeyDictionary()
_hubs_lock = threading.Lock()


def hub_for(provider: MeterProvider) -> _Hub:
    """The gauges on ``provider``, created on first use."""
    with _hubs_lock:
        hub = _hubs.get(provider)
        if hub is None:
            hub = _hubs[provider] = _Hub(provider)
        return hub
