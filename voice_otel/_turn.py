"""Conversations and turns: the spans around stages, and voice-to-voice latency.

A turn's voice-to-voice latency runs from "user stopped speaking" (a mark; the turn start by
default) to the bot's first audio in the turn (the first chunk of a TTS stage, or an explicit
mark). It is split into stages on the turn's timeline: every instant of it is attributed to TTS
(waiting for first audio), else LLM (waiting for first token), else STT, else "other", so the
parts add up to the whole. Everything is recorded when the turn ends, never at conversation end.

State lives in context variables, so concurrent conversations in tasks or threads never mix.
"""

from __future__ import annotations

import contextvars
import itertools
import time
import uuid
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from voice_otel import _events, _runtime, _values
from voice_otel._contract import Attr, GenAI, SpanName
from voice_otel._guard import guard, report_fault

if TYPE_CHECKING:
    from voice_otel._stage import StageRun

_conversation_var: contextvars.ContextVar[Conversation | None] = contextvars.ContextVar(
    "voice_otel_conversation", default=None
)
_turn_var: contextvars.ContextVar[Turn | None] = contextvars.ContextVar(
    "voice_otel_turn", default=None
)

_PRIORITY = ("tts", "llm", "stt")  # who owns an instant when several stages overlap


def current_conversation() -> Conversation | None:
    """The conversation this code runs in, if any."""
    return _conversation_var.get()


def current_turn() -> Turn | None:
    """The turn this code runs in, if any."""
    return _turn_var.get()


@dataclass
class TurnRecord:
    """What one turn measured, available as ``turn.record`` after it ends."""

    index: int
    turn_id: str
    conversation_id: str | None
    outcome: str
    latency: float | None
    components: dict[str, float]
    stt_duration: float | None
    llm_time_to_first_token: float | None
    tts_time_to_first_byte: float | None
    interrupted: bool
    interruption_stop_latency: float | None
    wasted_audio_seconds: float
    wasted_characters: float
    cost: float
    slow: bool
    trace_id: str | None = None


class _Scope:
    """Span + context attach/detach shared by conversations and turns (sync and async)."""

    _span: Span | None = None
    _token: object | None = None
    _var_token: contextvars.Token[Any] | None = None
    _active = False  # entered with telemetry enabled: there is something to record at exit

    def _open(self, name: str, attributes: dict[str, Any], parent: Span | None) -> None:
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        self._span = _runtime.get_tracer().start_span(name, context=ctx, attributes=attributes)
        self._token = otel_context.attach(trace.set_span_in_context(self._span))

    def _close(self, exc: BaseException | None, attributes: dict[str, Any]) -> None:
        """End the span and restore the context; runs once, and both happen even when
        recording on the span fails."""
        span, token = self._span, self._token
        self._span = self._token = None
        try:
            if span is not None:
                try:
                    if attributes:
                        span.set_attributes(attributes)
                    if exc is not None and isinstance(exc, Exception):
                        span.record_exception(exc)
                        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                        span.set_attribute(GenAI.ERROR_TYPE, type(exc).__qualname__)
                finally:
                    span.end()
        finally:
            if token is not None:
                try:
                    otel_context.detach(token)  # type: ignore[arg-type]
                except Exception as err:  # exited in another task or thread than entered
                    report_fault("detach", err)


class Conversation(_Scope):
    """One call. Use :func:`voice_otel.conversation` to create it."""

    def __init__(self, conversation_id: str | None = None, **attributes: Any) -> None:
        self.id = _values.identifier(conversation_id, "conversation id") or uuid.uuid4().hex
        self.attributes = _values.attributes(attributes, "conversation attribute")
        self.turns = 0
        self.interruptions = 0
        self.cost = 0.0
        self._indexes = itertools.count(1)
        self._start = 0.0

    def turn(self, turn_id: str | None = None, **attributes: Any) -> Turn:
        """A turn of this conversation (same as :func:`voice_otel.turn` inside it)."""
        return Turn(turn_id, conversation=self, **attributes)

    def __enter__(self) -> Conversation:
        self._active = _runtime.options.enabled
        if self._active:
            with guard("conversation start"):
                self._start = time.monotonic()
                attrs = {GenAI.CONVERSATION_ID: self.id, **self.attributes}
                self._open(SpanName.CONVERSATION, attrs, None)
                _runtime.instruments().conversations_active.add(1)
        self._var_token = _conversation_var.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._var_token is not None:
            with guard("conversation context"):
                _conversation_var.reset(self._var_token)
        if not self._active:
            return
        with guard("conversation metrics"):
            inst = _runtime.instruments()
            inst.conversations_active.add(-1)
            inst.conversation_duration.record(time.monotonic() - self._start)
        with guard("conversation end"):
            self._close(
                exc,
                {
                    Attr.CONVERSATION_TURNS: self.turns,
                    Attr.CONVERSATION_INTERRUPTIONS: self.interruptions,
                    Attr.COST: self.cost,
                },
            )

    async def __aenter__(self) -> Conversation:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


