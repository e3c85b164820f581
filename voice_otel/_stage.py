"""One STT, LLM or TTS call: its span, its metrics, its share of the turn.

A :class:`StageRun` is the telemetry of one call. The decorators in ``_decorators`` and the
:func:`stage` context manager drive it: ``start`` and ``finish`` are guarded, the user's call in
between is not. ``finish`` runs exactly once, however the call ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.trace import SpanKind, Status, StatusCode

from voice_otel import _events, _runtime, _turn, _values
from voice_otel._content import ContentBuffer, capture_input
from voice_otel._contract import STAGE_OPERATION, STAGE_OUTPUT_TYPE, STAGES, Attr, GenAI, SpanName
from voice_otel._guard import guard, report_fault
from voice_otel._usage import USAGE_FIELDS, Usage, price_table

logger = logging.getLogger(__name__)

STAGE_KEY = otel_context.create_key("voice_otel.stage")


def _attach_guarded(ctx: otel_context.Context) -> object | None:
    try:
        return otel_context.attach(ctx)
    except Exception as exc:
        report_fault("stage context", exc)
        return None


def _detach_token(token: Any) -> None:
    if token is not None:
        otel_context.detach(token)


def _context_switch() -> tuple[Callable[[otel_context.Context], Any], Callable[[Any], Any]]:
    """(attach, detach) for a stage's context, entered around every step of a stream.

    With OpenTelemetry's default runtime context these are its context variable's own ``set``
    and ``reset``: what ``attach``/``detach`` do, without four Python calls per streamed item.
    Any other runtime context goes through the public API.
    """
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if isinstance(runtime, ContextVarsRuntimeContext) and isinstance(var, ContextVar):
        return var.set, var.reset
    return _attach_guarded, _detach_token


attach_context, detach_context = _context_switch()
# The key under which OpenTelemetry keeps the current span, found through the public API, so a
# stage's context (its span and the stage itself) is built in one step.
(_SPAN_KEY,) = trace.set_span_in_context(trace.INVALID_SPAN, otel_context.Context()).keys()


@dataclass
class StageSpec:
    """Everything about a stage that is known when it is decorated; built once."""

    stage: str
    provider: str | None = None
    model: str | None = None
    voice: str | None = None
    usage: Any = None  # Callable[[Any], dict | Usage | None] | None: per result or stream item
    attributes: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, not {self.stage!r}")
        # Whatever the user passed, only valid names and attribute values go any further.
        self.provider = _values.name(self.provider, "provider")
        self.model = _values.name(self.model, "model")
        self.voice = _values.name(self.voice, "voice")
        self.attributes = _values.attributes(self.attributes, "stage attribute")
        operation = STAGE_OPERATION[self.stage]
        self.span_name = SpanName.stage(operation, self.model)
        provider = self.provider or "unknown"
        genai = {GenAI.OPERATION_NAME: operation, GenAI.PROVIDER_NAME: provider}
        if self.model:
            genai[GenAI.REQUEST_MODEL] = self.model
        self.genai_attrs = genai
        self.metric_attrs = {Attr.STAGE: self.stage, **genai}
        self.provider_attrs = {k: v for k, v in genai.items() if k != GenAI.OPERATION_NAME}
        self.span_attrs: dict[str, Any] = {
            **self.metric_attrs,
            GenAI.OUTPUT_TYPE: STAGE_OUTPUT_TYPE[self.stage],
            **self.attributes,
        }
        if self.voice:
            self.span_attrs[Attr.TTS_VOICE] = self.voice
        # Most calls succeed: the outcome starts as "ok", and only another outcome costs a write.
        self.span_attrs[Attr.OUTCOME] = "ok"
        self._by_outcome: dict[tuple[str, str | None], tuple[dict[str, Any], dict[str, Any]]] = {}
        self.usage_warned = False  # invalid usage is logged once per stage, not per chunk

    def outcome_attrs(
        self, outcome: str, error_type: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(voice.stage.duration attrs, gen_ai duration attrs) for an outcome; reused sets."""
        key = (outcome, error_type)
        cached = self._by_outcome.get(key)
        if cached is None:
            extra = {GenAI.ERROR_TYPE: error_type} if error_type else {}
            cached = (
                {**self.metric_attrs, Attr.OUTCOME: outcome, **extra},
                {**self.genai_attrs, **extra},
            )
            if len(self._by_outcome) < 64:  # error types are class names: bounded, but be safe
                self._by_outcome[key] = cached
        return cached


