"""The telemetry contract: every span name, attribute key, metric name, unit and bucket set.

Everything voice_otel emits is named here and nowhere else. ``docs/telemetry.md`` is generated
from this module (``voice-otel telemetry-doc``) and a test compares it, and the names below, with
what the real exporters produce.

The OpenTelemetry GenAI semantic conventions are followed where they exist; they are still in
development status, so their names are kept together in :class:`GenAI` and can move in one place.
Voice latency has no convention: it lives under ``voice.*``.

Metric attributes are bounded on purpose: never a conversation id, turn id, user id or free
text. Those go on spans only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

SCOPE_NAME: Final = "voice_otel"


class GenAI:
    """OpenTelemetry GenAI semantic-convention names (development status)."""

    OPERATION_NAME: Final = "gen_ai.operation.name"
    PROVIDER_NAME: Final = "gen_ai.provider.name"
    REQUEST_MODEL: Final = "gen_ai.request.model"
    RESPONSE_MODEL: Final = "gen_ai.response.model"
    USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
    USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
    CONVERSATION_ID: Final = "gen_ai.conversation.id"
    OUTPUT_TYPE: Final = "gen_ai.output.type"
    TOKEN_TYPE: Final = "gen_ai.token.type"
    ERROR_TYPE: Final = "error.type"

    # Operation names. speech_to_text / text_to_speech are proposed upstream, not merged.
    OP_CHAT: Final = "chat"
    OP_SPEECH_TO_TEXT: Final = "speech_to_text"
    OP_TEXT_TO_SPEECH: Final = "text_to_speech"


class Attr:
    """``voice.*`` attribute keys."""

    STAGE: Final = "voice.stage"  # stt | llm | tts
    OUTCOME: Final = "voice.outcome"  # ok | error | interrupted
    TTS_VOICE: Final = "voice.tts.voice"
    STAGE_TTFO: Final = "voice.stage.time_to_first_output"
    STREAM_ITEMS: Final = "voice.stream.items"
    INTERRUPTED: Final = "voice.interrupted"
    RETRY_ATTEMPT: Final = "voice.retry.attempt"

    TURN_ID: Final = "voice.turn.id"
    TURN_INDEX: Final = "voice.turn.index"
    TURN_LATENCY: Final = "voice.turn.latency"
    TURN_LATENCY_STT: Final = "voice.turn.latency.stt"
    TURN_LATENCY_LLM: Final = "voice.turn.latency.llm"
    TURN_LATENCY_TTS: Final = "voice.turn.latency.tts"
    TURN_LATENCY_OTHER: Final = "voice.turn.latency.other"
    TURN_SLOW: Final = "voice.turn.slow"
    TURN_OBJECTIVE: Final = "voice.turn.latency_objective"
    INTERRUPTION_STOP_LATENCY: Final = "voice.interruption.stop_latency"
    WASTED_CHARACTERS: Final = "voice.tts.wasted.characters"
    WASTED_AUDIO: Final = "voice.tts.wasted.audio"

    USAGE_AUDIO_INPUT: Final = "voice.usage.input_audio_seconds"
    USAGE_AUDIO_OUTPUT: Final = "voice.usage.output_audio_seconds"
    USAGE_CHARACTERS: Final = "voice.usage.characters"
    COST: Final = "voice.cost.usd"
    PRICE_TABLE_VERSION: Final = "voice.price_table.version"

    CONVERSATION_TURNS: Final = "voice.conversation.turns"
    CONVERSATION_INTERRUPTIONS: Final = "voice.conversation.interruptions"

    CONTENT_INPUT: Final = "voice.content.input"
    CONTENT_OUTPUT: Final = "voice.content.output"

    LATENCY_COMPONENT: Final = "voice.latency.component"  # stt | llm | tts | other
    USAGE_DIRECTION: Final = "voice.usage.direction"  # input | output
    COMPONENT: Final = "voice.component"
    COMPONENT_KIND: Final = "voice.component.kind"
    HEALTH_STATE: Final = "voice.health.state"


class SpanName:
    """Span names. Stage spans follow the GenAI inference pattern ``{operation} {model}``."""

    CONVERSATION: Final = "voice.conversation"
    TURN: Final = "voice.turn"

    @staticmethod
    def stage(operation: str, model: str | None) -> str:
        return f"{operation} {model}" if model else operation


Stage = Literal["stt", "llm", "tts"]
STAGES: Final[tuple[Stage, ...]] = ("stt", "llm", "tts")
STAGE_OPERATION: Final[dict[str, str]] = {
    "stt": GenAI.OP_SPEECH_TO_TEXT,
    "llm": GenAI.OP_CHAT,
    "tts": GenAI.OP_TEXT_TO_SPEECH,
}
STAGE_OUTPUT_TYPE: Final[dict[str, str]] = {"stt": "text", "llm": "text", "tts": "speech"}
OUTCOMES: Final = ("ok", "error", "interrupted")
LATENCY_COMPONENTS: Final = ("stt", "llm", "tts", "other")
HEALTH_STATES: Final = {"unhealthy": 0, "degraded": 1, "healthy": 2}

# Buckets. GenAI ones are the convention's recommended boundaries; voice ones are fine between
# 50 ms and 3 s, where a conversation goes from snappy to broken.
GENAI_DURATION_BUCKETS: Final = tuple(round(0.01 * 2**i, 2) for i in range(14))  # .01 .. 81.92
GENAI_TOKEN_BUCKETS: Final = tuple(4**i for i in range(14))  # 1 .. 67108864
VOICE_LATENCY_BUCKETS: Final = (
    0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 20.0, 30.0,
)  # fmt: skip
CONVERSATION_DURATION_BUCKETS: Final = (
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0
)  # fmt: skip

Instrument = Literal[
    "histogram", "counter", "updowncounter", "observable_gauge", "observable_counter"
]


@dataclass(frozen=True)
class Metric:
    """One metric of the contract."""

    name: str
    instrument: Instrument
    unit: str
    description: str
    attributes: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None
    emitted_by: str = "sdk"  # sdk | health | system (documents which part of voice_otel records it)

    @property
    def prometheus_name(self) -> str:
        """The name the OpenTelemetry Prometheus exporters give this metric (base name)."""
        return prometheus_name(self.name, self.unit, self.instrument)


_STAGE_ATTRS = (Attr.STAGE, GenAI.OPERATION_NAME, GenAI.PROVIDER_NAME, GenAI.REQUEST_MODEL)


class Metrics:
    """Every metric voice_otel records."""

    GENAI_DURATION = Metric(
        "gen_ai.client.operation.duration",
        "histogram",
        "s",
        "GenAI operation duration (STT, LLM and TTS calls), per the GenAI conventions.",
        (GenAI.OPERATION_NAME, GenAI.PROVIDER_NAME, GenAI.REQUEST_MODEL, GenAI.ERROR_TYPE),
        GENAI_DURATION_BUCKETS,
    )
    GENAI_TTFC = Metric(
        "gen_ai.client.operation.time_to_first_chunk",
        "histogram",
        "s",
        "Time from the start of a streamed GenAI operation to its first chunk.",
        (GenAI.OPERATION_NAME, GenAI.PROVIDER_NAME, GenAI.REQUEST_MODEL),
        GENAI_DURATION_BUCKETS,
    )
    GENAI_TOKENS = Metric(
        "gen_ai.client.token.usage",
        "histogram",
        "{token}",
        "Tokens used per LLM call, by direction (gen_ai.token.type).",
        (GenAI.OPERATION_NAME, GenAI.PROVIDER_NAME, GenAI.REQUEST_MODEL, GenAI.TOKEN_TYPE),
        GENAI_TOKEN_BUCKETS,
    )
    STAGE_DURATION = Metric(
        "voice.stage.duration",
        "histogram",
        "s",
        "Duration of one STT, LLM or TTS call, streams until exhausted, closed or cancelled.",
        (*_STAGE_ATTRS, Attr.OUTCOME, GenAI.ERROR_TYPE),
        VOICE_LATENCY_BUCKETS,
    )
    STAGE_TTFO = Metric(
        "voice.stage.time_to_first_output",
        "histogram",
        "s",
        "Time to first output of a stage: LLM first token, TTS first audio byte, STT first "
        "transcript. Not recorded when no output came.",
        _STAGE_ATTRS,
        VOICE_LATENCY_BUCKETS,
    )
    TURN_LATENCY = Metric(
        "voice.turn.latency",
        "histogram",
        "s",
        "Voice-to-voice latency: user stopped speaking to the bot's first audio in the turn.",
        (),
        VOICE_LATENCY_BUCKETS,
    )
    TURN_LATENCY_COMPONENT = Metric(
        "voice.turn.latency.component",
        "histogram",
        "s",
        "Voice-to-voice latency split by stage (stt, llm to first token, tts to first byte, "
        "other); the components of one turn add up to its voice.turn.latency.",
        (Attr.LATENCY_COMPONENT,),
        VOICE_LATENCY_BUCKETS,
    )
    TURNS = Metric(
        "voice.turns",
        "counter",
        "{turn}",
        "Turns ended, by outcome (ok, error, interrupted).",
        (Attr.OUTCOME,),
    )
    INTERRUPTIONS = Metric(
        "voice.interruptions",
        "counter",
        "{interruption}",
        "Barge-ins: the user spoke over the bot.",
    )
    INTERRUPTION_STOP_LATENCY = Metric(
        "voice.interruption.stop_latency",
        "histogram",
        "s",
        "Time from an interruption to the TTS stream actually stopping.",
        (),
        VOICE_LATENCY_BUCKETS,
    )
    WASTED_CHARACTERS = Metric(
        "voice.tts.wasted.characters",
        "counter",
        "{character}",
        "TTS characters synthesised but never played because of an interruption (estimated).",
        (GenAI.PROVIDER_NAME, GenAI.REQUEST_MODEL),
    )
    WASTED_AUDIO = Metric(
        "voice.tts.wasted.audio",
        "counter",
        "s",
        "TTS audio synthesised but never played because of an interruption (estimated).",
        (GenAI.PROVIDER_NAME, GenAI.REQUEST_MODEL),
    )
    AUDIO_DURATION = Metric(
        "voice.usage.audio",
        "counter",
        "s",
        "Audio processed: STT input audio and TTS output audio, by stage and direction.",
        (*_STAGE_ATTRS, Attr.USAGE_DIRECTION),
    )
    CHARACTERS = Metric(
        "voice.usage.characters",
        "counter",
        "{character}",
        "Characters sent to TTS.",
        _STAGE_ATTRS,
    )
    COST = Metric(
        "voice.cost",
        "counter",
        "{USD}",
        "Estimated cost in US dollars from the offline price table, by stage, provider, model.",
        _STAGE_ATTRS,
    )
    CONVERSATIONS_ACTIVE = Metric(
        "voice.conversations.active",
        "updowncounter",
        "{conversation}",
        "Conversations in progress in this process.",
    )
    CONVERSATION_DURATION = Metric(
        "voice.conversation.duration",
        "histogram",
        "s",
        "Duration of ended conversations.",
        (),
        CONVERSATION_DURATION_BUCKETS,
    )
    HEALTH_STATUS = Metric(
        "voice.health.status",
        "observable_gauge",
        "{status}",
        "Component health: 2 healthy, 1 degraded, 0 unhealthy.",
        (Attr.COMPONENT, Attr.COMPONENT_KIND),
        emitted_by="health",
    )
    HEALTH_CHECK_DURATION = Metric(
        "voice.health.check.duration",
        "observable_gauge",
        "s",
        "Latency of the last health check of a component.",
        (Attr.COMPONENT, Attr.COMPONENT_KIND),
        emitted_by="health",
    )
    HEALTH_CONSECUTIVE_FAILURES = Metric(
        "voice.health.consecutive_failures",
        "observable_gauge",
        "{failure}",
        "Consecutive failed checks of a component.",
        (Attr.COMPONENT, Attr.COMPONENT_KIND),
        emitted_by="health",
    )
    HEALTH_LAST_SUCCESS_AGE = Metric(
        "voice.health.last_success.age",
        "observable_gauge",
        "s",
        "Seconds since the last successful check of a component.",
        (Attr.COMPONENT, Attr.COMPONENT_KIND),
        emitted_by="health",
    )

    @classmethod
    def all(cls) -> tuple[Metric, ...]:
        return tuple(v for v in vars(cls).values() if isinstance(v, Metric))


@dataclass(frozen=True)
class SpanSpec:
    """One span kind of the contract, for the docs."""

    name: str
    description: str
    attributes: tuple[str, ...] = field(default_factory=tuple)


SPANS: Final = (
    SpanSpec(
        SpanName.CONVERSATION,
        "One call, from connect to hang-up. Root of the call's trace.",
        (
            GenAI.CONVERSATION_ID,
            Attr.CONVERSATION_TURNS,
            Attr.CONVERSATION_INTERRUPTIONS,
            Attr.COST,
        ),
    ),
    SpanSpec(
        SpanName.TURN,
        "One exchange: the user speaks, the bot answers (or is interrupted).",
        (
            GenAI.CONVERSATION_ID,
            Attr.TURN_ID,
            Attr.TURN_INDEX,
            Attr.TURN_LATENCY,
            Attr.TURN_LATENCY_STT,
            Attr.TURN_LATENCY_LLM,
            Attr.TURN_LATENCY_TTS,
            Attr.TURN_LATENCY_OTHER,
            Attr.TURN_SLOW,
            Attr.TURN_OBJECTIVE,
            Attr.INTERRUPTED,
            Attr.INTERRUPTION_STOP_LATENCY,
            Attr.WASTED_CHARACTERS,
            Attr.WASTED_AUDIO,
            Attr.OUTCOME,
            Attr.COST,
        ),
    ),
    SpanSpec(
        "{gen_ai.operation.name} {gen_ai.request.model}",
        "One STT, LLM or TTS call (e.g. 'chat gpt-4o-mini', 'text_to_speech espeak-ng'); "
        "the operation alone when no model is known.",
        (
            Attr.STAGE,
            GenAI.OPERATION_NAME,
            GenAI.PROVIDER_NAME,
            GenAI.REQUEST_MODEL,
            GenAI.RESPONSE_MODEL,
            GenAI.OUTPUT_TYPE,
            GenAI.CONVERSATION_ID,
            GenAI.USAGE_INPUT_TOKENS,
            GenAI.USAGE_OUTPUT_TOKENS,
            GenAI.ERROR_TYPE,
            Attr.TTS_VOICE,
            Attr.STAGE_TTFO,
            Attr.STREAM_ITEMS,
            Attr.INTERRUPTED,
            Attr.OUTCOME,
            Attr.RETRY_ATTEMPT,
            Attr.USAGE_AUDIO_INPUT,
            Attr.USAGE_AUDIO_OUTPUT,
            Attr.USAGE_CHARACTERS,
            Attr.COST,
            Attr.PRICE_TABLE_VERSION,
            Attr.CONTENT_INPUT,
            Attr.CONTENT_OUTPUT,
        ),
    ),
)

_UNIT_WORDS: Final = {
    "s": "seconds",
    "ms": "milliseconds",
    "By": "bytes",
    "%": "percent",
}


def prometheus_name(name: str, unit: str, instrument: str) -> str:
    """Translate an OpenTelemetry metric name to its Prometheus base name.

    Mirrors the OpenTelemetry Prometheus exporters (Python SDK and collector): dots become
    underscores, a known unit is appended as a word, a braced annotation unit is dropped, and
    monotonic counters end in ``_total``. Tests check this against the real exporters.
    """
    base = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    word = "" if unit.startswith("{") or unit in ("", "1") else _UNIT_WORDS.get(unit, unit)
    if word and not base.endswith(f"_{word}"):
        base = f"{base}_{word}"
    if instrument in ("counter", "observable_counter"):
        base = f"{base}_total"
    return base


# Resource attributes set by configure().
RESOURCE_SERVICE_NAME: Final = "service.name"
RESOURCE_SERVICE_VERSION: Final = "service.version"
RESOURCE_ENVIRONMENT: Final = "deployment.environment.name"
