"""Decorated generators and async generators: span lifetime, outcome, first output, context."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import StatusCode

import voice_otel

if TYPE_CHECKING:
    from conftest import Captured

TTFO = "voice.stage.time_to_first_output"
TTFC = "gen_ai.client.operation.time_to_first_chunk"
DURATION = "voice.stage.duration"


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


async def _settle(otel: Captured, name: str, count: int = 1) -> None:
    """Let the event loop run the async-generator finalizer until ``count`` spans ``name`` end."""
    for _ in range(100):
        if len(otel.spans(name)) >= count:
            return
        gc.collect()
        await asyncio.sleep(0)


# -- span lifetime ---------------------------------------------------------------------------


def test_generator_span_starts_at_first_iteration(otel: Captured) -> None:
    @voice_otel.llm(model="m")
    def tokens() -> Iterator[str]:
        yield "a"
        yield "b"

    stream = tokens()
    with otel.tracer.start_as_current_span("before"):
        pass
    assert otel.spans("chat m") == []

    assert next(stream) == "a"
    assert otel.spans("chat m") == []  # still open while the stream is being consumed
    assert list(stream) == ["b"]

    span, before = otel.span("chat m"), otel.span("before")
    assert (span.start_time or 0) >= (before.end_time or 0)
    assert _attrs(span)["voice.outcome"] == "ok"
    assert _attrs(span)["voice.stream.items"] == 2
    assert "voice.interrupted" not in _attrs(span)


async def test_async_generator_span_ends_when_exhausted(otel: Captured) -> None:
    @voice_otel.tts(provider="espeak-ng")
    async def audio() -> AsyncIterator[bytes]:
        for chunk in (b"1", b"2", b"3"):
            yield chunk

    stream = audio()
    assert await anext(stream) == b"1"
    assert otel.spans("text_to_speech") == []

    assert [c async for c in stream] == [b"2", b"3"]

    span = otel.span("text_to_speech")
    assert _attrs(span)["voice.outcome"] == "ok"
    assert _attrs(span)["voice.stream.items"] == 3
    assert otel.point(DURATION, {"voice.outcome": "ok"}).count == 1


def test_generator_closed_early_is_interrupted_not_error(otel: Captured) -> None:
    closed: list[bool] = []

    @voice_otel.llm(model="m")
    def tokens() -> Iterator[str]:
        try:
            yield from ("a", "b", "c")
        finally:
            closed.append(True)

    stream = tokens()
    for token in stream:
        if token == "b":
            break
    stream.close()

    span = otel.span("chat m")
    assert closed == [True]
    assert _attrs(span)["voice.outcome"] == "interrupted"
    assert _attrs(span)["voice.interrupted"] is True
    assert _attrs(span)["voice.stream.items"] == 2
    assert "error.type" not in _attrs(span)
    assert span.status.status_code is not StatusCode.ERROR
    assert otel.point(DURATION, {"voice.outcome": "interrupted"}).count == 1
    assert otel.points(DURATION, {"voice.outcome": "error"}) == []


async def test_async_generator_aclose_is_interrupted_not_error(otel: Captured) -> None:
    closed: list[bool] = []

    @voice_otel.tts
    async def audio() -> AsyncIterator[bytes]:
        try:
            for chunk in (b"1", b"2", b"3"):
                yield chunk
        finally:
            closed.append(True)

    stream = audio()
    async for chunk in stream:
        if chunk == b"1":
            break
    await stream.aclose()

    span = otel.span("text_to_speech")
    assert closed == [True]
    assert _attrs(span)["voice.outcome"] == "interrupted"
    assert _attrs(span)["voice.interrupted"] is True
    assert span.status.status_code is not StatusCode.ERROR


def test_abandoned_generator_is_interrupted_when_garbage_collected(otel: Captured) -> None:
    @voice_otel.llm(model="m")
    def tokens() -> Iterator[str]:
        yield from ("a", "b", "c")

    stream = tokens()
    next(stream)
    del stream
    gc.collect()

    span = otel.span("chat m")
    assert _attrs(span)["voice.outcome"] == "interrupted"
    assert _attrs(span)["voice.interrupted"] is True


async def test_abandoned_async_generator_is_interrupted_when_garbage_collected(
    otel: Captured,
) -> None:
    @voice_otel.llm(model="m")
    async def tokens() -> AsyncIterator[str]:
        for token in ("a", "b", "c"):
            yield token

    stream = tokens()
    await anext(stream)
    del stream
    await _settle(otel, "chat m")

    span = otel.span("chat m")
    assert _attrs(span)["voice.outcome"] == "interrupted"
    assert _attrs(span)["voice.interrupted"] is True


def test_generator_never_started_records_nothing(otel: Captured) -> None:
    @voice_otel.llm(model="m")
    def tokens() -> Iterator[str]:
        yield "a"

    stream = tokens()
    stream.close()
    del stream
    gc.collect()

    assert otel.spans() == []
    assert otel.points(DURATION) == []


async def test_cancelled_while_awaiting_next_item_is_interrupted_and_propagates(
    otel: Captured,
) -> None:
    first = asyncio.Event()
    never = asyncio.Event()
    cancelled_inside: list[bool] = []

    @voice_otel.llm(model="m")
    async def tokens() -> AsyncIterator[str]:
        yield "a"
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled_inside.append(True)
            raise
        yield "b"

    async def consume() -> None:
        async for _ in tokens():
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    span = otel.span("chat m")
    assert cancelled_inside == [True]
    assert _attrs(span)["voice.outcome"] == "interrupted"
    assert _attrs(span)["voice.interrupted"] is True
    assert "error.type" not in _attrs(span)
    assert span.status.status_code is not StatusCode.ERROR


async def test_cancelled_coroutine_is_interrupted_and_propagates(otel: Captured) -> None:
    started = asyncio.Event()

    @voice_otel.stt
    async def transcribe() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    task = asyncio.create_task(transcribe())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    span = otel.span("speech_to_text")
    assert _attrs(span)["voice.outcome"] == "interrupted"
    assert span.status.status_code is not StatusCode.ERROR


def test_error_inside_stream_is_error_outcome(otel: Captured) -> None:
    @voice_otel.llm(model="m")
    def tokens() -> Iterator[str]:
        yield "a"
        raise ConnectionError("dropped")

    with pytest.raises(ConnectionError):
        list(tokens())

    span = otel.span("chat m")
    assert _attrs(span)["voice.outcome"] == "error"
    assert _attrs(span)["error.type"] == "ConnectionError"
    assert _attrs(span)["voice.stream.items"] == 1
    assert span.status.status_code is StatusCode.ERROR


# -- time to first output ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_time_to_first_output_is_recorded_from_first_item(otel: Captured, kind: str) -> None:
    @voice_otel.llm(provider="openai", model="gpt-4o-mini")
    def sync_tokens() -> Iterator[str]:
        yield from ("a", "b")

    @voice_otel.llm(provider="openai", model="gpt-4o-mini")
    async def async_tokens() -> AsyncIterator[str]:
        for token in ("a", "b"):
            yield token

    if kind == "sync":
        assert list(sync_tokens()) == ["a", "b"]
    else:
        assert [t async for t in async_tokens()] == ["a", "b"]

    span = otel.span("chat gpt-4o-mini")
    ttfo = _attrs(span)["voice.stage.time_to_first_output"]
    duration = otel.point(DURATION).sum
    assert 0 <= ttfo <= duration
    point = otel.point(TTFO)
    assert point.count == 1
    assert point.sum == pytest.approx(ttfo)
    assert dict(point.attributes) == {
        "voice.stage": "llm",
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
    }
    assert otel.point(TTFC).sum == pytest.approx(ttfo)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_empty_stream_records_no_time_to_first_output(otel: Captured, kind: str) -> None:
    @voice_otel.tts
    def sync_nothing() -> Iterator[bytes]:
        return
        yield b""

    @voice_otel.tts
    async def async_nothing() -> AsyncIterator[bytes]:
        return
        yield b""

    if kind == "sync":
        assert list(sync_nothing()) == []
    else:
        assert [c async for c in async_nothing()] == []

    span = otel.span("text_to_speech")
    assert "voice.stage.time_to_first_output" not in _attrs(span)
    assert "voice.stream.items" not in _attrs(span)
    assert _attrs(span)["voice.outcome"] == "ok"
    assert otel.points(TTFO) == []
    assert otel.points(TTFC) == []
    assert TTFO not in otel.metrics()


def test_throw_before_first_iteration_starts_no_span(otel: Captured) -> None:
    @voice_otel.llm(model="m")
    def tokens() -> Iterator[str]:
        yield "a"

    stream = tokens()
    with pytest.raises(KeyError):
        stream.throw(KeyError("before start"))

    assert otel.spans() == []
    assert otel.points(DURATION) == []
    assert otel.points(TTFO) == []


def test_stream_item_count_is_recorded(otel: Captured) -> None:
    @voice_otel.stt
    def partials() -> Iterator[str]:
        yield from ("he", "hell", "hello", "hello there")

    assert len(list(partials())) == 4
    assert _attrs(otel.span("speech_to_text"))["voice.stream.items"] == 4


# -- send() and throw() ------------------------------------------------------------------------


def test_send_is_forwarded_to_the_users_generator(otel: Captured) -> None:
    received: list[Any] = []

    @voice_otel.llm
    def echo() -> Iterator[str]:
        value = yield "ready"
        while value is not None:
            received.append(value)
            value = yield f"got {value}"

    stream = echo()
    assert next(stream) == "ready"
    assert stream.send("x") == "got x"
    assert stream.send("y") == "got y"
    with pytest.raises(StopIteration):
        stream.send(None)

    assert received == ["x", "y"]
    assert _attrs(otel.span("chat"))["voice.outcome"] == "ok"


def test_throw_is_forwarded_to_the_users_generator(otel: Captured) -> None:
    @voice_otel.llm
    def resilient() -> Iterator[str]:
        try:
            yield "a"
        except ValueError as exc:
            yield f"recovered from {exc}"
        yield "b"

    stream = resilient()
    assert next(stream) == "a"
    assert stream.throw(ValueError("glitch")) == "recovered from glitch"
    assert list(stream) == ["b"]

    span = otel.span("chat")
    assert _attrs(span)["voice.outcome"] == "ok"
    assert _attrs(span)["voice.stream.items"] == 3


def test_throw_not_handled_by_the_users_generator_propagates_as_same_object(
    otel: Captured,
) -> None:
    error = ValueError("fatal")

    @voice_otel.llm
    def tokens() -> Iterator[str]:
        yield "a"
        yield "b"

    stream = tokens()
    next(stream)
    with pytest.raises(ValueError) as caught:
        stream.throw(error)

    assert caught.value is error
    assert _attrs(otel.span("chat"))["voice.outcome"] == "error"


async def test_asend_and_athrow_are_forwarded_to_the_users_async_generator(
    otel: Captured,
) -> None:
    received: list[Any] = []

    @voice_otel.llm
    async def echo() -> AsyncIterator[str]:
        value = yield "ready"
        while True:
            try:
                received.append(value)
                value = yield f"got {value}"
            except KeyError as exc:
                value = yield f"caught {exc.args[0]}"
            if value == "stop":
                return

    stream = echo()
    assert await stream.asend(None) == "ready"
    assert await stream.asend("x") == "got x"
    assert await stream.athrow(KeyError("k")) == "caught k"
    with pytest.raises(StopAsyncIteration):
        await stream.asend("stop")

    assert received == ["x"]
    span = otel.span("chat")
    assert _attrs(span)["voice.outcome"] == "ok"
    assert _attrs(span)["voice.stream.items"] == 3


# -- context -----------------------------------------------------------------------------------


def test_generator_leaves_consumer_context_and_detaches_cleanly(
    otel: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    @voice_otel.llm(model="m")
    def tokens() -> Iterator[str]:
        yield from ("a", "b", "c")

    with (
        caplog.at_level(logging.DEBUG),
        otel.tracer.start_as_current_span("consumer") as consumer,
    ):
        seen = []
        stream = tokens()
        for _ in stream:
            seen.append(trace.get_current_span())
            if len(seen) == 2:
                break
        stream.close()
        after = trace.get_current_span()
        assert voice_otel.current_stage() is None

    assert all(span is consumer for span in seen)
    assert after is consumer
    assert "Failed to detach context" not in caplog.text
    assert otel.span("chat m").parent.span_id == consumer.get_span_context().span_id  # type: ignore[union-attr]


async def test_async_generator_leaves_consumer_context_and_detaches_cleanly(
    otel: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    @voice_otel.tts
    async def audio() -> AsyncIterator[bytes]:
        for chunk in (b"1", b"2", b"3"):
            await asyncio.sleep(0)
            yield chunk

    with (
        caplog.at_level(logging.DEBUG),
        otel.tracer.start_as_current_span("consumer") as consumer,
    ):
        seen = []
        stream = audio()
        async for _ in stream:
            seen.append(trace.get_current_span())
            if len(seen) == 2:
                break
        await stream.aclose()
        after = trace.get_current_span()

    abandoned = audio()
    await anext(abandoned)
    del abandoned
    await _settle(otel, "text_to_speech", count=2)

    assert all(span is consumer for span in seen)
    assert after is consumer
    assert "Failed to detach context" not in caplog.text
    assert len(otel.spans("text_to_speech")) == 2


def test_span_created_inside_generator_body_is_parented_to_stage(otel: Captured) -> None:
    tracer = otel.tracer

    @voice_otel.llm(model="m")
    def tokens() -> Iterator[str]:
        with tracer.start_as_current_span("inside-first"):
            pass
        yield "a"
        with tracer.start_as_current_span("inside-later"):
            pass
        yield "b"

    with otel.tracer.start_as_current_span("consumer"):
        assert list(tokens()) == ["a", "b"]

    stage = otel.span("chat m")
    for name in ("inside-first", "inside-later"):
        child = otel.span(name)
        assert child.parent is not None
        assert child.parent.span_id == stage.context.span_id
        assert child.context.trace_id == stage.context.trace_id


async def test_span_created_inside_async_generator_body_is_parented_to_stage(
    otel: Captured,
) -> None:
    tracer = otel.tracer

    @voice_otel.tts
    async def audio() -> AsyncIterator[bytes]:
        yield b"1"
        await asyncio.sleep(0)
        with tracer.start_as_current_span("inside"):
            assert voice_otel.current_stage() is not None
        yield b"2"

    assert [c async for c in audio()] == [b"1", b"2"]

    stage, child = otel.span("text_to_speech"), otel.span("inside")
    assert child.parent is not None and child.parent.span_id == stage.context.span_id


def test_nested_streams_keep_their_own_parents(otel: Captured) -> None:
    @voice_otel.llm(model="m")
    def tokens() -> Iterator[str]:
        yield from ("hello", "world")

    @voice_otel.tts
    def speak() -> Iterator[bytes]:
        for token in tokens():
            yield token.encode()

    with otel.tracer.start_as_current_span("consumer"):
        assert list(speak()) == [b"hello", b"world"]

    tts, llm, consumer = otel.span("text_to_speech"), otel.span("chat m"), otel.span("consumer")
    assert llm.parent is not None and llm.parent.span_id == tts.context.span_id
    assert tts.parent is not None and tts.parent.span_id == consumer.context.span_id
