"""Conversation, turn and stage bookkeeping for the LiveKit adapter, free of LiveKit types.

:mod:`voice_otel.integrations.livekit` turns an ``AgentSession``'s events into the calls below.
Times are LiveKit's: ``time.time()`` values. A session is one conversation in a
:class:`contextvars.Context` of its own; each turn runs in a copy of it, so nothing leaks into
LiveKit's tasks and a turn that is still ending never mixes with the next one.

Turns follow the user: one opens when the user starts speaking and takes the user-stopped mark;
the agent's reply (its ``ChatMessage``) gives the bot-started mark and whether the user cut it
off; the turn ends when the agent goes back to listening. The user starting to speak while the
agent speaks is a barge-in: if LiveKit stops the reply for it, the turn is interrupted and the
new utterance becomes the next turn. Stages are recorded from LiveKit's per-request metrics as
each request ends (see :mod:`._livekit_stages`).

The conversation opens when the session starts, not when the tracker is made: a session that
never starts (its ``start()`` failed, or it was closed before) sends no ``close`` event, so a
conversation opened early would never end. Events that come while the session is starting (a
greeting synthesised while the room connects) are held and replayed when it has started.
"""

from __future__ import annotations

import contextvars
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import voice_otel
from voice_otel import _runtime
from voice_otel._guard import guard
from voice_otel._turn import Conversation, Turn
from voice_otel.integrations._livekit_stages import record_stage, wall_to_monotonic

logger = logging.getLogger(__name__)

_MAX_SPEECHES = 64
_MAX_HELD = 256  # events held while the session starts; a start sends a handful


class LiveKitError(Exception):
    """LiveKit reported an error without an exception object."""


@dataclass
class _TurnState:
    turn: Turn
    ctx: contextvars.Context
    opened_at: float  # wall clock: the user started speaking
    replied: bool = False
    barge_in_at: float | None = None  # monotonic
    stt_since_stop: bool = False
    error: BaseException | None = None


@dataclass
class _Utterance:
    """The user speaking while the previous turn is still ending."""

    stopped_at: float | None = None  # monotonic


