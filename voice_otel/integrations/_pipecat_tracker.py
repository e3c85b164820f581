"""Conversation, turn and stage bookkeeping for the Pipecat observer, free of Pipecat types.

The observer in :mod:`voice_otel.integrations.pipecat` translates frames into the calls below;
this module decides what they mean for voice_otel's conversation, turns and stages. Keeping it
free of Pipecat makes the state machine testable without the framework.

Every conversation runs in a :class:`contextvars.Context` of its own and every turn in a copy of
it, so telemetry state never leaks into Pipecat's tasks and two turns can overlap (the bot still
stopping after a barge-in while the next turn starts). Stages are ``voice_otel.stage`` handles,
each entered in a copy of its turn's context.

Times (``at``) are ``time.monotonic()`` values.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import voice_otel
from voice_otel import _runtime
from voice_otel._config import ConfigurationError
from voice_otel._stage import StageRun
from voice_otel._turn import Conversation, Turn

logger = logging.getLogger(__name__)


class PipecatServiceError(Exception):
    """A Pipecat service reported an error without an exception object."""


@dataclass
class _Stage:
    """An open stage: the ``voice_otel.stage`` handle, its run and the context it lives in."""

    kind: str
    source: Hashable
    handle: voice_otel.stage
    run: StageRun
    ctx: contextvars.Context
    turn: _TurnState | None
    spoken: list[tuple[str, bool]] = field(default_factory=list)  # (text, carries its spaces)


@dataclass
class _TurnState:
    turn: Turn
    ctx: contextvars.Context
    bot_spoke: bool = False
    unspoken: bool = False  # its LLM response failed or said nothing: no speech will come
    replied: bool = False  # an LLM response completed with text (all a text-only bot gives)
    error: BaseException | None = None
    stages: list[_Stage] = field(default_factory=list)


class PipelineTracker:
    """Maps the events of one Pipecat pipeline run to one voice_otel conversation.

    Turns: a turn opens when the user starts speaking, takes the user-stopped and
    bot-started marks, and ends when the bot has answered and gone quiet (after
    ``turn_end_timeout`` with nothing pending), when the user speaks again, or when the
    pipeline ends. The user speaking over the bot is a barge-in: the turn is marked
    interrupted and ends once the bot's audio has stopped, while the next turn starts. A turn
    the pipeline's end cuts off before any answer ends as interrupted too.

    One tracker serves one pipeline run at a time; every run starts from a clean state, so an
    observer can be reused for the next call.

    Args:
        conversation_id: id of the conversation (default: a new one per run).
        turn_end_timeout: seconds of bot silence, with no LLM or TTS work or function call
            pending, after which a turn is over (0 or less: at once).
        attributes: extra attributes for the conversation span.

    Raises:
        ConfigurationError: ``turn_end_timeout`` is not a finite number.
    """

    def __init__(
        self,
        conversation_id: str | None = None,
        *,
        turn_end_timeout: float = 1.0,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self._conversation_id = conversation_id
        self._attributes = dict(attributes or {})
        self._turn_end_timeout = _seconds("turn_end_timeout", turn_end_timeout)
        self._base_ctx = contextvars.copy_context()  # the creator's context: its span parents
        self._running = False
        self._run: Hashable = None
        self._warned_shared = False
        self._warned_late = False
        self._conv: Conversation | None = None
        self._conv_ctx: contextvars.Context | None = None
        self._reset()

    def _reset(self) -> None:
        """Forget the state of a run, so that the next one starts clean."""
        self._turn: _TurnState | None = None
        self._stopping: list[_TurnState] = []  # barged-in turns waiting for the bot to stop
        self._stt: _Stage | None = None
        self._stt_service: tuple[Hashable, str | None, str | None] = (None, None, None)
        self._llm: dict[Hashable, _Stage] = {}
        self._tts: dict[Hashable, _Stage] = {}
        self._pending_usage: dict[tuple[str, Hashable], dict[str, float]] = {}
        self._user_speaking = False
        self._silence_at: float | None = None
        self._bot_speaking = False
        self._function_calls = 0
        self._end_timer: asyncio.TimerHandle | None = None
        self._cancelled = False

    @property
    def conversation(self) -> Conversation | None:
        """The conversation in progress, if any."""
        return self._conv

    @property
    def running(self) -> bool:
        """Whether a pipeline run is being recorded (between :meth:`start` and :meth:`finish`)."""
        return self._running

    # -- pipeline lifecycle ---------------------------------------------------------------

    def start(self, run: Hashable = None) -> None:
        """The pipeline started: open the conversation of the run ``run`` (its StartFrame).

        A start of another run while one is being recorded means two pipelines share this
        tracker: their events are merged into the open conversation, with a warning.
        """
        if self._running:
            if run != self._run and not self._warned_shared:
                self._warned_shared = self._warned_late = True
                logger.warning(
                    "voice_otel: a VoiceOtelObserver saw a second pipeline start while its "
                    "conversation is open: two pipelines share it and their calls are recorded "
                    "as one conversation; give every PipelineWorker an observer of its own"
                )
            return
        self._reset()
        self._running, self._run = True, run
        if not _runtime.options.enabled:
            return
        conv = voice_otel.conversation(self._conversation_id, **self._attributes)
        ctx = self._base_ctx.copy()
        ctx.run(conv.__enter__)
        self._conv, self._conv_ctx = conv, ctx

    def not_started(self) -> None:
        """A pipeline event came before any start: the observer joined a running pipeline."""
        if self._warned_late:
            return
        self._warned_late = True
        logger.warning(
            "voice_otel: a VoiceOtelObserver saw pipeline frames before a StartFrame (was it "
            "added with add_observer() after the pipeline started?): nothing is recorded until "
            "the next pipeline start; pass it to PipelineWorker(observers=[...]) instead"
        )

    def cancelled(self) -> None:
        """The pipeline is being cancelled: what is still open ends as interrupted."""
        self._cancelled = True

    def finish(self) -> None:
        """The pipeline is gone: close every stage, turn and the conversation."""
        self._cancel_end_timer()
        for stage in [*self._llm.values(), *self._tts.values()]:
            self._close_stage(stage, interrupted=True)
        if self._stt is not None:
            self._close_stage(self._stt, interrupted=self._cancelled)
        for state in [*self._stopping, *([self._turn] if self._turn else [])]:
            # A turn the end cuts off before any answer (or error) did not succeed: interrupted.
            unanswered = not (self._over(state) or state.replied or state.error)
            self._end_turn(state, cancelled=self._cancelled or unanswered)
        if self._pending_usage:
            logger.debug("voice_otel: usage reported after its stage ended was dropped")
        conv, ctx, cancelled = self._conv, self._conv_ctx, self._cancelled
        self._conv = self._conv_ctx = None
        self._running, self._run = False, None
        self._reset()
        if conv is not None and ctx is not None:
            exc = asyncio.CancelledError() if cancelled else None
            ctx.run(conv.__exit__, type(exc) if exc else None, exc, None)

    # -- the user -------------------------------------------------------------------------

    def user_started(self, at: float) -> None:
        """The user's turn started (UserStartedSpeakingFrame)."""
        if self._user_speaking:
            return
        self._user_speaking = True
        self._silence_at = None
        self._cancel_end_timer()
        state = self._turn
        if state is not None and (self._bot_speaking or state.turn.interrupted):
            self._barge_in(state, at)
            state = None
        elif state is not None and (state.bot_spoke or state.unspoken):
            self._end_turn(state)
            state = None
        if state is None:
            self._open_turn()

    def stt_service(self, source: Hashable, provider: str | None, model: str | None) -> None:
        """The pipeline's speech-to-text service, which names the STT stages."""
        self._stt_service = (source, provider, model)

    @property
    def stt_source(self) -> Hashable:
        """The speech-to-text service the STT stages are named after, once known."""
        return self._stt_service[0]

    def vad_started(self) -> None:
        """The VAD heard the user (again): any silence so far was a pause."""
        self._silence_at = None

    def vad_stopped(self, silence_at: float, at: float) -> None:
        """The VAD called the end of speech at ``at``; the silence began at ``silence_at``.

        Transcription keeps the caller waiting from here: the STT stage opens.
        """
        self._silence_at = silence_at
        if self._turn is not None and self._stt is None:
            source, provider, model = self._stt_service
            self._stt = self._open_stage("stt", source, at, provider, model)

    def user_stopped(self, at: float) -> None:
        """The user's turn ended (UserStoppedSpeakingFrame): the voice-to-voice clock starts."""
        self._user_speaking = False
        state = self._turn
        if state is None:
            return
        state.turn.user_stopped_speaking(at=self._silence_at if self._silence_at else at)

    def transcript(self, at: float, text: str) -> None:
        """A final transcript arrived: the STT stage has its output and ends."""
        stage = self._stt
        if stage is None:
            return
        stage.run.first_output(at=max(at, stage.run.start))
        stage.run.record_content(output=text)
        self._close_stage(stage)

    # -- LLM ------------------------------------------------------------------------------

    def llm_started(
        self, source: Hashable, at: float, provider: str | None, model: str | None
    ) -> None:
        self._cancel_end_timer()
        if self._stt is not None:
            self._close_stage(self._stt)
        previous = self._llm.pop(source, None)
        if previous is not None:
            self._close_stage(previous, interrupted=True)
        stage = self._open_stage("llm", source, at, provider, model)
        if stage is not None:
            self._llm[source] = stage

    def llm_text(self, source: Hashable, at: float, text: str) -> None:
        stage = self._llm.get(source)
        if stage is None:
            return
        if stage.run.first_at is None:
            stage.run.first_output(at=max(at, stage.run.start))
        stage.run.items += 1
        if _runtime.options.capture_content:
            stage.run.record_content(output=text)

    def llm_ended(self, source: Hashable) -> None:
        stage = self._llm.pop(source, None)
        if stage is not None:
            self._close_stage(stage)
        self._maybe_schedule_end()

    def function_calls(self, delta: int) -> None:
        """Function calls started (positive) or finished (negative)."""
        self._function_calls = max(0, self._function_calls + delta)
        if delta > 0:
            self._cancel_end_timer()
        else:
            self._maybe_schedule_end()

    # -- TTS ------------------------------------------------------------------------------

    def tts_started(
        self,
        key: Hashable,
        at: float,
        provider: str | None,
        model: str | None,
        voice: str | None,
    ) -> None:
        self._cancel_end_timer()
        if key in self._tts:
            return
        stage = self._open_stage("tts", key, at, provider, model, voice)
        if stage is not None:
            self._tts[key] = stage

    def tts_audio(self, key: Hashable, at: float, seconds: float) -> None:
        stage = self._tts_stage(key)
        if stage is None:
            return
        if stage.run.first_at is None:
            stage.run.first_output(at=max(at, stage.run.start))
        stage.run.items += 1
        if seconds > 0:
            stage.run.record_usage(output_audio_seconds=seconds)

    def tts_text(self, key: Hashable, text: str, spaced: bool = False) -> None:
        """Text the TTS spoke; ``spaced``: it carries the spaces around it (word by word)."""
        stage = self._tts_stage(key)
        if stage is not None and _runtime.options.capture_content:
            stage.spoken.append((text, spaced))

    def tts_stopped(self, key: Hashable) -> None:
        stage = self._tts_stage(key)
        if stage is not None:
            self._close_stage(stage)
        self._maybe_schedule_end()

    # -- usage and errors -----------------------------------------------------------------

    def usage(self, kind: str, source: Hashable, **values: float) -> None:
        """Usage a service reported (tokens, characters, audio seconds)."""
        stage = self._open_stage_of(kind, source)
        if stage is not None:
            stage.run.record_usage(**values)
            return
        pending = self._pending_usage.setdefault((kind, source), {})
        for name, value in values.items():
            pending[name] = pending.get(name, 0.0) + value

    def error(self, source: Hashable, exc: BaseException) -> None:
        """A service reported an error: its open stages end with it."""
        stages = [s for s in (self._stt, *self._llm.values(), *self._tts.values()) if s]
        for stage in stages:
            if _service(stage.source) == source:
                self._close_stage(stage, exc=exc)

    # -- the bot --------------------------------------------------------------------------

    def bot_started(self, at: float) -> None:
        if self._bot_speaking:
            return
        self._bot_speaking = True
        self._cancel_end_timer()
        state = self._turn
        if state is not None and not state.bot_spoke:
            state.bot_spoke = True
            state.turn.bot_started_speaking(at=at)

    def bot_stopped(self, at: float) -> None:
        if not self._bot_speaking:
            return
        self._bot_speaking = False
        # TTS cut short by an interruption ends now, when its audio actually stopped.
        for stage in list(self._tts.values()):
            if stage.turn is not None and stage.turn.turn.interrupted:
                self._close_stage(stage, interrupted=True)
        stopping, self._stopping = self._stopping, []
        for state in stopping:
            state.turn.tts_stopped(at)  # the barge-in's stop latency: the audio is off now
            self._end_turn(state)
        self._maybe_schedule_end()

    def interruption(self, at: float) -> None:
        """Pipecat interrupted the bot: its LLM and TTS work is cancelled."""
        state = self._turn
        if self._bot_speaking and state is not None and state.bot_spoke:
            state.turn.interrupt(at=at)
        for stage in list(self._llm.values()):
            self._close_stage(stage, interrupted=True)
        for stage in list(self._tts.values()):
            if stage.turn is not None and stage.turn.turn.interrupted:
                continue  # ends when the bot's audio stops: that is the stop latency
            self._close_stage(stage, interrupted=True)

    def end_idle_turn(self) -> None:
        """The bot stayed quiet for ``turn_end_timeout``: the turn is over."""
        self._end_timer = None
        state = self._turn
        if state is not None and self._over(state) and not self._busy():
            self._end_turn(state)

    # -- internals ------------------------------------------------------------------------

    def _open_turn(self) -> None:
        conv, ctx = self._conv, self._conv_ctx
        if conv is None or ctx is None:
            return
        turn = conv.turn()
        tctx = ctx.copy()
        tctx.run(turn.__enter__)
        self._turn = _TurnState(turn, tctx)

    def _barge_in(self, state: _TurnState, at: float) -> None:
        state.turn.interrupt(at=at)
        self._turn = None
        if self._bot_speaking:
            self._stopping.append(state)
        else:
            self._end_turn(state)

    def _end_turn(self, state: _TurnState, cancelled: bool = False) -> None:
        if self._turn is state:
            self._turn = None
        for stage in list(state.stages):
            self._close_stage(stage, interrupted=True)
        exc: BaseException | None = None
        if cancelled:
            exc = asyncio.CancelledError()
        elif state.error is not None and state.turn.first_audio_at is None:
            exc = state.error
        state.ctx.run(state.turn.__exit__, type(exc) if exc else None, exc, None)

    @staticmethod
    def _over(state: _TurnState) -> bool:
        """Whether the bot has answered the turn (or been cut off), so it can end."""
        return state.bot_spoke or state.unspoken or state.turn.interrupted

    def _busy(self) -> bool:
        return bool(self._llm or self._tts or self._function_calls or self._bot_speaking)

    def _maybe_schedule_end(self) -> None:
        state = self._turn
        if state is None or not self._over(state):
            return
        if self._busy() or self._end_timer is not None:
            return
        if self._turn_end_timeout <= 0:
            self.end_idle_turn()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.end_idle_turn()
            return
        self._end_timer = loop.call_later(self._turn_end_timeout, self.end_idle_turn)

    def _cancel_end_timer(self) -> None:
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None

    def _open_stage(
        self,
        kind: str,
        source: Hashable,
        at: float,
        provider: str | None,
        model: str | None,
        voice: str | None = None,
    ) -> _Stage | None:
        state = self._turn
        base = state.ctx if state is not None else self._conv_ctx
        if base is None:
            return None
        handle = voice_otel.stage(kind, provider=provider, model=model, voice=voice)
        ctx = base.copy()
        run = ctx.run(handle.__enter__)
        if type(run) is not StageRun:  # telemetry is off
            ctx.run(handle.__exit__, None, None, None)
            return None
        # Frames reach observers through a queue: the stage began when its frame was pushed,
        # which a busy event loop can put well before now. Durations count from then.
        run.start = min(run.start, at)
        stage = _Stage(kind, source, handle, run, ctx, state)
        if state is not None:
            state.stages.append(stage)
        pending = self._pending_usage.pop((kind, _service(source)), None)
        if pending:
            run.record_usage(**pending)
        return stage

    def _tts_stage(self, key: Hashable) -> _Stage | None:
        """The TTS stage of ``key``, or the service's latest when its frames carry no context."""
        stage = self._tts.get(key)
        return stage if stage is not None else self._open_stage_of("tts", _service(key))

    def _open_stage_of(self, kind: str, source: Hashable) -> _Stage | None:
        if kind == "stt":
            return self._stt  # one speech-to-text service per pipeline
        if kind == "llm":
            return self._llm.get(source)
        matches = [s for k, s in self._tts.items() if _service(k) == source]
        return matches[-1] if matches else None

    def _forget(self, stage: _Stage) -> None:
        if self._stt is stage:
            self._stt = None
        for table in (self._llm, self._tts):
            for key, value in list(table.items()):
                if value is stage:
                    del table[key]

    def _close_stage(
        self, stage: _Stage, *, interrupted: bool = False, exc: BaseException | None = None
    ) -> None:
        self._forget(stage)
        state = stage.turn
        if state is not None and stage in state.stages:
            state.stages.remove(stage)
            if exc is not None:
                state.error = exc
            said_nothing = stage.run.first_at is None and not self._function_calls
            if stage.kind == "llm" and not interrupted and (exc is not None or said_nothing):
                state.unspoken = True
            elif stage.kind == "llm" and not interrupted and exc is None:
                state.replied = True
        if stage.spoken:
            stage.run.record_content(input=_join(stage.spoken))
        if interrupted:
            stage.run.finish(interrupted=True)
        stage.ctx.run(stage.handle.__exit__, type(exc) if exc else None, exc, None)


def _seconds(name: str, value: Any) -> float:
    """A number of seconds given to the observer; fails at construction when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(
            f"{name} must be a finite number of seconds (for example {name}=1.0), got {value!r}"
        )
    return float(value)


def _join(parts: list[tuple[str, bool]]) -> str:
    """The text of TTS segments: a space between two unless one side has it already.

    Segments that carry their own spacing (``spaced``, word by word from some services) are
    joined as they are among themselves.
    """
    text, last_spaced = "", False
    for part, spaced in parts:
        if not part:
            continue
        if text and not (spaced and last_spaced) and not (text[-1].isspace() or part[0].isspace()):
            text += " "
        text += part
        last_spaced = spaced
    return text


def _service(key: Hashable) -> Hashable:
    """The service part of a stage key: TTS stages are keyed (service, context id)."""
    return key[0] if isinstance(key, tuple) else key