class StageRun:
    """The telemetry of one stage call. Also the handle user code gets from :func:`stage`."""

    __slots__ = (
        "_ctx",
        "_token",
        "content",
        "conversation",
        "done",
        "first_at",
        "items",
        "response_model",
        "span",
        "spec",
        "start",
        "turn",
        "usage",
    )

    def __init__(self, spec: StageSpec, started: tuple[float, int] | None = None) -> None:
        """Start the span now, or at ``started`` = (``time.monotonic()``, wall clock in ns) for
        a call that is reported after it began (framework adapters)."""
        self.spec = spec
        self.turn = turn = _turn.current_turn()
        # A turn knows its conversation even when it was opened outside it (conv.turn()).
        conversation = turn.conversation if turn is not None else _turn.current_conversation()
        # Cost outside a turn (a greeting, say) still belongs to the conversation.
        self.conversation = conversation if turn is None else None
        self.usage: Usage | None = None  # created by the first report: most calls have none
        self.items = 0
        self.first_at: float | None = None
        self.response_model: str | None = None
        self.done = False
        self.content: ContentBuffer | None = None
        self._token: object | None = None
        attributes = spec.span_attrs
        if conversation is not None:
            attributes = {**attributes, GenAI.CONVERSATION_ID: conversation.id}
        self.span = _runtime.get_tracer().start_span(
            spec.span_name,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=None if started is None else started[1],
        )
        self._ctx = otel_context.Context(
            {**otel_context.get_current(), _SPAN_KEY: self.span, STAGE_KEY: self}
        )
        self.start = time.monotonic() if started is None else started[0]

    # -- context: attached only while the user's code runs, never across a yield ----------

    @property
    def context(self) -> otel_context.Context:
        """The OpenTelemetry context of this call: its span, current while the user's code runs."""
        return self._ctx

    def enter(self) -> object:
        return attach_context(self._ctx)

    @staticmethod
    def leave(token: object) -> None:
        detach_context(token)

    # -- what user code (or the wrapper) reports ------------------------------------------

    def first_output(self, at: float | None = None) -> None:
        """Mark the first output (token, audio chunk, partial transcript) of this call."""
        if self.first_at is None:
            at = _values.instant(at, "first_output(at)")
            self.first_at = time.monotonic() if at is None else at
            if self.spec.stage == "tts" and self.turn is not None:
                self.turn.first_audio(self.first_at)

    def record_usage(self, **values: Any) -> None:
        """Add usage: input_tokens, output_tokens, input_audio_seconds, output_audio_seconds,
        characters."""
        if self.usage is None:
            self.usage = Usage()
        rejected = self.usage.add(**values)
        if rejected and not self.spec.usage_warned:
            self.spec.usage_warned = True
            logger.warning(
                "voice_otel: ignored invalid usage %s of %s (need finite numbers >= 0 named %s); "
                "further invalid usage there is not logged",
                rejected,
                self.spec.name or self.spec.stage,
                ", ".join(sorted(USAGE_FIELDS)),
            )

    def set_response_model(self, model: str) -> None:
        """The model that actually answered, when the provider reports it."""
        self.response_model = _values.name(model, "response model")

    def record_content(self, input: str | None = None, output: str | None = None) -> None:
        """Record conversation text on the span; ignored unless content capture is on."""
        if not _runtime.options.capture_content:
            return
        if self.content is None:
            self.content = ContentBuffer()
        if input is not None:
            self.content.input = input
        if output is not None:
            self.content.add_output(output)

    def on_item(self, item: Any) -> None:
        """A stream produced ``item``."""
        if self.first_at is None:
            self.first_output()
        self.items += 1
        if self.spec.usage is not None:
            self._extract(item)
        if _runtime.options.capture_content and isinstance(item, str):
            self.record_content(output=item)

    def on_result(self, result: Any) -> None:
        if self.spec.usage is not None:
            self._extract(result)
        if _runtime.options.capture_content and isinstance(result, str):
            self.record_content(output=result)

    def _extract(self, value: Any) -> None:
        try:
            usage = self.spec.usage(value)
            if isinstance(usage, Usage):
                usage = vars(usage)  # validated like any other report
            if isinstance(usage, Mapping):
                self.record_usage(**{str(k): v for k, v in usage.items()})
            elif usage and not self.spec.usage_warned:
                self.spec.usage_warned = True
                logger.warning(
                    "voice_otel: the usage extractor of %s returned a %s, not a mapping; ignored",
                    self.spec.name or self.spec.stage,
                    type(usage).__name__,
                )
        except Exception as exc:
            report_fault(f"usage extractor of {self.spec.name}", exc)

    # -- the end -----------------------------------------------------------------------------

    def finish(self, exc: BaseException | None = None, interrupted: bool = False) -> None:
        """End the span and record metrics; runs once. Never raises (faults are logged)."""
        if self.done:
            return
        self.done = True
        try:
            self._finish(exc, interrupted)
        except Exception as err:
            report_fault("stage end", err)
            self.span.end()

    def _finish(self, exc: BaseException | None, interrupted: bool) -> None:
        end = time.monotonic()
        spec, span = self.spec, self.span
        duration = end - self.start
        error_type: str | None = None
        if exc is not None and isinstance(exc, Exception):
            outcome = "error"
            error_type = type(exc).__qualname__
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{error_type}: {exc}"[:200]))
            span.set_attribute(GenAI.ERROR_TYPE, error_type)
        elif exc is not None or interrupted:
            outcome = "interrupted"  # cancelled, closed early: not an error
            span.set_attribute(Attr.INTERRUPTED, True)
        else:
            outcome = "ok"
            if spec.stage == "tts" and self.first_at is None and self.turn is not None:
                self.turn.first_audio(end)  # a non-streaming TTS call: audio is there at the end
        if outcome != "ok":
            span.set_attribute(Attr.OUTCOME, outcome)

        inst = _runtime.instruments()
        stage_attrs, genai_attrs = spec.outcome_attrs(outcome, error_type)
        inst.stage_duration.record(duration, stage_attrs)
        inst.genai_duration.record(duration, genai_attrs)
        ttfo = None if self.first_at is None else self.first_at - self.start
        if ttfo is not None and not _values.measurable(ttfo):
            ttfo = None  # a first-output mark before the call started measures nothing
        if ttfo is not None:
            span.set_attribute(Attr.STAGE_TTFO, ttfo)
            inst.stage_ttfo.record(ttfo, spec.metric_attrs)
            inst.genai_ttfc.record(ttfo, spec.genai_attrs)
        if self.items:
            span.set_attribute(Attr.STREAM_ITEMS, self.items)
        if self.response_model:
            span.set_attribute(GenAI.RESPONSE_MODEL, self.response_model)
        cost = self._record_usage(inst)
        if self.content is not None:
            with guard("content capture"):  # a failing redact hook drops the text, nothing else
                self.content.write(span)

        turn = self.turn
        if turn is not None:
            attempt = turn.next_attempt(id(spec), failed=outcome == "error")
            if attempt:
                span.set_attribute(Attr.RETRY_ATTEMPT, attempt)
            self._into_turn(turn, end, ttfo, duration, outcome)
            if cost:
                turn.cost += cost
        elif cost and self.conversation is not None:
            self.conversation.cost += cost
        span.end()
        if _events._stage_listeners:
            _events.emit_stage(
                _events.StageOutcome(
                    spec.stage, spec.provider, spec.model, outcome, error_type, duration
                )
            )

    def _into_turn(
        self, turn: _turn.Turn, end: float, ttfo: float | None, duration: float, outcome: str
    ) -> None:
        stage, tl = self.spec.stage, turn.timeline
        if stage == "stt":
            turn.stage_waited("stt", self.start, end)
            if outcome == "ok":
                tl.stt_duration = duration
            return
        wait_end = self.first_at if self.first_at is not None else end
        turn.stage_waited(stage, self.start, wait_end)
        if stage == "llm" and ttfo is not None and tl.llm_ttft is None:
            tl.llm_ttft = ttfo
        if stage == "tts":
            if tl.tts_ttfb is None and outcome != "error":
                tl.tts_ttfb = ttfo if ttfo is not None else duration
            if self.usage is not None:
                tl.tts_audio += self.usage.output_audio_seconds
                tl.tts_characters += self.usage.characters
            tl.tts_attrs = self.spec.provider_attrs
            turn.tts_stopped(end)

    def _record_usage(self, inst: _runtime.Instruments) -> float | None:
        usage, spec, span = self.usage, self.spec, self.span
        if usage is None or not usage:
            return None
        attrs = spec.metric_attrs
        # Zero means "not reported": never record it as a measurement.
        if usage.input_tokens:
            span.set_attribute(GenAI.USAGE_INPUT_TOKENS, int(usage.input_tokens))
            inst.genai_tokens.record(usage.input_tokens, _token_attrs(spec, "input"))
        if usage.output_tokens:
            span.set_attribute(GenAI.USAGE_OUTPUT_TOKENS, int(usage.output_tokens))
            inst.genai_tokens.record(usage.output_tokens, _token_attrs(spec, "output"))
        if usage.input_audio_seconds:
            span.set_attribute(Attr.USAGE_AUDIO_INPUT, usage.input_audio_seconds)
            inst.audio.add(usage.input_audio_seconds, _direction_attrs(spec, "input"))
        if usage.output_audio_seconds:
            span.set_attribute(Attr.USAGE_AUDIO_OUTPUT, usage.output_audio_seconds)
            inst.audio.add(usage.output_audio_seconds, _direction_attrs(spec, "output"))
        if usage.characters:
            span.set_attribute(Attr.USAGE_CHARACTERS, usage.characters)
            inst.characters.add(usage.characters, attrs)
        table = price_table()
        cost = table.cost(spec.provider, spec.model, usage)
        if cost is None:
            return None
        span.set_attribute(Attr.COST, cost)
        span.set_attribute(Attr.PRICE_TABLE_VERSION, table.version)
        inst.cost.add(cost, attrs)
        return cost


