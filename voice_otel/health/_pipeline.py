"""Live health of STT/LLM/TTS providers from the outcomes of real pipeline calls."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from voice_otel.health._types import HealthState, PipelineStats


@dataclass(frozen=True)
class PipelineHealth:
    """How pipeline call outcomes turn into a provider's live state.

    A provider is degraded while, among its last ``window`` calls that are younger than
    ``max_age`` seconds, at least ``min_calls`` are present and the share of errors reaches
    ``error_ratio``. Interrupted calls (barge-in) are not errors and are not counted.

    Args:
        window: How many recent calls to keep per provider.
        min_calls: Fewer calls than this never change the state.
        error_ratio: Error share (0-1] at which the provider shows degraded.
        max_age: Calls older than this many seconds are forgotten.
    """

    window: int = 20
    min_calls: int = 5
    error_ratio: float = 0.5
    max_age: float = 300.0

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_calls < 1:
            raise ValueError("window and min_calls must be at least 1")
        if self.min_calls > self.window:
            raise ValueError("min_calls must not exceed window")
        if not 0 < self.error_ratio <= 1:
            raise ValueError("error_ratio must be in (0, 1]")
        if self.max_age <= 0:
            raise ValueError("max_age must be positive")


class PipelineWindow:
    """A sliding window of one provider's recent call outcomes (thread-safe)."""

    def __init__(self, settings: PipelineHealth) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._calls: deque[tuple[float, bool]] = deque(maxlen=settings.window)
        self._last_error_type: str | None = None

    def add(self, ok: bool, error_type: str | None = None) -> None:
        """Record one finished call; cheap enough for the pipeline's thread."""
        with self._lock:
            self._calls.append((time.monotonic(), ok))
            if not ok:
                self._last_error_type = error_type

    def stats(self) -> PipelineStats:
        """Counts and state over the calls still inside the window."""
        horizon = time.monotonic() - self.settings.max_age
        with self._lock:
            while self._calls and self._calls[0][0] < horizon:
                self._calls.popleft()
            calls = len(self._calls)
            errors = sum(1 for _, ok in self._calls if not ok)
            last_error_type = self._last_error_type

        ratio = errors / calls if calls else None
        state: HealthState | None = None
        if ratio is not None and calls >= self.settings.min_calls:
            failing = ratio >= self.settings.error_ratio
            state = HealthState.DEGRADED if failing else HealthState.HEALTHY
        return PipelineStats(calls, errors, ratio, state, last_error_type if errors else None)
