"""LiveKit Agents integration: conversation, turn and stage telemetry for an ``AgentSession``.

```python
from livekit.agents import AgentSession
from voice_otel.integrations.livekit import instrument_session

session = AgentSession(stt=..., llm=..., tts=..., vad=...)
instrument_session(session)
await session.start(agent=MyAgent(), room=ctx.room)
```

LiveKit Agents records its turn metrics only when a session ends. This records voice_otel's
conversation, turns and stages from the session's public events while the call goes on: one
``voice.conversation`` from the session's start to its close, one ``voice.turn`` per user
utterance and the agent's reply, recorded as each turn ends, and an STT, LLM or TTS stage for
each request LiveKit measures (durations, time to first output, usage and cost), with
voice-to-voice latency, its decomposition and barge-ins. Needs
``pip install voice-otel[livekit]``; see ``docs/integrations.md``.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable
from typing import Any

try:
    from livekit import rtc
    from livekit.agents import AgentSession
    from livekit.agents.llm import LLM, ChatMessage
    from livekit.agents.metrics import LLMMetrics, STTMetrics, TTSMetrics
    from livekit.agents.stt import STT
    from livekit.agents.tts import TTS
except ImportError as exc:  # pragma: no cover - exercised in the main environment's tests
    if not (exc.name or "").startswith("livekit"):
        raise
    raise ImportError(
        "voice_otel.integrations.livekit needs LiveKit Agents: pip install 'voice-otel[livekit]'"
    ) from exc

from voice_otel._guard import guard
from voice_otel._turn import Conversation
from voice_otel.integrations._livekit_tracker import LiveKitError, SessionTracker

__all__ = ["SessionInstrumentation", "instrument_session"]

logger = logging.getLogger(__name__)

_sessions: weakref.WeakKeyDictionary[Any, SessionInstrumentation] = weakref.WeakKeyDictionary()


class SessionInstrumentation:
    """What :func:`instrument_session` attached to a session; :meth:`detach` removes it."""

    def __init__(self, session: AgentSession, tracker: SessionTracker) -> None:
        self._session = session
        self._tracker = tracker
        self._listeners: list[tuple[str, Callable[[Any], None]]] = []

    @property
    def conversation(self) -> Conversation | None:
        """The session's conversation while it is open: from its start to its close."""
        return self._tracker.conversation

    @property
    def attached(self) -> bool:
        """Whether the session's events are listened to: until it closes or :meth:`detach`.

        A session that has not started yet is listened to, and recorded once it starts.
        """
        return bool(self._listeners)

    def detach(self) -> None:
        """Stop recording: remove the listeners and end the turn and conversation in progress."""
        session, listeners, self._listeners = self._session, self._listeners, []
        for event, callback in listeners:
            with guard("livekit detach"):
                session.off(event, callback)
        if _sessions.get(session) is self:
            del _sessions[session]
        with guard("livekit detach"):
            self._tracker.close()

    def _listen(
        self,
        event: str,
        callback: Callable[[Any], None],
        on: Callable[..., Any] | None = None,
        *,
        hold: bool = True,
    ) -> None:
        """Subscribe ``callback``; with ``hold``, events before the session started wait for it."""
        tracker = self._tracker

        def guarded(ev: Any) -> None:
            with guard(f"livekit {event}"):
                if hold:
                    tracker.when_started(callback, ev)
                else:
                    callback(ev)

        (on or self._session.on)(event, guarded)
        self._listeners.append((event, guarded))


def instrument_session(
    session: AgentSession, conversation_id: str | None = None, **attributes: Any
) -> SessionInstrumentation:
    """Record voice_otel telemetry for ``session``; call it before ``start()``.

    Example:
        >>> session = AgentSession(stt=stt, llm=llm, tts=tts, vad=vad)
        >>> telemetry = instrument_session(session, conversation_id=ctx.room.name)
        >>> await session.start(agent=Assistant(), room=ctx.room)

    The conversation opens when the session starts and ends when it closes. Called after
    ``start()``, it records from then on: reports LiveKit sent before (a greeting's TTS
    request, often) are not seen.

    Args:
        session: the LiveKit Agents session (not the room).
        conversation_id: ``gen_ai.conversation.id`` of the call (default: a new id).
        **attributes: extra attributes for the ``voice.conversation`` span.

    Returns:
        A handle whose ``detach()`` stops the recording. Instrumenting a session twice logs a
        warning and returns the first handle; a session already closed logs a warning and gets
        a handle that records nothing.

    Raises:
        TypeError: ``session`` is not an ``AgentSession``.
    """
    if not isinstance(session, AgentSession):
        raise TypeError(
            f"instrument_session() takes the AgentSession, got {_type_name(session)}; "
            "pass the session you call start() on"
        )
    existing = _sessions.get(session)
    if existing is not None and existing.attached:
        logger.warning("voice_otel: this AgentSession is already instrumented; ignoring")
        return existing

    tracker = SessionTracker(conversation_id, dict(attributes))
    handle = SessionInstrumentation(session, tracker)
    if _closed(session):
        logger.warning(
            "voice_otel: this AgentSession is already closed; nothing is recorded "
            "(call instrument_session() before start())"
        )
        return handle

    events: dict[str, Callable[[Any], None]] = {
        "user_state_changed": lambda ev: _user_state(tracker, ev),
        "user_input_transcribed": lambda ev: _transcribed(tracker, ev),
        "speech_created": lambda ev: tracker.speech_created(ev.speech_handle.id),
        "conversation_item_added": lambda ev: _item_added(tracker, ev.item),
        "error": lambda ev: _error(tracker, ev),
    }
    for event, callback in events.items():
        handle._listen(event, callback)
    # The agent's first state change marks the session started: start() moves it out of
    # "initializing" once the session runs; a session whose start() fails sends none.
    handle._listen("agent_state_changed", lambda ev: _agent_state(tracker, ev), hold=False)
    handle._listen("close", lambda ev: _close(handle, tracker, ev), hold=False)
    # AgentSession.on() logs a deprecation notice for this event, meant for applications that
    # read LiveKit's metrics themselves and should use its per-turn reports instead. Those
    # reports lack what stages need (each request's duration and usage), so the adapter keeps
    # the event and registers through the emitter's own method, leaving the user's log clean.
    register = functools.partial(rtc.EventEmitter.on, session)
    handle._listen("metrics_collected", lambda ev: _metrics(tracker, ev.metrics), on=register)

    if session.agent_state != "initializing":  # instrumented after start()
        with guard("livekit start"):
            tracker.start()
    _sessions[session] = handle
    return handle


