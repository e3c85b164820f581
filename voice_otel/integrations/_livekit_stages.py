"""Stages LiveKit reports after they ran: a :class:`StageRun` that began in the past.

LiveKit Agents measures its STT, LLM and TTS requests itself and reports each one, with its
duration and time to first output, the moment it ends (``metrics_collected``). A stage built
from such a report starts its span and its clock when the request started; everything else
(outcome, time to first output, usage, cost, its share of the turn) goes through
:class:`StageRun` unchanged, ended right as the report arrives, which is when the request ended.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from voice_otel import _runtime, _turn
from voice_otel._stage import STAGE_KEY, StageRun, StageSpec
from voice_otel._usage import Usage


def wall_to_monotonic(wall: float) -> float:
    """A ``time.time()`` value as a ``time.monotonic()`` value (LiveKit reports wall time)."""
    return time.monotonic() - (time.time() - wall)


class PastStageRun(StageRun):
    """A stage call that started at ``start`` (monotonic) and ``start_ns`` (wall clock, ns).

    Built in the context of its turn (or conversation), like any stage: the span's parent and
    the turn it reports to are the current ones.
    """

    __slots__ = ()

    def __init__(self, spec: StageSpec, start: float, start_ns: int) -> None:
        # StageRun's own set-up, with the span and the clock started when the call began.
        self.spec = spec
        self.turn = _turn.current_turn()
        self.conversation = _turn.current_conversation() if self.turn is None else None
        self.usage = Usage()
        self.items = 0
        self.first_at = None
        self.response_model = None
        self.done = False
        self.content = None
        self._token = None
        self.span = _runtime.get_tracer().start_span(
            spec.span_name, kind=SpanKind.CLIENT, attributes=spec.span_attrs, start_time=start_ns
        )
        self._ctx = otel_context.set_value(STAGE_KEY, self, trace.set_span_in_context(self.span))
        self.start = start


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
    run = PastStageRun(spec, wall_to_monotonic(started_wall), int(started_wall * 1e9))
    if first_output is not None and first_output >= 0:
        run.first_output(at=run.start + min(first_output, duration))
    values = {k: v for k, v in usage.items() if v}
    if values:
        run.record_usage(**values)
    run.finish(error, interrupted=cancelled)
    return run
