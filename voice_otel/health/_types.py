"""Value types of the health monitor: states, thresholds, trends and component snapshots."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from voice_otel._contract import HEALTH_STATES


class HealthState(enum.StrEnum):
    """The health of one component, or of the whole service."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"

    @property
    def code(self) -> int:
        """The value reported by the ``voice.health.status`` gauge: 2, 1 or 0."""
        return HEALTH_STATES[self.value]

    @staticmethod
    def worst(*states: HealthState) -> HealthState:
        """The least healthy of ``states`` (healthy when there are none)."""
        return min(states, key=lambda s: s.code, default=HealthState.HEALTHY)


@dataclass(frozen=True)
class Thresholds:
    """When a component counts as degraded or unhealthy.

    Args:
        degraded_latency: A successful check slower than this (seconds) leaves the component
            degraded. ``None`` disables the latency rule.
        unhealthy_latency: A successful check slower than this counts as a failure.
        failures_before_unhealthy: Consecutive failures that make the component unhealthy;
            fewer failures make it degraded.
        successes_before_healthy: Consecutive successes needed, after a failure, before the
            component is healthy again; until then it stays degraded.
    """

    degraded_latency: float | None = None
    unhealthy_latency: float | None = None
    failures_before_unhealthy: int = 3
    successes_before_healthy: int = 2

    def __post_init__(self) -> None:
        if self.failures_before_unhealthy < 1:
            raise ValueError("failures_before_unhealthy must be at least 1")
        if self.successes_before_healthy < 1:
            raise ValueError("successes_before_healthy must be at least 1")
        for name in ("degraded_latency", "unhealthy_latency"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if (
            self.degraded_latency is not None
            and self.unhealthy_latency is not None
            and self.degraded_latency > self.unhealthy_latency
        ):
            raise ValueError("degraded_latency must not exceed unhealthy_latency")


@dataclass(frozen=True)
class Trend:
    """Success rate and latency of a component over its history window."""

    samples: int
    success_rate: float | None
    latency_p50: float | None
    latency_p95: float | None
    latency_mean: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "success_rate": self.success_rate,
            "latency_p50_s": self.latency_p50,
            "latency_p95_s": self.latency_p95,
            "latency_mean_s": self.latency_mean,
        }


@dataclass(frozen=True)
class PipelineStats:
    """Outcomes of recent pipeline calls to a provider, as seen by the stage listener."""

    calls: int
    errors: int
    error_ratio: float | None
    state: HealthState | None  # None until min_calls calls are in the window
    last_error_type: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "errors": self.errors,
            "error_ratio": self.error_ratio,
            "state": self.state.value if self.state else None,
            "last_error_type": self.last_error_type,
        }


@dataclass(frozen=True)
class ComponentHealth:
    """A point-in-time snapshot of one component, safe to read from any thread.

    Attributes:
        name: Component name as reported in ``voice.component`` (e.g. ``llm:openai``).
        kind: What it is, reported in ``voice.component.kind`` (``llm``, ``redis``, ...).
        critical: Whether it can make the overall status unhealthy.
        state: Effective state (worst of probe and pipeline); ``None`` before any result.
        probe_state: State from the component's own check; ``None`` for pipeline-only ones.
        latency: Duration of the last check, seconds.
        consecutive_failures: Failed checks in a row.
        last_error: Sanitized reason of the last failure (no credentials, no traceback).
        last_checked: Wall-clock time (epoch seconds) of the last check.
        last_success_age: Seconds since the last success (or since monitoring began).
        checks: Number of completed checks.
        trend: Success rate and latency over the history window.
        pipeline: Live outcomes of pipeline calls, for STT/LLM/TTS providers.
    """

    name: str
    kind: str
    critical: bool
    state: HealthState | None
    probe_state: HealthState | None
    latency: float | None
    consecutive_failures: int
    last_error: str | None
    last_checked: float | None
    last_success_age: float | None
    checks: int
    trend: Trend
    pipeline: PipelineStats | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``/health/detailed`` returns per component)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "critical": self.critical,
            "state": self.state.value if self.state else "pending",
            "probe_state": self.probe_state.value if self.probe_state else None,
            "latency_s": self.latency,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "last_checked": self.last_checked,
            "last_success_age_s": self.last_success_age,
            "checks": self.checks,
            "trend": self.trend.as_dict(),
            "pipeline": self.pipeline.as_dict() if self.pipeline else None,
        }