def _token_attrs(spec: StageSpec, direction: str) -> dict[str, Any]:
    return {**spec.genai_attrs, GenAI.TOKEN_TYPE: direction}


def _direction_attrs(spec: StageSpec, direction: str) -> dict[str, Any]:
    return {**spec.metric_attrs, Attr.USAGE_DIRECTION: direction}


def begin(spec: StageSpec, args: tuple[Any, ...] = ()) -> StageRun | None:
    """Start a stage's telemetry; None (and one log line) if our code fails."""
    try:
        run = StageRun(spec)
        if _runtime.options.capture_content:
            capture_input(run, args)
        return run
    except Exception as exc:
        report_fault(f"stage start of {spec.name or spec.stage}", exc)
        return None


def current_stage() -> StageRun | None:
    """The stage call this code runs in, if any."""
    value = otel_context.get_value(STAGE_KEY)
    return value if isinstance(value, StageRun) else None


def record_usage(**values: Any) -> None:
    """Report usage of the current stage call (tokens, audio seconds, characters).

    Example:
        >>> @voice_otel.llm(provider="openai", model="gpt-4o-mini")
        ... def answer(prompt):
        ...     reply = client.chat(prompt)
        ...     voice_otel.record_usage(input_tokens=reply.usage.prompt_tokens,
        ...                             output_tokens=reply.usage.completion_tokens)
        ...     return reply.text
    """
    run = current_stage()
    if run is None:
        logger.debug("voice_otel.record_usage called outside a stage; ignored")
        return
    run.record_usage(**values)


