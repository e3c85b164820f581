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
``voice.conversation`` per session, one ``voice.turn`` per user utterance and the agent's reply,
recorded as each turn ends, and an STT, LLM or TTS stage for each request LiveKit measures
(durations, time to first output, usage and cost), with voice-to-voice latency, its
decomposition and barge-ins. Needs ``pip install voice-otel[livekit]``; see
``docs/integrations.md``.
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
        "voice_otel.integrations.livekit needs LiveKit Agents: pip install voice-otel[livekit]"
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
        """The session's conversation while it is open."""
        return self._tracker.conversation

    @property
    def attached(self) -> bool:
        """Whether the session's events are still being recorded."""
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
        self, event: str, callback: Callable[[Any], None], on: Callable[..., Any] | None = None
    ) -> None:
        def guarded(ev: Any) -> None:
            with guard(f"livekit {event}"):
                callback(ev)

        (on or self._session.on)(event, guarded)
        self._listeners.append((event, guarded))


def instrument_session(
    session: AgentSession, conversation_id: str | None = None, **attributes: Any
) -> SessionInstrumentation:
    """Record voice_otel telemetry for ``session``; one line, before or after it starts.

    Example:
        >>> session = AgentSession(stt=stt, llm=llm, tts=tts, vad=vad)
        >>> telemetry = instrument_session(session, conversation_id=ctx.room.name)
        >>> await session.start(agent=Assistant(), room=ctx.room)

    Args:
        session: the LiveKit Agents session.
        conversation_id: ``gen_ai.conversation.id`` of the call (default: a new id).
        **attributes: extra attributes for the ``voice.conversation`` span.

    Returns:
        A handle whose ``detach()`` stops the recording. Instrumenting a session twice logs a
        warning and returns the first handle.
    """
    existing = _sessions.get(session)
    if existing is not None and existing.attached:
        logger.warning("voice_otel: this AgentSession is already instrumented; ignoring")
        return existing

    tracker = SessionTracker(conversation_id, dict(attributes))
    handle = SessionInstrumentation(session, tracker)
    events: dict[str, Callable[[Any], None]] = {
        "user_state_changed": lambda ev: _user_state(tracker, ev),
        "agent_state_changed": lambda ev: tracker.agent_state(ev.new_state, ev.created_at),
        "user_input_transcribed": lambda ev: _transcribed(tracker, ev),
        "speech_created": lambda ev: tracker.speech_created(ev.speech_handle.id),
        "conversation_item_added": lambda ev: _item_added(tracker, ev.item),
        "error": lambda ev: _error(tracker, ev),
        "close": lambda ev: _close(handle, tracker, ev),
    }
    for event, callback in events.items():
        handle._listen(event, callback)
    # AgentSession.on() logs a deprecation notice for this event, meant for applications that
    # read LiveKit's metrics themselves and should use its per-turn reports instead. Those
    # reports lack what stages need (each request's duration and usage), so the adapter keeps
    # the event and registers through the emitter's own method, leaving the user's log clean.
    register = functools.partial(rtc.EventEmitter.on, session)
    handle._listen("metrics_collected", lambda ev: _metrics(tracker, ev.metrics), on=register)

    with guard("livekit start"):
        tracker.start()
    _sessions[session] = handle
    return handle


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
