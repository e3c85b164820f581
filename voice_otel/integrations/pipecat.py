"""Pipecat integration: conversation, turn and stage telemetry from one observer.

```python
from pipecat.pipeline.worker import PipelineWorker
from voice_otel.integrations.pipecat import VoiceOtelObserver

worker = PipelineWorker(pipeline, observers=[VoiceOtelObserver()])
```

The observer watches the frames of the pipeline through Pipecat's public observer interface
(no service is patched) and records one ``voice.conversation`` per pipeline run, one
``voice.turn`` per user utterance and the bot's answer, and STT, LLM and TTS stages inside them:
durations, time to first output, voice-to-voice latency and its decomposition, barge-ins, usage
and cost. Usage comes from Pipecat's metrics frames: create the pipeline with
``PipelineParams(enable_metrics=True, enable_usage_metrics=True)`` to get tokens and characters.
Needs ``pip install voice-otel[pipecat]``; see ``docs/integrations.md``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

try:
    from pipecat.frames.frames import (
        BotStartedSpeakingFrame,
        BotStoppedSpeakingFrame,
        CancelFrame,
        ErrorFrame,
        FunctionCallCancelFrame,
        FunctionCallResultFrame,
        FunctionCallsStartedFrame,
        InterruptionFrame,
        LLMFullResponseEndFrame,
        LLMFullResponseStartFrame,
        LLMTextFrame,
        MetricsFrame,
        StartFrame,
        STTMetadataFrame,
        TranscriptionFrame,
        TTSAudioRawFrame,
        TTSStartedFrame,
        TTSStoppedFrame,
        TTSTextFrame,
        UserStartedSpeakingFrame,
        UserStoppedSpeakingFrame,
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )
    from pipecat.metrics.metrics import (
        LLMUsageMetricsData,
        STTUsageMetricsData,
        TTSUsageMetricsData,
    )
    from pipecat.observers.base_observer import BaseObserver, FramePushed
except ImportError as exc:  # pragma: no cover - exercised in the main environment's tests
    if not (exc.name or "").startswith("pipecat"):
        raise
    raise ImportError(
        "voice_otel.integrations.pipecat needs Pipecat: pip install 'voice-otel[pipecat]'"
    ) from exc

from voice_otel._guard import guard
from voice_otel._turn import Conversation
from voice_otel.integrations._pipecat_tracker import PipecatServiceError, PipelineTracker

__all__ = ["VoiceOtelObserver"]

logger = logging.getLogger(__name__)

_SERVICE_SUFFIX = re.compile(r"(STT|LLM|TTS)?Service$")
_MAX_SIBLINGS = 256

Handler = Callable[["VoiceOtelObserver", Any, Any], None]


class VoiceOtelObserver(BaseObserver):
    """Records voice_otel telemetry for the pipeline it observes; one line to add.

    Example:
        >>> worker = PipelineWorker(
        ...     pipeline,
        ...     params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
        ...     observers=[VoiceOtelObserver(conversation_id="call-42")],
        ... )

    One observer records one pipeline at a time, from its ``StartFrame``: give every worker an
    observer of its own (a shared one merges their calls, with a warning). It can be reused
    for the next run once a run has ended.

    Args:
        conversation_id: ``gen_ai.conversation.id`` of the call (default: a new id per run).
        turn_end_timeout: seconds the bot must stay quiet, with no LLM, TTS or function call
            pending, before its turn is over (a reply may resume after a short gap; 0 or less
            ends it as soon as the bot is quiet).
        **attributes: extra attributes for the ``voice.conversation`` span.

    Raises:
        ConfigurationError: ``turn_end_timeout`` is not a finite number.
    """

    def __init__(
        self,
        conversation_id: str | None = None,
        *,
        turn_end_timeout: float = 1.0,
        **attributes: Any,
    ) -> None:
        super().__init__(observe_every_push=False)
        self._tracker = PipelineTracker(
            conversation_id, turn_end_timeout=turn_end_timeout, attributes=attributes
        )
        self._offset_ns: int | None = None
        self._siblings: set[int] = set()
        self._handlers: dict[type, Handler | None] = {}

    @property
    def conversation(self) -> Conversation | None:
        """The call's conversation while the pipeline runs."""
        return self._tracker.conversation

    async def on_push_frame(self, data: FramePushed) -> None:
        """Map one pushed frame to conversation, turn and stage telemetry."""
        frame = data.frame
        kind = type(frame)
        handler = self._handlers.get(kind, _UNRESOLVED)
        if handler is _UNRESOLVED:
            handler = _resolve(kind)
            self._handlers[kind] = handler
        if handler is None:
            return
        with guard("pipecat observer"):
            if handler is not VoiceOtelObserver._start and not self._tracker.running:
                self._tracker.not_started()  # added to a pipeline that had already started
                return
            if self._duplicate(frame):
                return
            handler(self, data, frame)

    async def cleanup(self) -> None:
        """The pipeline is done: close what is still open and end the conversation."""
        await super().cleanup()
        with guard("pipecat observer end"):
            self._tracker.finish()

    # -- helpers --------------------------------------------------------------------------

    def _duplicate(self, frame: Any) -> bool:
        """Pipecat broadcasts some frames as an upstream and a downstream copy: take one."""
        sibling = getattr(frame, "broadcast_sibling_id", None)
        if sibling is None:
            return False
        if sibling in self._siblings:
            self._siblings.discard(sibling)
            return True
        if len(self._siblings) >= _MAX_SIBLINGS:
            self._siblings.clear()
        self._siblings.add(frame.id)
        return False

    def _at(self, data: Any) -> float:
        """When the frame was pushed, as a ``time.monotonic()`` value."""
        timestamp = data.timestamp
        if not timestamp:
            return time.monotonic()
        offset = self._offset_ns
        if offset is None:
            try:
                offset = time.monotonic_ns() - data.source.get_clock().get_time()
            except Exception:
                return time.monotonic()
            self._offset_ns = offset
        return (offset + timestamp) / 1e9

    # -- frame handlers -------------------------------------------------------------------

    def _start(self, data: Any, frame: Any) -> None:
        if not self._tracker.running:
            self._offset_ns = None  # a new run starts the pipeline clock again
            self._siblings.clear()
        self._tracker.start(frame.id)

    def _cancel(self, data: Any, frame: Any) -> None:
        self._tracker.cancelled()

    def _stt_metadata(self, data: Any, frame: Any) -> None:
        self._stt_source(data.source)

    def _stt_source(self, service: Any) -> None:
        """Name the STT stages after ``service`` (its metadata frame, or the first it sends)."""
        if self._tracker.stt_source != id(service):
            provider, model, _ = _identity(service)
            self._tracker.stt_service(id(service), provider, model)

    def _user_started(self, data: Any, frame: Any) -> None:
        self._tracker.user_started(self._at(data))

    def _user_stopped(self, data: Any, frame: Any) -> None:
        self._tracker.user_stopped(self._at(data))

    def _vad_started(self, data: Any, frame: Any) -> None:
        self._tracker.vad_started()

    def _vad_stopped(self, data: Any, frame: Any) -> None:
        # The VAD waits stop_secs of silence before it calls the end: the user stopped then.
        at = self._at(data)
        self._tracker.vad_stopped(at - max(0.0, float(frame.stop_secs or 0.0)), at)

    def _transcription(self, data: Any, frame: Any) -> None:
        if self._tracker.stt_source is None:  # no metadata frame: the transcriber names itself
            self._stt_source(data.source)
        self._tracker.transcript(self._at(data), frame.text)

    def _llm_start(self, data: Any, frame: Any) -> None:
        provider, model, _ = _identity(data.source)
        self._tracker.llm_started(id(data.source), self._at(data), provider, model)

    def _llm_text(self, data: Any, frame: Any) -> None:
        self._tracker.llm_text(id(data.source), self._at(data), frame.text)

    def _llm_end(self, data: Any, frame: Any) -> None:
        self._tracker.llm_ended(id(data.source))

    def _functions_started(self, data: Any, frame: Any) -> None:
        self._tracker.function_calls(len(frame.function_calls))

    def _function_done(self, data: Any, frame: Any) -> None:
        self._tracker.function_calls(-1)

    def _tts_start(self, data: Any, frame: Any) -> None:
        provider, model, voice = _identity(data.source)
        key = (id(data.source), frame.context_id)
        self._tracker.tts_started(key, self._at(data), provider, model, voice)

    def _tts_audio(self, data: Any, frame: Any) -> None:
        bytes_per_second = 2 * frame.sample_rate * max(1, frame.num_channels)
        seconds = len(frame.audio) / bytes_per_second if frame.sample_rate else 0.0
        key = (id(data.source), frame.context_id)
        self._tracker.tts_audio(key, self._at(data), seconds)

    def _tts_text(self, data: Any, frame: Any) -> None:
        key = (id(data.source), getattr(frame, "context_id", None))
        spaced = bool(getattr(frame, "includes_inter_frame_spaces", False))
        self._tracker.tts_text(key, frame.text, spaced)

    def _tts_stop(self, data: Any, frame: Any) -> None:
        self._tracker.tts_stopped((id(data.source), frame.context_id))

    def _bot_started(self, data: Any, frame: Any) -> None:
        self._tracker.bot_started(self._at(data))

    def _bot_stopped(self, data: Any, frame: Any) -> None:
        self._tracker.bot_stopped(self._at(data))

    def _interruption(self, data: Any, frame: Any) -> None:
        self._tracker.interruption(self._at(data))

    def _metrics(self, data: Any, frame: Any) -> None:
        source = id(data.source)
        for item in frame.data:
            if isinstance(item, LLMUsageMetricsData):
                tokens = item.value
                self._tracker.usage(
                    "llm",
                    source,
                    input_tokens=tokens.prompt_tokens or 0,
                    output_tokens=tokens.completion_tokens or 0,
                )
            elif isinstance(item, TTSUsageMetricsData):
                self._tracker.usage("tts", source, characters=item.value or 0)
            elif isinstance(item, STTUsageMetricsData):
                self._stt_source(data.source)
                self._tracker.usage("stt", source, input_audio_seconds=item.value.audio_seconds)

    def _error(self, data: Any, frame: Any) -> None:
        processor = frame.processor if frame.processor is not None else data.source
        exc = frame.exception
        if not isinstance(exc, Exception):
            exc = PipecatServiceError(frame.error)
        self._tracker.error(id(processor), exc)


