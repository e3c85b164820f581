"""One monitored component: its state machine, counters and bounded history."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from voice_otel.health._pipeline import PipelineWindow
from voice_otel.health._types import ComponentHealth, HealthState, Thresholds, Trend


@dataclass(frozen=True)
class Sample:
    """One check result kept in a component's history."""

    at: float  # wall clock, epoch seconds (for display only)
    ok: bool
    latency: float


class Component:
    """Mutable health of one component; every method is thread-safe.

    Probe results arrive from the monitor's loop thread, pipeline outcomes from the user's
    threads, snapshots are taken by gauge callbacks and HTTP handlers.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        *,
        critical: bool,
        thresholds: Thresholds,
        history: int,
        probed: bool,
        pipeline: PipelineWindow | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.critical = critical
        self.thresholds = thresholds
        self.probed = probed
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._history: deque[Sample] = deque(maxlen=max(1, history))
        self._state: HealthState | None = None
        self._recovering = False
        self._was_unhealthy = False
        self._failures = 0
        self._successes = 0
        self._latency: float | None = None
        self._last_error: str | None = None
        self._last_checked: float | None = None
        self._since = time.monotonic()
        self._last_success: float | None = None
        self._checks = 0

    @property
    def probe_state(self) -> HealthState | None:
        """The state from probes alone (``None`` before the first result)."""
        with self._lock:
            return self._state

    @property
    def last_error(self) -> str | None:
        with self._lock:
            return self._last_error

    def record(self, ok: bool, latency: float, reason: str | None) -> HealthState:
        """Fold one probe result into the state; returns the new probe state."""
        t = self.thresholds
        slow_fail = ok and t.unhealthy_latency is not None and latency > t.unhealthy_latency
        if slow_fail:
            ok = False
            reason = f"latency {latency:.3f}s above the unhealthy threshold {t.unhealthy_latency}s"

        now = time.monotonic()
        with self._lock:
            self._checks += 1
            self._latency = latency
            self._last_checked = time.time()
            self._history.append(Sample(self._last_checked, ok, latency))

            if ok:
                self._successes += 1
                self._failures = 0
                self._last_success = now
                if self._recovering and self._successes < t.successes_before_healthy:
                    state = HealthState.DEGRADED
                else:
                    self._recovering = self._was_unhealthy = False
                    slow = t.degraded_latency is not None and latency > t.degraded_latency
                    state = HealthState.DEGRADED if slow else HealthState.HEALTHY
            else:
                self._failures += 1
                self._successes = 0
                self._recovering = True
                self._last_error = reason or "check failed"
                # Until it is healthy again, a component that was unhealthy falls straight
                # back on any failure: a flapping dependency must not read as merely degraded.
                if self._failures >= t.failures_before_unhealthy or self._was_unhealthy:
                    state = HealthState.UNHEALTHY
                    self._was_unhealthy = True
                else:
                    state = HealthState.DEGRADED

            self._state = state
            return state

    def snapshot(self) -> ComponentHealth:
        """A consistent, immutable copy of the component's health."""
        pipeline = self.pipeline.stats() if self.pipeline is not None else None
        now = time.monotonic()
        with self._lock:
            probe_state = self._state
            success_age = now - (self._last_success if self._last_success else self._since)
            history = list(self._history)
            latency, failures, checks = self._latency, self._failures, self._checks
            last_error, last_checked = self._last_error, self._last_checked

        states = [s for s in (probe_state, pipeline.state if pipeline else None) if s is not None]
        return ComponentHealth(
            name=self.name,
            kind=self.kind,
            critical=self.critical,
            state=HealthState.worst(*states) if states else None,
            probe_state=probe_state,
            latency=latency,
            consecutive_failures=failures,
            last_error=last_error,
            last_checked=last_checked,
            last_success_age=success_age if self.probed else None,
            checks=checks,
            trend=trend(history),
            pipeline=pipeline,
        )


def trend(history: list[Sample]) -> Trend:
    """Success rate over all samples, latency percentiles over the successful ones."""
    if not history:
        return Trend(0, None, None, None, None)
    latencies = sorted(s.latency for s in history if s.ok)
    success_rate = sum(1 for s in history if s.ok) / len(history)
    if not latencies:
        return Trend(len(history), success_rate, None, None, None)
    return Trend(
        samples=len(history),
        success_rate=round(success_rate, 4),
        latency_p50=_nearest_rank(latencies, 0.50),
        latency_p95=_nearest_rank(latencies, 0.95),
        latency_mean=sum(latencies) / len(latencies),
    )


def _nearest_rank(sorted_values: list[float], q: float) -> float:
    index = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[index]