class stage:
    """A stage for code that cannot be decorated; works as ``with`` and ``async with``.

    Example:
        >>> with voice_otel.stage("llm", provider="openai", model="gpt-4o-mini") as s:
        ...     for token in client.stream(prompt):
        ...         s.first_output()
        ...         play(token)
        ...     s.record_usage(input_tokens=12, output_tokens=40)
    """

    def __init__(
        self,
        kind: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        voice: str | None = None,
        **attributes: Any,
    ) -> None:
        self._spec = StageSpec(kind, provider, model, voice, None, attributes, kind)
        self._run: StageRun | None = None
        self._token: object | None = None

    def __enter__(self) -> StageRun:
        run = begin(self._spec) if _runtime.options.enabled else None
        self._run = run
        if run is None:
            return _NULL_RUN
        try:
            self._token = run.enter()
        except Exception as exc:
            report_fault("stage context", exc)
        return run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        run = self._run
        if run is None:
            return
        if self._token is not None:
            try:
                run.leave(self._token)
            except Exception as err:
                report_fault("stage context", err)
        run.finish(exc)

    async def __aenter__(self) -> StageRun:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class _NullRun(StageRun):
    """Handle returned when telemetry is off or failed to start: every method is a no-op."""

    def first_output(self, at: float | None = None) -> None:
        return None

    def record_usage(self, **values: Any) -> None:
        return None

    def set_response_model(self, model: str) -> None:
        return None

    def record_content(self, input: str | None = None, output: str | None = None) -> None:
        return None


_NULL_RUN = _NullRun.__new__(_NullRun)