@dataclass
class SessionTracker:
    """Maps one ``AgentSession``'s events to one voice_otel conversation.

    Args:
        conversation_id: id of the conversation (default: a new one).
        attributes: extra attributes for the conversation span.
    """

    conversation_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._base_ctx = contextvars.copy_context()
        # Made now, entered at start: a bad id or attribute is reported where it was passed.
        self._new_conv = voice_otel.conversation(self.conversation_id, **self.attributes)
        self._started = False
        self._closed = False
        self._held: deque[tuple[Callable[[Any], None], Any]] = deque()
        self._conv: Conversation | None = None
        self._conv_ctx: contextvars.Context | None = None
        self._turn: _TurnState | None = None
        self._next: _Utterance | None = None
        self._speeches: dict[str, _TurnState | None] = {}
        self._user_speaking = False
        self._agent_state = "initializing"
        self._stt_identity: tuple[str | None, str | None] = (None, None)
        self._stt_usage: dict[str, float] = {}
        self._last_stop: float | None = None
        self._thinking_since: float | None = None  # wall clock

    @property
    def conversation(self) -> Conversation | None:
        return self._conv

    # -- session lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        """The session started: open the conversation, then replay the events held (once)."""
        if self._started or self._closed:
            return
        self._started = True
        if _runtime.options.enabled:
            conv = self._new_conv
            ctx = self._base_ctx.copy()
            ctx.run(conv.__enter__)
            self._conv, self._conv_ctx = conv, ctx

        held, self._held = self._held, deque()
        for callback, event in held:
            with guard("livekit held event"):
                callback(event)

    def when_started(self, callback: Callable[[Any], None], event: Any) -> None:
        """Handle ``event`` now if the session has started, else hold it until :meth:`start`."""
        if self._started:
            callback(event)
        elif not self._closed:
            if len(self._held) == _MAX_HELD:
                self._held.popleft()  # a session that never starts holds only the latest
            self._held.append((callback, event))

    def close(self, error: BaseException | None = None) -> None:
        """The session closed: end the open turn and the conversation, and stay closed."""
        self._closed = True
        self._held.clear()
        state, self._turn = self._turn, None
        if state is not None:
            self._end_turn(state, error)
        if self._stt_usage:
            logger.debug("voice_otel: STT usage reported after the last STT stage was dropped")
            self._stt_usage.clear()
        conv, ctx = self._conv, self._conv_ctx
        self._conv = self._conv_ctx = None
        if conv is not None and ctx is not None:
            ctx.run(conv.__exit__, type(error) if error else None, error, None)

    # -- the user -------------------------------------------------------------------------

    def user_started(self, at: float) -> None:
        """The user started speaking (``user_state_changed`` to ``speaking``)."""
        if self._user_speaking:
            return
        self._user_speaking = True
        state = self._turn
        if state is None:
            self._open_turn(at)
        elif self._agent_state == "speaking" and not state.replied:
            # Over the agent: a barge-in if LiveKit stops the reply for it (its message says).
            if state.barge_in_at is None:
                state.barge_in_at = wall_to_monotonic(at)
            self._next = _Utterance()
        elif state.replied:
            self._end_current()
            self._open_turn(at)

    def user_stopped(self, at: float) -> None:
        """The user stopped speaking; ``at`` is when the speech ended (LiveKit backdates it)."""
        self._user_speaking = False
        stopped = wall_to_monotonic(at)
        self._last_stop = stopped
        if self._next is not None:
            self._next.stopped_at = stopped
            return
        if self._turn is not None:
            self._turn.turn.user_stopped_speaking(at=stopped)
            self._turn.stt_since_stop = False

    def user_message(self, stopped_at: float | None) -> None:
        """The user's message was committed, with LiveKit's own end-of-speech time."""
        if stopped_at is None or self._next is not None or self._turn is None:
            return
        self._turn.turn.user_stopped_speaking(at=wall_to_monotonic(stopped_at))

    def transcript(self, at: float) -> None:
        """A final transcript: for a streaming STT, the end of its wait for this utterance."""
        state = self._target(None)
        if state is None or state.stt_since_stop or self._last_stop is None:
            return
        if self._user_speaking or self._next is not None:
            return  # spoken before the user stopped: the STT kept nobody waiting
        provider, model = self._stt_identity
        waited = max(0.0, wall_to_monotonic(at) - self._last_stop)
        usage, self._stt_usage = self._stt_usage, {}
        self._record(state, "stt", at, waited, waited, False, provider, model, usage)
        state.stt_since_stop = True

    # -- the agent ------------------------------------------------------------------------

    def speech_created(self, speech_id: str) -> None:
        """The agent scheduled a reply: its metrics belong to the turn in progress."""
        if len(self._speeches) >= _MAX_SPEECHES:
            self._speeches.pop(next(iter(self._speeches)))
        self._speeches[speech_id] = self._turn

    def agent_state(self, state: str, at: float) -> None:
        """The agent's state changed (``agent_state_changed``) at ``at``."""
        if state == "thinking" and self._agent_state != "thinking":
            self._thinking_since = at
            if self._turn is None and self._next is not None:
                self._open_turn(at)  # the agent answers what the user said over its last reply
        self._agent_state = state
        turn = self._turn
        if state in ("listening", "idle") and turn is not None and turn.replied:
            self._end_current()
            if self._user_speaking:
                self._open_turn(at)

    def assistant_message(
        self, started_at: float | None, stopped_at: float | None, interrupted: bool
    ) -> None:
        """The agent's reply was played (``conversation_item_added``, role ``assistant``)."""
        state = self._turn
        if state is None or (started_at is not None and started_at < state.opened_at):
            return  # a greeting, or a reply that began before the user spoke
        turn = state.turn
        if started_at is not None and not state.replied:
            turn.bot_started_speaking(at=wall_to_monotonic(started_at))
        if interrupted:
            stopped = wall_to_monotonic(stopped_at) if stopped_at is not None else None
            at = state.barge_in_at if state.barge_in_at is not None else stopped
            played = None
            if started_at is not None and stopped_at is not None:
                played = max(0.0, stopped_at - started_at)
            turn.interrupt(played_audio_seconds=played, at=at)
            if stopped is not None:
                turn.tts_stopped(stopped)
        else:
            state.barge_in_at = None  # LiveKit let the reply finish: no barge-in after all
        state.replied = True

    def error(
        self,
        exc: BaseException,
        *,
        kind: str | None,
        at: float,
        provider: str | None,
        model: str | None,
    ) -> None:
        """A model failed for good (LiveKit's ``error`` event, not recoverable).

        LiveKit reports no metrics for a failed request; an LLM that failed is recorded as a
        stage from when the agent started thinking.
        """
        state = self._turn
        if state is not None:
            state.error = exc
            state.replied = True
        if kind == "llm" and self._thinking_since is not None:
            duration = max(0.0, at - self._thinking_since)
            self._record(state, "llm", at, duration, None, False, provider, model, {}, exc)

    # -- metrics --------------------------------------------------------------------------

    def stt_metrics(
        self,
        *,
        ended_at: float,
        duration: float,
        audio_seconds: float,
        streamed: bool,
        provider: str | None,
        model: str | None,
    ) -> None:
        self._stt_identity = (provider, model)
        if streamed or duration <= 0:
            # A streaming STT reports usage now and then; it goes to the next STT stage.
            self._stt_usage["input_audio_seconds"] = (
                self._stt_usage.get("input_audio_seconds", 0.0) + audio_seconds
            )
            return
        state = self._target(None)
        usage = {"input_audio_seconds": audio_seconds}
        self._record(state, "stt", ended_at, duration, duration, False, provider, model, usage)
        if state is not None:
            state.stt_since_stop = True

    def llm_metrics(
        self,
        *,
        ended_at: float,
        duration: float,
        ttft: float,
        cancelled: bool,
        input_tokens: int,
        output_tokens: int,
        provider: str | None,
        model: str | None,
        speech_id: str | None,
    ) -> None:
        usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        state = self._target(speech_id)
        self._record(state, "llm", ended_at, duration, ttft, cancelled, provider, model, usage)

    def tts_metrics(
        self,
        *,
        ended_at: float,
        duration: float,
        ttfb: float,
        cancelled: bool,
        characters: int,
        audio_seconds: float,
        provider: str | None,
        model: str | None,
        speech_id: str | None,
    ) -> None:
        usage = {"characters": characters, "output_audio_seconds": audio_seconds}
        state = self._target(speech_id)
        self._record(state, "tts", ended_at, duration, ttfb, cancelled, provider, model, usage)

    # -- internals ------------------------------------------------------------------------

    def _target(self, speech_id: str | None) -> _TurnState | None:
        """The turn a report belongs to: the one its speech was made for, else the current."""
        if speech_id is not None and speech_id in self._speeches:
            return self._speeches[speech_id]
        return self._turn

    def _record(
        self,
        state: _TurnState | None,
        kind: str,
        ended_at: float,
        duration: float,
        first_output: float | None,
        cancelled: bool,
        provider: str | None,
        model: str | None,
        usage: dict[str, Any],
        error: BaseException | None = None,
    ) -> None:
        ctx = state.ctx if state is not None else self._conv_ctx
        if ctx is None:
            return
        if state is not None and state.turn.record is not None:
            ctx = self._conv_ctx  # its turn has ended: the report still counts for the call
            if ctx is None:
                return
        ctx.copy().run(
            record_stage,
            kind,
            ended_at=ended_at,
            duration=duration,
            first_output=first_output,
            cancelled=cancelled,
            provider=_lower(provider),
            model=model,
            usage=usage,
            error=error,
        )

    def _open_turn(self, at: float) -> None:
        conv, ctx = self._conv, self._conv_ctx
        if conv is None or ctx is None:
            self._next = None
            return
        turn = conv.turn()
        tctx = ctx.copy()
        tctx.run(turn.__enter__)
        state = _TurnState(turn, tctx, at)
        pending, self._next = self._next, None
        if pending is not None and pending.stopped_at is not None:
            turn.user_stopped_speaking(at=pending.stopped_at)
        self._turn = state

    def _end_current(self) -> None:
        state, self._turn = self._turn, None
        if state is not None:
            self._end_turn(state, None)

    def _end_turn(self, state: _TurnState, error: BaseException | None) -> None:
        exc = error
        if exc is None and state.error is not None and state.turn.first_audio_at is None:
            exc = state.error
        state.ctx.run(state.turn.__exit__, type(exc) if exc else None, exc, None)


def _lower(provider: str | None) -> str | None:
    """LiveKit's provider names vary in case ("OpenAI", "deepgram"); the telemetry's do not."""
    return provider.lower() if provider else None