@dataclass
class _TurnTimeline:
    intervals: list[tuple[str, float, float]] = field(default_factory=list)
    stt_duration: float | None = None
    llm_ttft: float | None = None
    tts_ttfb: float | None = None
    tts_audio: float = 0.0
    tts_characters: float = 0.0
    stop_latency: float | None = None
    attempts: dict[int, int] = field(default_factory=dict)
    tts_attrs: dict[str, Any] = field(default_factory=dict)


class Turn(_Scope):
    """One exchange of a conversation. Use :func:`voice_otel.turn` to create it.

    Marks (all optional; ``at`` is a ``time.monotonic()`` value, default now):

    * :meth:`user_stopped_speaking` starts the voice-to-voice clock (default: the turn start);
    * :meth:`bot_started_speaking` stops it (default: the first audio of a TTS stage);
    * :meth:`interrupt` records a barge-in.

    :attr:`record` is None until the turn ends. With telemetry disabled (``enabled=False``,
    ``OTEL_SDK_DISABLED``) nothing is measured: the record has the outcome, no latency and no
    components.
    """

    def __init__(
        self, turn_id: str | None = None, *, conversation: Conversation | None = None, **attrs: Any
    ) -> None:
        self.id = _values.identifier(turn_id, "turn id") or uuid.uuid4().hex[:16]
        self.attributes = _values.attributes(attrs, "turn attribute")
        self._conversation = conversation
        self.index = 0
        self.record: TurnRecord | None = None
        self.user_stopped_at: float | None = None
        self.first_audio_at: float | None = None
        self.interrupted_at: float | None = None
        self.played_audio_seconds: float | None = None
        self.cost = 0.0
        self.timeline = _TurnTimeline()
        self._start = 0.0
        self._explicit_audio_mark = False
        self._streams: list[StageRun] = []

    # -- marks -----------------------------------------------------------------------------

    def user_stopped_speaking(self, at: float | None = None) -> None:
        """Mark the end of the user's speech: the voice-to-voice clock starts here."""
        at = _values.instant(at, "user_stopped_speaking(at)")
        self.user_stopped_at = time.monotonic() if at is None else at

    def bot_started_speaking(self, at: float | None = None) -> None:
        """Mark the bot's first audio reaching the caller (overrides the TTS first chunk)."""
        at = _values.instant(at, "bot_started_speaking(at)")
        self.first_audio_at = time.monotonic() if at is None else at
        self._explicit_audio_mark = True

    def interrupt(self, played_audio_seconds: float | None = None, at: float | None = None) -> None:
        """Mark a barge-in: the user spoke over the bot.

        Args:
            played_audio_seconds: bot audio the caller actually heard, if the transport knows;
                otherwise it is estimated as real-time playback since the first audio.
            at: when it happened (``time.monotonic()``), default now.
        """
        if self.interrupted_at is None:
            at = _values.instant(at, "interrupt(at)")
            self.interrupted_at = time.monotonic() if at is None else at
        played = _values.duration(played_audio_seconds, "interrupt(played_audio_seconds)")
        if played is not None:
            self.played_audio_seconds = played

    @property
    def interrupted(self) -> bool:
        return self.interrupted_at is not None

    # -- called by stages ------------------------------------------------------------------

    def stage_waited(self, stage: str, start: float, end: float) -> None:
        """A stage kept the caller waiting from ``start`` to ``end`` (its first output)."""
        self.timeline.intervals.append((stage, start, end))

    def first_audio(self, at: float) -> None:
        if self.first_audio_at is None:
            self.first_audio_at = at

    def tts_stopped(self, at: float) -> None:
        if self.interrupted_at is not None and self.timeline.stop_latency is None:
            stop_latency = max(0.0, at - self.interrupted_at)
            if _values.measurable(stop_latency):
                self.timeline.stop_latency = stop_latency

    def stream_started(self, run: StageRun) -> None:
        """A streaming stage began in this turn; the turn ends it if its consumer does not."""
        self._streams.append(run)

    def next_attempt(self, spec_id: int, failed: bool) -> int:
        """Attempt number of a stage spec in this turn: the failed calls of it right before.

        0 for a first try; a success ends the series, so a later call is not a retry.
        """
        attempts = self.timeline.attempts
        n = attempts.get(spec_id, 0)
        if failed:
            attempts[spec_id] = n + 1
        else:
            attempts.pop(spec_id, None)
        return n

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Turn:
        self._active = _runtime.options.enabled
        if self._active:
            with guard("turn start"):
                conv = self._conversation or _conversation_var.get()
                self._conversation = conv
                self._start = time.monotonic()
                attrs: dict[str, Any] = {Attr.TURN_ID: self.id, **self.attributes}
                if conv is not None:
                    self.index = next(conv._indexes)
                    attrs[GenAI.CONVERSATION_ID] = conv.id
                    attrs[Attr.TURN_INDEX] = self.index
                # Parent on the conversation span, not on whatever span is current: a turn
                # started from a helper task must not nest under the previous turn's stage.
                self._open(SpanName.TURN, attrs, conv._span if conv is not None else None)
        self._var_token = _turn_var.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._var_token is not None:
            with guard("turn context"):
                _turn_var.reset(self._var_token)
        if not self._active:
            self.record = self._unmeasured(exc)
            return
        try:
            self._finish(exc)
        except Exception as err:
            report_fault("turn end", err)
        finally:
            with guard("turn end"):
                self._close(exc, {})  # no-op unless _finish failed before closing
            if self.record is None:  # our fault: the caller still gets a record to read
                self.record = self._unmeasured(exc)

    async def __aenter__(self) -> Turn:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    @property
    def conversation(self) -> Conversation | None:
        """The conversation this turn belongs to, once it has started."""
        return self._conversation

    def _outcome(self, exc: BaseException | None) -> str:
        if (exc is not None and not isinstance(exc, Exception)) or self.interrupted:
            return "interrupted"  # a barge-in, or cancelled
        return "error" if exc is not None else "ok"

    def _unmeasured(self, exc: BaseException | None) -> TurnRecord:
        """The record of a turn that measured nothing (telemetry disabled): no latency."""
        return TurnRecord(
            index=self.index,
            turn_id=self.id,
            conversation_id=self._conversation.id if self._conversation else None,
            outcome=self._outcome(exc),
            latency=None,
            components={},
            stt_duration=None,
            llm_time_to_first_token=None,
            tts_time_to_first_byte=None,
            interrupted=self.interrupted,
            interruption_stop_latency=None,
            wasted_audio_seconds=0.0,
            wasted_characters=0.0,
            cost=0.0,
            slow=False,
        )

    def _finish(self, exc: BaseException | None) -> None:
        # A stream the consumer left with `break` is closed only when it is garbage-collected,
        # long after this turn. It stopped here at the latest: end it now, as cut short, so its
        # timing, usage and cost belong to this turn (no-op for streams that already ended).
        for run in self._streams:
            run.finish(interrupted=True)
        self._streams.clear()
        t0 = self._start if self.user_stopped_at is None else self.user_stopped_at
        t1 = self.first_audio_at
        latency = t1 - t0 if t1 is not None and t1 >= t0 else None
        if latency is not None and not _values.measurable(latency):
            latency = None  # marks so far apart that the difference is not a number
        components = (
            decompose(self.timeline.intervals, t0, t1)
            if t1 is not None and latency is not None
            else {}
        )
        objective = _runtime.options.latency_objective
        slow = latency is not None and latency > objective

        outcome = self._outcome(exc)

        wasted_audio, wasted_chars = self._wasted()
        tl = self.timeline
        attrs: dict[str, Any] = {
            Attr.OUTCOME: outcome,
            Attr.INTERRUPTED: self.interrupted,
            Attr.COST: self.cost,
            Attr.TURN_SLOW: slow,
            Attr.TURN_OBJECTIVE: objective,
        }
        if latency is not None:
            attrs[Attr.TURN_LATENCY] = latency
            for name, value in components.items():
                attrs[f"{Attr.TURN_LATENCY}.{name}"] = value
        if self.interrupted:
            if tl.stop_latency is not None:
                attrs[Attr.INTERRUPTION_STOP_LATENCY] = tl.stop_latency
            attrs[Attr.WASTED_AUDIO] = wasted_audio
            attrs[Attr.WASTED_CHARACTERS] = wasted_chars
            if self._conversation is not None:
                self._conversation.interruptions += 1
        # The histogram exemplars link to this span: record while it is still current.
        with guard("turn metrics"):
            self._record_metrics(latency, components, outcome, wasted_audio, wasted_chars)
        if self._conversation is not None:
            self._conversation.turns += 1
            self._conversation.cost += self.cost

        trace_id = None
        if self._span is not None:
            ctx = self._span.get_span_context()
            trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
        with guard("turn end"):
            self._close(exc, attrs)
        self.record = TurnRecord(
            index=self.index,
            turn_id=self.id,
            conversation_id=self._conversation.id if self._conversation else None,
            outcome=outcome,
            latency=latency,
            components=components,
            stt_duration=tl.stt_duration,
            llm_time_to_first_token=tl.llm_ttft,
            tts_time_to_first_byte=tl.tts_ttfb,
            interrupted=self.interrupted,
            interruption_stop_latency=tl.stop_latency,
            wasted_audio_seconds=wasted_audio,
            wasted_characters=wasted_chars,
            cost=self.cost,
            slow=slow,
            trace_id=trace_id,
        )
        _events.emit_turn(self.record)

    def _record_metrics(
        self,
        latency: float | None,
        components: dict[str, float],
        outcome: str,
        wasted_audio: float,
        wasted_chars: float,
    ) -> None:
        inst = _runtime.instruments()
        tl = self.timeline
        if latency is not None:
            inst.turn_latency.record(latency)
            for name, value in components.items():
                inst.turn_latency_component.record(value, _COMPONENT_ATTRS[name])
        inst.turns.add(1, _OUTCOME_ATTRS[outcome])
        if self.interrupted:
            inst.interruptions.add(1)
            if tl.stop_latency is not None:
                inst.interruption_stop_latency.record(tl.stop_latency)
            if wasted_audio:
                inst.wasted_audio.add(wasted_audio, tl.tts_attrs)
                inst.wasted_characters.add(wasted_chars, tl.tts_attrs)

    def _wasted(self) -> tuple[float, float]:
        """Estimated TTS audio (s) and characters produced but never heard."""
        if self.interrupted_at is None:
            return 0.0, 0.0
        produced = self.timeline.tts_audio
        if produced <= 0:
            return 0.0, 0.0
        played = self.played_audio_seconds
        if played is None:
            started = self.first_audio_at
            played = 0.0 if started is None else max(0.0, self.interrupted_at - started)
        wasted = max(0.0, produced - min(played, produced))
        return wasted, self.timeline.tts_characters * wasted / produced


