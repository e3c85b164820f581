"""Property-based tests: arbitrary values thrown at the public API never hurt the pipeline.

Attribute names and values, provider and model names, usage numbers, turn marks and
conversation ids come from hypothesis, NaN, infinities, negatives, None, huge integers,
containers and plain objects included. For every example:

* the user's call returns its result unchanged and nothing raises into user code (and, as
  the guard is strict here, no internal fault of voice_otel is hit either);
* every span that started has ended;
* nothing invalid reaches the exporters: span attribute values are str, bool, int, finite
  float or homogeneous sequences of those; metric values are finite and not negative; metric
  attribute values are primitives.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import Histogram, Sum

import voice_otel
from voice_otel import Usage

if TYPE_CHECKING:
    from conftest import Captured

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
)
scalars = st.one_of(
    st.none(),
    numbers,
    st.text(max_size=20),
    st.binary(max_size=10),
    st.just(object()),
    st.just(1 + 2j),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5), inner, max_size=3),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=6,
)
names = st.one_of(st.text(max_size=30), st.sampled_from(["", " ", "voice.stage", "a.b.c"]))
maybe_names = st.one_of(st.none(), names, numbers)
# The API's own keyword parameters are not extra attributes: passing one twice is a TypeError
# at the call site, as for any Python function.
PARAMETERS = {"kind", "provider", "model", "voice", "usage", "conversation_id", "turn_id"}
attributes = st.dictionaries(names.filter(lambda name: name not in PARAMETERS), values, max_size=5)
marks = st.one_of(st.none(), numbers, st.text(max_size=5))
USAGE_KEYS = [
    "input_tokens",
    "output_tokens",
    "input_audio_seconds",
    "output_audio_seconds",
    "characters",
]
usage_values = st.dictionaries(
    st.one_of(st.sampled_from(USAGE_KEYS), st.text(max_size=10)), values, max_size=6
)


# -- what may reach an exporter ------------------------------------------------------------


def _valid_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | bool | int)


def _valid_attribute(value: Any) -> bool:
    if isinstance(value, tuple | list):
        kinds = {type(v) for v in value}
        return len(kinds) <= 1 and all(_valid_scalar(v) for v in value)
    return _valid_scalar(value)


def check_exported(otel: Captured) -> None:
    for span in otel.spans():
        assert span.end_time is not None
        for key, value in (span.attributes or {}).items():
            assert isinstance(key, str) and key, f"span {span.name}: bad key {key!r}"
            assert _valid_attribute(value), f"span {span.name}: {key}={value!r}"
    for name, metric in otel.metrics().items():
        for point in metric.data.data_points:
            for key, value in (point.attributes or {}).items():
                assert isinstance(key, str) and key, f"{name}: bad key {key!r}"
                assert _valid_scalar(value), f"{name}: {key}={value!r}"
            if isinstance(metric.data, Histogram):
                assert math.isfinite(point.sum) and point.sum >= 0, f"{name}: sum {point.sum}"
                assert math.isfinite(point.min) and point.min >= 0, f"{name}: min {point.min}"
                assert math.isfinite(point.max), f"{name}: max {point.max}"
            elif isinstance(metric.data, Sum):
                assert math.isfinite(point.value) and point.value >= 0, f"{name}: {point.value}"


# -- decorator arguments -------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    stage=st.sampled_from(["stt", "llm", "tts"]),
    provider=maybe_names,
    model=maybe_names,
    voice=maybe_names,
    extra=attributes,
    payload=values,
)
def test_decorator_arguments(
    otel: Captured, stage: str, provider: Any, model: Any, voice: Any, extra: Any, payload: Any
) -> None:
    otel.clear()
    decorator = getattr(voice_otel, stage)(provider=provider, model=model, voice=voice, **extra)

    @decorator
    def call(value: Any) -> Any:
        return value

    @decorator
    def stream(value: Any) -> Iterator[Any]:
        yield value
        yield value

    assert call(payload) is payload
    assert list(stream(payload)) == [payload, payload]
    check_exported(otel)
    assert len(otel.stage_spans()) == 2


@PROPERTY_SETTINGS
@given(provider=maybe_names, model=maybe_names, extra=attributes)
def test_stage_context_manager_arguments(
    otel: Captured, provider: Any, model: Any, extra: Any
) -> None:
    otel.clear()
    with voice_otel.stage("llm", provider=provider, model=model, **extra) as run:
        run.first_output()
        run.set_response_model(model)
    check_exported(otel)
    assert len(otel.stage_spans()) == 1


# -- usage ---------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(reported=st.lists(usage_values, max_size=3), model=st.sampled_from(["gpt-4o-mini", None]))
def test_record_usage_with_any_values(otel: Captured, reported: Any, model: Any) -> None:
    otel.clear()

    @voice_otel.llm(provider="openai", model=model)
    def answer() -> str:
        for values_ in reported:
            voice_otel.record_usage(**values_)
        return "ok"

    with voice_otel.conversation("usage"), voice_otel.turn():
        assert answer() == "ok"
    voice_otel.record_usage(**(reported[0] if reported else {}))  # outside a stage: ignored
    check_exported(otel)


usage_objects = st.builds(
    Usage,
    input_tokens=numbers,
    output_tokens=numbers,
    input_audio_seconds=numbers,
    output_audio_seconds=numbers,
    characters=numbers,
)


@PROPERTY_SETTINGS
@given(results=st.lists(st.one_of(values, usage_values, usage_objects), min_size=1, max_size=4))
def test_usage_extractor_returning_anything(otel: Captured, results: list[Any]) -> None:
    otel.clear()
    returned = iter(results * 2)

    @voice_otel.tts(provider="openai", model="tts-1", usage=lambda item: next(returned))
    def speak() -> Iterator[bytes]:
        yield from (b"a", b"b")

    with voice_otel.conversation("extract"), voice_otel.turn() as turn:
        assert list(speak()) == [b"a", b"b"]
        turn.interrupt()
    check_exported(otel)


# -- turn marks and ids --------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(
    stopped=marks,
    started=marks,
    interrupted=marks,
    played=marks,
    first=marks,
    audio=numbers,
)
def test_turn_marks_with_any_values(
    otel: Captured,
    stopped: Any,
    started: Any,
    interrupted: Any,
    played: Any,
    first: Any,
    audio: Any,
) -> None:
    otel.clear()

    @voice_otel.tts(provider="openai", model="tts-1")
    def speak() -> Iterator[bytes]:
        run = voice_otel.current_stage()
        assert run is not None
        run.first_output(first)
        run.record_usage(output_audio_seconds=audio, characters=audio)
        yield b"chunk"

    with voice_otel.conversation("marks"), voice_otel.turn() as turn:
        turn.user_stopped_speaking(stopped)
        assert list(speak()) == [b"chunk"]
        turn.bot_started_speaking(started)
        turn.interrupt(played_audio_seconds=played, at=interrupted)
    check_exported(otel)
    assert len(otel.spans("voice.turn")) == 1
    assert turn.record is not None


@PROPERTY_SETTINGS
@given(
    conversation_id=st.one_of(st.none(), names, numbers, values),
    turn_id=st.one_of(st.none(), names, numbers, values),
    conversation_attrs=attributes,
    turn_attrs=attributes,
)
def test_conversation_and_turn_ids(
    otel: Captured,
    conversation_id: Any,
    turn_id: Any,
    conversation_attrs: Any,
    turn_attrs: Any,
) -> None:
    otel.clear()

    @voice_otel.stt(provider="local")
    async def transcribe() -> str:
        return "hi"

    async def main() -> str:
        async with (
            voice_otel.conversation(conversation_id, **conversation_attrs),
            voice_otel.turn(turn_id, **turn_attrs),
        ):
            return await transcribe()

    assert asyncio.run(main()) == "hi"
    check_exported(otel)
    assert [s.name for s in otel.spans()] == ["speech_to_text", "voice.turn", "voice.conversation"]


def test_checker_rejects_invalid_values(otel: Captured) -> None:
    """The checker above is not vacuous: it fails on what it must reject."""
    span = otel.tracer.start_span("raw", attributes={"bad": float("nan")})
    span.end()
    with pytest.raises(AssertionError):
        check_exported(otel)