_UNRESOLVED: Any = object()

# Most specific first: a frame is handled by the first entry it is an instance of.
_HANDLERS: tuple[tuple[type, Handler], ...] = (
    (StartFrame, VoiceOtelObserver._start),
    (CancelFrame, VoiceOtelObserver._cancel),
    (STTMetadataFrame, VoiceOtelObserver._stt_metadata),
    (UserStartedSpeakingFrame, VoiceOtelObserver._user_started),
    (UserStoppedSpeakingFrame, VoiceOtelObserver._user_stopped),
    (VADUserStartedSpeakingFrame, VoiceOtelObserver._vad_started),
    (VADUserStoppedSpeakingFrame, VoiceOtelObserver._vad_stopped),
    (TranscriptionFrame, VoiceOtelObserver._transcription),
    (LLMFullResponseStartFrame, VoiceOtelObserver._llm_start),
    (LLMFullResponseEndFrame, VoiceOtelObserver._llm_end),
    (LLMTextFrame, VoiceOtelObserver._llm_text),
    (FunctionCallsStartedFrame, VoiceOtelObserver._functions_started),
    (FunctionCallResultFrame, VoiceOtelObserver._function_done),
    (FunctionCallCancelFrame, VoiceOtelObserver._function_done),
    (TTSStartedFrame, VoiceOtelObserver._tts_start),
    (TTSStoppedFrame, VoiceOtelObserver._tts_stop),
    (TTSAudioRawFrame, VoiceOtelObserver._tts_audio),
    (TTSTextFrame, VoiceOtelObserver._tts_text),
    (BotStartedSpeakingFrame, VoiceOtelObserver._bot_started),
    (BotStoppedSpeakingFrame, VoiceOtelObserver._bot_stopped),
    (InterruptionFrame, VoiceOtelObserver._interruption),
    (MetricsFrame, VoiceOtelObserver._metrics),
    (ErrorFrame, VoiceOtelObserver._error),
)


def _resolve(kind: type) -> Handler | None:
    for base, handler in _HANDLERS:
        if issubclass(kind, base):
            return handler
    return None


def _identity(service: Any) -> tuple[str | None, str | None, str | None]:
    """(provider, model, voice) of a Pipecat service.

    The provider is the package of the service's class, or of the nearest class it derives
    from, under ``pipecat.services`` (``openai`` for ``pipecat.services.openai.llm``); for a
    service written from scratch, its class name without the ``...Service`` suffix. Model and
    voice come from the service's settings.
    """
    provider: str | None = None
    for cls in type(service).__mro__:
        parts = cls.__module__.split(".")
        if len(parts) > 3 and parts[0] == "pipecat" and parts[1] == "services":
            provider = parts[2]
            break
    if provider is None:
        provider = _SERVICE_SUFFIX.sub("", type(service).__name__).lower() or None
    settings = getattr(service, "settings", None)
    model = getattr(settings, "model", None)
    voice = getattr(settings, "voice", None)
    return (
        provider,
        model if isinstance(model, str) and model else None,
        voice if isinstance(voice, str) and voice else None,
    )