_COMPONENT_ATTRS = {name: {Attr.LATENCY_COMPONENT: name} for name in ("stt", "llm", "tts", "other")}
_OUTCOME_ATTRS = {name: {Attr.OUTCOME: name} for name in ("ok", "error", "interrupted")}


def decompose(intervals: list[tuple[str, float, float]], t0: float, t1: float) -> dict[str, float]:
    """Split ``[t0, t1]`` among stages; every instant goes to one part, so parts sum to the whole.

    An instant covered by several stage intervals goes to the one later in the pipeline (TTS,
    then LLM, then STT); an instant covered by none is "other" (turn detection, app code, ...).
    """
    clipped = [(s, max(a, t0), min(b, t1)) for s, a, b in intervals if b > t0 and a < t1]
    points = sorted({t0, t1, *(p for _, a, b in clipped for p in (a, b))})
    parts = dict.fromkeys(("stt", "llm", "tts", "other"), 0.0)
    for lo, hi in itertools.pairwise(points):
        owners = {s for s, a, b in clipped if a <= lo and b >= hi}
        owner = next((s for s in _PRIORITY if s in owners), "other")
        parts[owner] += hi - lo
    return parts


def conversation(conversation_id: str | None = None, **attributes: Any) -> Conversation:
    """Trace one call: a ``voice.conversation`` span that its turns nest under.

    Works as ``with`` and ``async with``. Extra keyword arguments become span attributes.

    Example:
        >>> with voice_otel.conversation("call-42") as conv:
        ...     with voice_otel.turn() as t:
        ...         ...
    """
    return Conversation(conversation_id, **attributes)


def turn(turn_id: str | None = None, **attributes: Any) -> Turn:
    """Trace one turn of the current conversation (or a standalone turn outside one)."""
    return Turn(turn_id, **attributes)