def _type_name(value: Any) -> str:
    if value is None:
        return "None"
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _closed(session: AgentSession) -> bool:
    """The session is closed or closing.

    LiveKit has no public flag for it: its close sets ``_closing`` and only ``start()`` clears
    it; before any start it is False. The adapters venv's checks fail if that changes.
    """
    return getattr(session, "_closing", False) is True


def _agent_state(tracker: SessionTracker, ev: Any) -> None:
    tracker.start()
    tracker.agent_state(ev.new_state, ev.created_at)


def _user_state(tracker: SessionTracker, ev: Any) -> None:
    if ev.new_state == "speaking":
        tracker.user_started(ev.created_at)
    elif ev.old_state == "speaking":
        tracker.user_stopped(ev.created_at)


def _transcribed(tracker: SessionTracker, ev: Any) -> None:
    if ev.is_final:
        tracker.transcript(ev.created_at)


def _item_added(tracker: SessionTracker, item: Any) -> None:
    if not isinstance(item, ChatMessage):
        return  # agent handoffs and other items carry no turn timing
    metrics = item.metrics or {}
    if item.role == "user":
        tracker.user_message(metrics.get("stopped_speaking_at"))
    elif item.role == "assistant":
        tracker.assistant_message(
            metrics.get("started_speaking_at"),
            metrics.get("stopped_speaking_at"),
            bool(item.interrupted),
        )


def _metrics(tracker: SessionTracker, metrics: Any) -> None:
    provider, model = _identity(getattr(metrics, "metadata", None))
    if isinstance(metrics, LLMMetrics):
        tracker.llm_metrics(
            ended_at=metrics.timestamp,
            duration=metrics.duration,
            ttft=metrics.ttft,
            cancelled=metrics.cancelled,
            input_tokens=metrics.prompt_tokens,
            output_tokens=metrics.completion_tokens,
            provider=provider,
            model=model,
            speech_id=metrics.speech_id,
        )
    elif isinstance(metrics, TTSMetrics):
        tracker.tts_metrics(
            ended_at=metrics.timestamp,
            duration=metrics.duration,
            ttfb=metrics.ttfb,
            cancelled=metrics.cancelled,
            characters=metrics.characters_count,
            audio_seconds=metrics.audio_duration,
            provider=provider,
            model=model,
            speech_id=metrics.speech_id,
        )
    elif isinstance(metrics, STTMetrics):
        tracker.stt_metrics(
            ended_at=metrics.timestamp,
            duration=metrics.duration,
            audio_seconds=metrics.audio_duration,
            streamed=metrics.streamed,
            provider=provider,
            model=model,
        )


def _error(tracker: SessionTracker, ev: Any) -> None:
    error = ev.error
    if getattr(error, "recoverable", True):
        return  # LiveKit retries; a failure that stays is reported again as unrecoverable
    exc = getattr(error, "error", None)
    if not isinstance(exc, BaseException):
        exc = LiveKitError(str(error))
    source = ev.source
    tracker.error(
        exc,
        kind=_kind(source),
        at=getattr(error, "timestamp", ev.created_at),
        provider=getattr(source, "provider", None),
        model=getattr(source, "model", None),
    )


def _kind(source: Any) -> str | None:
    for base, kind in ((LLM, "llm"), (STT, "stt"), (TTS, "tts")):
        if isinstance(source, base):
            return kind
    return None


def _close(handle: SessionInstrumentation, tracker: SessionTracker, ev: Any) -> None:
    error = getattr(ev.error, "error", None) if ev.error is not None else None
    tracker.close(error if isinstance(error, BaseException) else None)
    handle.detach()


def _identity(metadata: Any) -> tuple[str | None, str | None]:
    if metadata is None:
        return None, None
    provider = getattr(metadata, "model_provider", None)
    model = getattr(metadata, "model_name", None)
    return (
        provider if isinstance(provider, str) and provider != "unknown" else None,
        model if isinstance(model, str) and model != "unknown" else None,
    )
