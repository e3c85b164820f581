"""What a latency report shows: per-turn (or per-interval) latency split by stage, and
percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from voice_otel._contract import LATENCY_COMPONENTS

PERCENTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class TurnTiming:
    """One bar of the waterfall: a turn (from spans) or a time step (from Prometheus).

    Attributes:
        label: x-axis label, e.g. ``"3"`` for turn 3 or ``"12:04"`` for a time step.
        latency: voice-to-voice latency in seconds.
        components: seconds per latency component (``stt``, ``llm``, ``tts``, ``other``).
        group: the conversation id (spans) or ``""``; bars of one group are drawn together.
        outcome: ``ok``, ``error`` or ``interrupted`` (spans only).
        start_ns: start time, for ordering.
    """

    label: str
    latency: float
    components: dict[str, float]
    group: str = ""
    outcome: str = "ok"
    start_ns: int = 0


@dataclass(frozen=True)
class PercentileLine:
    """A percentile of voice-to-voice latency over time (Prometheus source only)."""

    name: str
    points: tuple[tuple[float, float], ...]  # (unix seconds, value in seconds)


@dataclass
class ReportData:
    """Everything the page draws.

    Attributes:
        title: page heading.
        source: where the data came from, shown under the heading.
        turns: the waterfall bars, in order.
        per_turn: True when each bar is one turn (spans), False when it is a time step.
        percentiles: ``{"voice-to-voice": {0.5: s, 0.95: s, 0.99: s}, "stt": {...}, ...}``.
        lines: percentile lines over time (Prometheus source).
        objective: the latency objective in seconds, drawn as a line, if known.
        objective_share: share of turns within the objective when the source measured it
            (Prometheus: from the histogram bucket at the objective).
    """

    title: str
    source: str
    turns: list[TurnTiming]
    per_turn: bool = True
    percentiles: dict[str, dict[float, float]] = field(default_factory=dict)
    lines: list[PercentileLine] = field(default_factory=list)
    objective: float | None = None
    objective_share: float | None = None

    @property
    def within_objective(self) -> float | None:
        """Share of turns at or under the objective, when it is known."""
        if self.objective_share is not None:
            return self.objective_share
        if self.objective is None or not self.turns or not self.per_turn:
            return None
        good = sum(1 for t in self.turns if t.latency <= self.objective)
        return good / len(self.turns)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation between closest ranks.

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside 0..1.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside 0..1")
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def sample_percentiles(turns: Sequence[TurnTiming]) -> dict[str, dict[float, float]]:
    """Percentiles of voice-to-voice latency and of each component over the given turns."""
    if not turns:
        return {}
    out = {"voice-to-voice": {q: percentile([t.latency for t in turns], q) for q in PERCENTILES}}
    for component in LATENCY_COMPONENTS:
        values = [t.components[component] for t in turns if component in t.components]
        if values:
            out[component] = {q: percentile(values, q) for q in PERCENTILES}
    return out
