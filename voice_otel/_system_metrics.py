"""System and process metrics (CPU, memory, disk, network) from the maintained instrumentation.

The metrics themselves come from ``opentelemetry-instrumentation-system-metrics`` with
semantic-convention names; this module picks a default set, makes enabling idempotent, and
fixes two ways the first CPU utilization would read 0.0:

- ``process.cpu.utilization`` uses ``psutil.Process.cpu_percent()``, whose first call returns
  0.0 by definition: the instrumentor's process object is primed at enable time.
- ``system.cpu.utilization`` uses ``psutil.cpu_times_percent()``, whose baseline is kept per
  calling thread (psutil 7): the first collection on every new exporter or scrape thread
  compares two nearly simultaneous readings and reads 0.0 for every state. The collection is
  pinned to one long-lived thread, primed at enable time.
"""

from __future__ import annotations

import concurrent.futures
import fnmatch
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import psutil

from voice_otel import _runtime

if TYPE_CHECKING:
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: What :func:`enable_system_metrics` collects by default: the signals an operator of a voice
#: agent looks at, without the per-connection scan (``system.network.connections``), swap
#: (reported with a wrong unit upstream) or the deprecated ``process.runtime.*`` duplicates.
DEFAULT_SYSTEM_METRICS: Mapping[str, Sequence[str] | None] = {
    "system.cpu.time": ("user", "system", "idle", "iowait"),
    "system.cpu.utilization": ("user", "system", "idle", "iowait"),
    "system.memory.usage": ("used", "available", "cached", "free"),
    "system.memory.utilization": ("used", "available"),
    "system.disk.io": ("read", "write"),
    "system.disk.operations": ("read", "write"),
    "system.network.io": ("transmit", "receive"),
    "system.network.errors": ("transmit", "receive"),
    "system.network.dropped.packets": ("transmit", "receive"),
    "process.cpu.time": ("user", "system"),
    "process.cpu.utilization": None,
    "process.memory.usage": None,
    "process.memory.virtual": None,
    "process.thread.count": None,
    "process.open_file_descriptor.count": None,
    "process.context_switches": ("involuntary", "voluntary"),
    "cpython.gc.collections": None,
}

_EXCLUDE_ENV = "OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS"


class _PinnedThread:
    """Runs calls on one long-lived daemon thread, so per-thread baselines stay put."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._queue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        if threading.current_thread() is self._thread:
            return fn()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
                self._thread.start()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((fn, future))
        return future.result(timeout)

    def _main(self) -> None:
        while True:
            fn, future = self._queue.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:
                    future.set_exception(exc)


_pinned = _PinnedThread("voice-otel-system-metrics")
_lock = threading.Lock()
_enabled: tuple[MeterProvider, dict[str, list[str] | None]] | None = None


def enable_system_metrics(
    config: Mapping[str, Sequence[str] | None] | None = None,
    *,
    meter_provider: MeterProvider | None = None,
) -> bool:
    """Record CPU, memory, disk, network and process metrics (semantic-convention names).

    Idempotent: a second call for the same meter provider does nothing and returns ``False``.
    After :func:`voice_otel.configure` created a new provider, calling it again moves the
    metrics there.

    Args:
        config: Metric name -> the states/directions to report (``None`` for metrics without
            any), as understood by ``SystemMetricsInstrumentor``. Default:
            :data:`DEFAULT_SYSTEM_METRICS`, minus what ``OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_
            METRICS`` (comma-separated globs) excludes.
        meter_provider: Default: voice_otel's current meter provider.

    Returns:
        ``True`` if the metrics were (re)registered, ``False`` if they already were.
    """
    global _enabled
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    provider = meter_provider or _runtime.meter_provider()
    wanted = _normalise(DEFAULT_SYSTEM_METRICS if config is None else config, config is None)

    with _lock:
        if _enabled is not None and _enabled[0] is provider:
            if _enabled[1] != wanted:
                logger.warning(
                    "system metrics are already enabled on this meter provider; the new "
                    "config is ignored (an instrument name can be registered only once)"
                )
            return False
        instrumentor = SystemMetricsInstrumentor()
        if _enabled is not None:
            instrumentor.uninstrument()

        instrumentor = SystemMetricsInstrumentor(config=dict(wanted))
        _prime_cpu(instrumentor)
        instrumentor.instrument(meter_provider=provider)
        _enabled = (provider, wanted)
    return True


def disable_system_metrics() -> None:
    """Stop registering system metrics on new providers (instruments already created stay).

    The OpenTelemetry SDK cannot remove an instrument from a meter provider; to drop the
    series, shut the provider down or filter them with a view.
    """
    global _enabled
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    with _lock:
        if _enabled is not None:
            SystemMetricsInstrumentor().uninstrument()
            _enabled = None


def system_metrics_enabled() -> bool:
    """Whether :func:`enable_system_metrics` is in effect."""
    return _enabled is not None


def _normalise(
    config: Mapping[str, Sequence[str] | None], apply_env: bool
) -> dict[str, list[str] | None]:
    excluded = [p.strip() for p in os.environ.get(_EXCLUDE_ENV, "").split(",") if p.strip()]
    result: dict[str, list[str] | None] = {}
    for name, values in config.items():
        if apply_env and any(fnmatch.fnmatch(name, p) for p in excluded):
            continue
        if isinstance(values, str):
            raise TypeError(f"{name}: give a list of states, not the string {values!r}")
        result[name] = None if values is None else list(values)
    return result


def _prime_cpu(instrumentor: SystemMetricsInstrumentor) -> None:
    proc = getattr(instrumentor, "_proc", None)
    if isinstance(proc, psutil.Process):
        proc.cpu_percent(None)
    else:
        logger.warning("system metrics: cannot prime process CPU; its first value may be 0")

    upstream = getattr(type(instrumentor), "_get_system_cpu_utilization", None)
    if upstream is None:
        logger.warning("system metrics: cannot pin system CPU; its first value may be 0")
        return
    _pinned.call(lambda: psutil.cpu_times_percent(percpu=True))

    def pinned_cpu_utilization(options: CallbackOptions) -> Iterable[Observation]:
        return _pinned.call(lambda: list(upstream(instrumentor, options)))

    # The instrument captures this bound attribute when instrument() creates it.
    instrumentor._get_system_cpu_utilization = pinned_cpu_utilization  # type: ignore[method-assign]
