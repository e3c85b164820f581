"""OpenTelemetry for voice AI agents.

Decorate the speech-to-text, LLM and text-to-speech functions of a voice pipeline, wrap calls in
``conversation()`` and turns in ``turn()``, and get spans and metrics for where each turn's time
went, what failed, what it cost, and when the caller interrupted.

Example:
    >>> import voice_otel
    >>> voice_otel.configure(service_name="support-agent")
    >>> @voice_otel.llm(provider="openai", model="gpt-4o-mini")
    ... async def reply(text): ...
"""

from __future__ import annotations

from voice_otel._config import ConfigurationError, Settings
from voice_otel._decorators import llm, stt, tts
from voice_otel._events import StageOutcome, add_stage_listener, add_turn_listener
from voice_otel._runtime import VERSION as __version__
from voice_otel._setup import Telemetry, configure, shutdown
from voice_otel._stage import StageRun, current_stage, record_usage, stage
from voice_otel._threads import in_context
from voice_otel._turn import (
    Conversation,
    Turn,
    TurnRecord,
    conversation,
    current_conversation,
    current_turn,
    turn,
)
from voice_otel._usage import Usage

__all__ = [
    "ConfigurationError",
    "Conversation",
    "Settings",
    "StageOutcome",
    "StageRun",
    "Telemetry",
    "Turn",
    "TurnRecord",
    "Usage",
    "__version__",
    "add_stage_listener",
    "add_turn_listener",
    "configure",
    "conversation",
    "current_conversation",
    "current_stage",
    "current_turn",
    "in_context",
    "llm",
    "record_usage",
    "shutdown",
    "stage",
    "stt",
    "tts",
    "turn",
]
