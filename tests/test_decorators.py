"""The stt/llm/tts decorators on every function shape: transparency, spans and stage metrics."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import voice_otel

if TYPE_CHECKING:
    from conftest import Captured

DURATION = "voice.stage.duration"
GENAI_DURATION = "gen_ai.client.operation.duration"


class Boom(Exception):
    """The user's own error."""


def _plain(text: str, *, loud: bool = False) -> str:
    return text.upper() if loud else text


async def _coroutine(text: str, *, loud: bool = False) -> str:
    return text.upper() if loud else text


def _generator(text: str, *, loud: bool = False) -> Iterator[str]:
    yield from (text.upper() if loud else text).split()


async def _async_generator(text: str, *, loud: bool = False) -> AsyncIterator[str]:
    for word in (text.upper() if loud else text).split():
        yield word


SHAPES: list[Callable[..., Any]] = [_plain, _coroutine, _generator, _async_generator]
DECORATORS = {"stt": voice_otel.stt, "llm": voice_otel.llm, "tts": voice_otel.tts}


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a decorated function of any shape and return what the consumer gets."""
    if inspect.isasyncgenfunction(fn):
        return [item async for item in fn(*args, **kwargs)]
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    if inspect.isgeneratorfunction(fn):
        return list(fn(*args, **kwargs))
    return fn(*args, **kwargs)


def _kind(fn: Callable[..., Any]) -> tuple[bool, bool, bool]:
    return (
        inspect.iscoroutinefunction(fn),
        inspect.isgeneratorfunction(fn),
        inspect.isasyncgenfunction(fn),
    )


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("bare", [True, False], ids=["bare", "with_args"])
def test_decorated_function_keeps_name_signature_and_kind(
    shape: Callable[..., Any], bare: bool
) -> None:
    decorated = voice_otel.llm(shape) if bare else voice_otel.llm(provider="p", model="m")(shape)

    assert decorated.__name__ == shape.__name__
    assert decorated.__qualname__ == shape.__qualname__
    assert decorated.__doc__ == shape.__doc__
    assert inspect.signature(decorated) == inspect.signature(shape)
    assert _kind(decorated) == _kind(shape)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__.strip("_"))
async def test_decorated_function_returns_the_users_result(
    otel: Captured, shape: Callable[..., Any]
) -> None:
    decorated = voice_otel.stt(shape)

    assert await _call(decorated, "hello there", loud=True) == await _call(
        shape, "hello there", loud=True
    )
    assert len(otel.stage_spans()) == 1


@pytest.mark.parametrize("stage", ["stt", "llm", "tts"])
def test_bare_decorator_names_span_after_operation(otel: Captured, stage: str) -> None:
    decorated = DECORATORS[stage](_plain)

    decorated("x")

    operation = {"stt": "speech_to_text", "llm": "chat", "tts": "text_to_speech"}[stage]
    span = otel.span(operation)
    assert span.kind is SpanKind.CLIENT
    assert span.attributes is not None
    assert span.attributes["voice.stage"] == stage
    assert span.attributes["gen_ai.operation.name"] == operation
    assert span.attributes["gen_ai.provider.name"] == "unknown"
    assert "gen_ai.request.model" not in span.attributes
    assert span.attributes["voice.outcome"] == "ok"


def test_decorator_arguments_become_span_and_metric_attributes(otel: Captured) -> None:
    @voice_otel.tts(provider="espeak-ng", model="en-us", voice="f2", **{"app.tier": "gold"})
    def speak(text: str) -> bytes:
        return text.encode()

    speak("hi")

    span = otel.span("text_to_speech en-us")
    assert span.attributes is not None
    assert span.attributes["gen_ai.provider.name"] == "espeak-ng"
    assert span.attributes["gen_ai.request.model"] == "en-us"
    assert span.attributes["gen_ai.output.type"] == "speech"
    assert span.attributes["voice.tts.voice"] == "f2"
    assert span.attributes["app.tier"] == "gold"
    point = otel.point(DURATION)
    assert dict(point.attributes) == {
        "voice.stage": "tts",
        "gen_ai.operation.name": "text_to_speech",
        "gen_ai.provider.name": "espeak-ng",
        "gen_ai.request.model": "en-us",
        "voice.outcome": "ok",
    }


def test_decorator_with_empty_parentheses_works_like_bare(otel: Captured) -> None:
    decorated = voice_otel.llm()(_plain)

    assert decorated("a") == "a"
    assert otel.span("chat").attributes["voice.outcome"] == "ok"  # type: ignore[index]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__.strip("_"))
async def test_users_call_runs_exactly_once(otel: Captured, shape: Callable[..., Any]) -> None:
    calls: list[str] = []

    if inspect.isasyncgenfunction(shape):

        async def fn(text: str) -> AsyncIterator[str]:
            calls.append(text)
            yield text

    elif inspect.iscoroutinefunction(shape):

        async def fn(text: str) -> str:  # type: ignore[misc]
            calls.append(text)
            return text

    elif inspect.isgeneratorfunction(shape):

        def fn(text: str) -> Iterator[str]:  # type: ignore[misc]
            calls.append(text)
            yield text

    else:

        def fn(text: str) -> str:  # type: ignore[misc]
            calls.append(text)
            return text

    await _call(voice_otel.llm(fn), "once")

    assert calls == ["once"]


@pytest.mark.parametrize("shape", ["plain", "coroutine"])
async def test_result_passes_through_as_the_same_object(otel: Captured, shape: str) -> None:
    result = object()

    def plain() -> object:
        return result

    async def coroutine() -> object:
        return result

    fn = voice_otel.llm(plain if shape == "plain" else coroutine)

    assert await _call(fn) is result


async def test_stream_items_pass_through_as_the_same_objects(otel: Captured) -> None:
    items = [object(), object()]

    @voice_otel.llm
    def gen() -> Iterator[object]:
        yield from items

    @voice_otel.llm
    async def agen() -> AsyncIterator[object]:
        for item in items:
            yield item

    got = list(gen())
    agot = [item async for item in agen()]

    assert all(a is b for a, b in zip(got, items, strict=True))
    assert all(a is b for a, b in zip(agot, items, strict=True))


def test_generator_return_value_passes_through(otel: Captured) -> None:
    @voice_otel.llm
    def gen() -> Iterator[int]:
        yield 1
        return "done"  # type: ignore[misc]

    def consume() -> Iterator[int]:
        value = yield from gen()
        assert value == "done"
        yield 2

    assert list(consume()) == [1, 2]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__.strip("_"))
async def test_exception_passes_through_as_the_same_object(
    otel: Captured, shape: Callable[..., Any]
) -> None:
    error = Boom("provider down")

    def plain() -> None:
        raise error

    async def coroutine() -> None:
        raise error

    def generator() -> Iterator[int]:
        yield 1
        raise error

    async def async_generator() -> AsyncIterator[int]:
        yield 1
        raise error

    by_kind = {
        _plain: plain,
        _coroutine: coroutine,
        _generator: generator,
        _async_generator: async_generator,
    }
    fn = voice_otel.llm(provider="openai", model="gpt-4o-mini")(by_kind[shape])

    with pytest.raises(Boom) as caught:
        await _call(fn)

    assert caught.value is error


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__.strip("_"))
async def test_exception_is_recorded_on_span_and_stage_metric(
    otel: Captured, shape: Callable[..., Any]
) -> None:
    def plain() -> None:
        raise Boom("bad")

    async def coroutine() -> None:
        raise Boom("bad")

    def generator() -> Iterator[int]:
        raise Boom("bad")
        yield 1

    async def async_generator() -> AsyncIterator[int]:
        raise Boom("bad")
        yield 1

    by_kind = {
        _plain: plain,
        _coroutine: coroutine,
        _generator: generator,
        _async_generator: async_generator,
    }
    fn = voice_otel.llm(provider="openai", model="gpt-4o-mini")(by_kind[shape])

    with pytest.raises(Boom):
        await _call(fn)

    span = otel.span("chat gpt-4o-mini")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "Boom"
    assert span.attributes["voice.outcome"] == "error"
    assert "voice.interrupted" not in span.attributes
    assert [e.name for e in span.events] == ["exception"]
    error_points = otel.points(DURATION, {"voice.outcome": "error"})
    assert len(error_points) == 1
    assert error_points[0].count == 1
    assert error_points[0].attributes["error.type"] == span.attributes["error.type"]
    assert otel.points(DURATION, {"voice.outcome": "ok"}) == []
    genai = otel.point(GENAI_DURATION)
    assert genai.attributes["error.type"] == span.attributes["error.type"]


def test_successful_call_records_both_duration_metrics_with_ok_outcome(otel: Captured) -> None:
    fn = voice_otel.llm(provider="openai", model="gpt-4o")(_plain)

    for _ in range(3):
        fn("x")

    stage = otel.point(DURATION, {"voice.outcome": "ok"})
    genai = otel.point(GENAI_DURATION)
    assert stage.count == genai.count == 3
    assert "error.type" not in genai.attributes
    assert len(otel.spans("chat gpt-4o")) == 3


def test_plain_call_records_no_time_to_first_output(otel: Captured) -> None:
    voice_otel.llm(_plain)("x")

    assert otel.points("voice.stage.time_to_first_output") == []
    assert "voice.stage.time_to_first_output" not in otel.span("chat").attributes  # type: ignore[operator]


class Agent:
    """Methods of every kind, decorated inside a class."""

    def __init__(self, name: str) -> None:
        self.name = name

    @voice_otel.stt(provider="pocketsphinx")
    def transcribe(self, audio: bytes) -> str:
        return f"{self.name}:{len(audio)}"

    @voice_otel.llm(provider="openai", model="gpt-4o-mini")
    async def reply(self, text: str) -> str:
        return f"{self.name} says {text}"

    @voice_otel.tts(provider="espeak-ng")
    def speak(self, text: str) -> Iterator[bytes]:
        for word in text.split():
            yield word.encode()

    @voice_otel.tts(provider="espeak-ng")
    async def aspeak(self, text: str) -> AsyncIterator[bytes]:
        for word in text.split():
            yield word.encode()

    @staticmethod
    @voice_otel.llm(provider="local")
    def static_reply(text: str) -> str:
        return text[::-1]

    @staticmethod
    @voice_otel.llm(provider="local")
    async def async_static_reply(text: str) -> str:
        return text[::-1]

    @voice_otel.llm(provider="local")
    @staticmethod
    async def outer_static_reply(text: str) -> str:
        return text * 2

    @voice_otel.llm(provider="local")
    @classmethod
    def outer_class_reply(cls, text: str) -> str:
        return f"{cls.__name__}:{text}"


async def test_methods_receive_self_and_are_traced(otel: Captured) -> None:
    agent = Agent("bot")

    assert agent.transcribe(b"abc") == "bot:3"
    assert await agent.reply("hi") == "bot says hi"
    assert list(agent.speak("a b")) == [b"a", b"b"]
    assert [c async for c in agent.aspeak("c d e")] == [b"c", b"d", b"e"]

    assert [s.attributes["voice.stage"] for s in otel.stage_spans()] == [  # type: ignore[index]
        "stt",
        "llm",
        "tts",
        "tts",
    ]
    assert inspect.iscoroutinefunction(Agent.reply)
    assert inspect.isgeneratorfunction(Agent.speak)
    assert inspect.isasyncgenfunction(Agent.aspeak)
    assert list(inspect.signature(Agent.reply).parameters) == ["self", "text"]


async def test_staticmethods_work_from_class_and_instance(otel: Captured) -> None:
    agent = Agent("bot")

    assert Agent.static_reply("abc") == "cba"
    assert agent.static_reply("xy") == "yx"
    assert await Agent.async_static_reply("ab") == "ba"
    assert await agent.async_static_reply("cd") == "dc"

    assert len(otel.spans("chat")) == 4


async def test_decorator_above_staticmethod_and_classmethod_works(otel: Captured) -> None:
    agent = Agent("bot")

    assert await Agent.outer_static_reply("ab") == "abab"
    assert await agent.outer_static_reply("c") == "cc"
    assert Agent.outer_class_reply("x") == "Agent:x"
    assert agent.outer_class_reply("y") == "Agent:y"

    assert inspect.iscoroutinefunction(Agent.outer_static_reply)
    spans = otel.spans("chat")
    assert len(spans) == 4
    assert all(s.attributes["voice.outcome"] == "ok" for s in spans)  # type: ignore[index]


def test_stage_span_is_current_inside_the_users_function(otel: Captured) -> None:
    seen: list[Any] = []

    @voice_otel.llm(model="m")
    def fn() -> None:
        seen.append(voice_otel.current_stage())
        with otel.tracer.start_as_current_span("inner"):
            pass

    with otel.tracer.start_as_current_span("outer"):
        fn()

    stage, inner, outer = otel.span("chat m"), otel.span("inner"), otel.span("outer")
    assert seen[0] is not None
    assert inner.parent is not None and inner.parent.span_id == stage.context.span_id
    assert stage.parent is not None and stage.parent.span_id == outer.context.span_id
    assert voice_otel.current_stage() is None


async def test_coroutine_stage_context_is_detached_after_await(otel: Captured) -> None:
    @voice_otel.llm
    async def fn() -> str:
        return "x"

    with otel.tracer.start_as_current_span("consumer") as consumer:
        await fn()
        assert trace.get_current_span() is consumer
    assert voice_otel.current_stage() is None


@pytest.mark.parametrize("kind", ["asr", "LLM", ""])
def test_unknown_stage_kind_fails_where_it_is_written(kind: str) -> None:
    with pytest.raises(ValueError, match="stage must be one of stt, llm, tts"):
        voice_otel.stage(kind)
