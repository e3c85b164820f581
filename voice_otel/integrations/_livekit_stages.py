"""Stages LiveKit reports after they ran: a :class:`StageRun` started in the past.

LiveKit Agents measures its STT, LLM and TTS requests itself and reports each one, with its
duration and time to first output, the moment it ends (``metrics_collected``). A stage built
from such a report starts its span and its clock when the request started; everything else
(outcome, time to first output, usage, cost, its share of the turn) goes through
:class:`StageRun` unchanged, ended right as the report arrives, which is when the request ended.
"""

from __future__ import annotations

import time
from typing import Any

from voice_otel import _runtime
from voice_otel._stage import StageRun, StageSpec


def wall_to_monotonic(wall: float) -> float:
    """A ``time.time()`` value as a ``time.monotonic()`` value (LiveKit reports wall time)."""
    return time.monotonic() - (time.time() - wall)


def record_stage(
    kind: str,
    *,
    ended_at: float,
    duration: float,
    first_output: float | None,
    cancelled: bool,
    provider: str | None,
    model: str | None,
    usage: dict[str, Any],
    error: BaseException | None = None,
) -> StageRun | None:
    """Record a stage that just ended, from LiveKit's report of it.

    Args:
        kind: ``stt``, ``llm`` or ``tts``.
        ended_at: when it ended (``time.time()``).
        duration: how long it ran, in seconds.
        first_output: seconds from its start to its first output; None (or negative, LiveKit's
            placeholder) when nothing came.
        cancelled: it was cut short (an interruption).
        provider: the provider LiveKit names.
        model: the model LiveKit names.
        usage: tokens, characters, audio seconds (``StageRun.record_usage`` names).
        error: why it failed, if it did.

    Returns:
        The finished run, or None when telemetry is off.
    """
    if not _runtime.options.enabled:
        return None
    duration = max(0.0, duration)
    spec = StageSpec(kind, provider or None, model or None, None, None, {}, kind)
    started_wall = ended_at - duration
    run = StageRun(spec, started=(wall_to_monotonic(started_wall), int(started_wall * 1e9)))
    if first_output is not None and first_output >= 0:
        run.first_output(at=run.start + min(first_output, duration))
    values = {k: v for k, v in usage.items() if v}
    if values:
        run.record_usage(**values)
    run.finish(error, interrupted=cancelled)
    return run
