"""Conversations and turns: voice-to-voice latency, its decomposition, interruptions, retries."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.trace import StatusCode

import voice_otel
from voice_otel._turn import decompose

if TYPE_CHECKING:
    from conftest import Captured

    from voice_otel._runtime import Options

COMPONENTS = ("stt", "llm", "tts", "other")
DURATION = "voice.stage.duration"


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


@voice_otel.stt(provider="deepgram", model="nova-3")
def transcribe(audio: bytes) -> str:
    return audio.decode()


@voice_otel.llm(provider="openai", model="gpt-4o-mini")
def think(text: str) -> Iterator[str]:
    yield from text.split()


@voice_otel.tts(provider="cartesia", model="sonic-2")
def speak(text: str) -> Iterator[bytes]:
    for word in text.split():
        yield word.encode()


@voice_otel.llm(provider="openai", model="gpt-4o-mini")
async def athink(text: str) -> AsyncIterator[str]:
    for word in text.split():
        await asyncio.sleep(0)
        yield word


@voice_otel.tts(provider="cartesia", model="sonic-2")
async def aspeak(text: str) -> AsyncIterator[bytes]:
    for word in text.split():
        await asyncio.sleep(0)
        yield word.encode()


def _pipeline() -> list[bytes]:
    text = transcribe(b"what time is it")
    reply = " ".join(think(text))
    return list(speak(reply))


# -- voice-to-voice latency --------------------------------------------------------------------


def test_latency_runs_from_turn_start_to_first_tts_chunk(otel: Captured) -> None:
    with voice_otel.conversation("call-1"), voice_otel.turn() as t:
        _pipeline()

    record = t.record
    assert record is not None
    tts_span = otel.span("text_to_speech sonic-2")
    turn_span = otel.span("voice.turn")
    assert record.latency is not None
    assert record.tts_time_to_first_byte == _attrs(tts_span)["voice.stage.time_to_first_output"]
    # The pipeline is sequential: the caller waited for all of STT, all of the LLM stream and
    # the TTS stream's first chunk.
    stt_duration = otel.point(DURATION, {"voice.stage": "stt"}).sum
    llm_duration = otel.point(DURATION, {"voice.stage": "llm"}).sum
    assert record.stt_duration == pytest.approx(stt_duration)
    assert record.latency >= stt_duration + llm_duration + record.tts_time_to_first_byte
    assert _attrs(turn_span)["voice.turn.latency"] == record.latency
    point = otel.point("voice.turn.latency")
    assert point.count == 1
    assert point.sum == pytest.approx(record.latency)


def test_latency_starts_at_user_stopped_speaking_mark(otel: Captured) -> None:
    with voice_otel.turn() as t:
        stopped = time.monotonic() - 2.0  # speech ended before the turn object was created
        t.user_stopped_speaking(at=stopped)
        _pipeline()

    record = t.record
    assert record is not None and record.latency is not None
    assert t.first_audio_at is not None
    assert record.latency == pytest.approx(t.first_audio_at - stopped)
    assert record.latency >= 2.0  # includes the time before the turn started ...
    assert record.components["other"] >= 2.0 - 1e-9  # ... which no stage accounts for


def test_bot_started_speaking_mark_ends_latency_without_tts(otel: Captured) -> None:
    with voice_otel.turn() as t:
        t.user_stopped_speaking(at=100.0)
        t.bot_started_speaking(at=100.75)

    record = t.record
    assert record is not None
    assert record.latency == pytest.approx(0.75)
    assert record.components == pytest.approx({"stt": 0.0, "llm": 0.0, "tts": 0.0, "other": 0.75})
    assert record.tts_time_to_first_byte is None


def test_bot_started_speaking_mark_overrides_tts_first_chunk(otel: Captured) -> None:
    with voice_otel.turn() as t:
        start = time.monotonic()
        t.user_stopped_speaking(at=start)
        _pipeline()
        played = time.monotonic() + 0.5  # the transport reports when audio reached the caller
        t.bot_started_speaking(at=played)

    record = t.record
    assert record is not None
    assert record.latency == pytest.approx(played - start)


def test_turn_without_bot_audio_records_no_latency(otel: Captured) -> None:
    with voice_otel.turn() as t:
        transcribe(b"hello")
        list(think("hi"))

    record = t.record
    assert record is not None
    assert record.latency is None
    assert record.components == {}
    assert "voice.turn.latency" not in _attrs(otel.span("voice.turn"))
    assert otel.points("voice.turn.latency") == []
    assert otel.points("voice.turn.latency.component") == []
    assert otel.point("voice.turns", {"voice.outcome": "ok"}).value == 1


def test_non_streaming_tts_marks_first_audio_when_it_returns(otel: Captured) -> None:
    @voice_otel.tts
    def synthesize(text: str) -> bytes:
        return text.encode()

    with voice_otel.turn() as t:
        synthesize("hello")

    record = t.record
    assert record is not None and record.latency is not None
    # Audio of a non-streaming call is there when it returns: first byte = its whole duration.
    assert record.tts_time_to_first_byte == pytest.approx(otel.point(DURATION).sum)
    assert "voice.stage.time_to_first_output" not in _attrs(otel.span("text_to_speech"))
    assert record.components["tts"] == pytest.approx(record.tts_time_to_first_byte)


# -- decomposition -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_components_are_non_negative_and_sum_to_latency(otel: Captured, kind: str) -> None:
    if kind == "sync":
        with voice_otel.turn() as t:
            _pipeline()
    else:
        async with voice_otel.turn() as t:
            text = transcribe(b"what time is it")
            reply = " ".join([w async for w in athink(text)])
            [c async for c in aspeak(reply)]

    record = t.record
    assert record is not None and record.latency is not None
    assert set(record.components) == set(COMPONENTS)
    assert all(v >= 0 for v in record.components.values())
    assert sum(record.components.values()) == pytest.approx(record.latency, abs=1e-9)
    assert record.components["stt"] > 0
    assert record.components["llm"] > 0
    assert record.components["tts"] > 0

    span = otel.span("voice.turn")
    for name in COMPONENTS:
        assert _attrs(span)[f"voice.turn.latency.{name}"] == record.components[name]
        point = otel.point("voice.turn.latency.component", {"voice.latency.component": name})
        assert point.count == 1
        assert point.sum == pytest.approx(record.components[name])


def test_decompose_gives_overlap_to_the_later_stage() -> None:
    intervals = [("stt", 0.0, 1.0), ("llm", 0.5, 2.0), ("tts", 1.5, 3.0)]

    parts = decompose(intervals, 0.0, 2.5)

    assert parts == pytest.approx({"stt": 0.5, "llm": 1.0, "tts": 1.0, "other": 0.0})


def test_decompose_attributes_gaps_to_other() -> None:
    intervals = [("stt", 1.0, 2.0), ("llm", 3.0, 4.0), ("tts", 4.5, 5.0)]

    parts = decompose(intervals, 0.0, 5.0)

    assert parts == pytest.approx({"stt": 1.0, "llm": 1.0, "tts": 0.5, "other": 2.5})


def test_decompose_clips_intervals_to_the_latency_window() -> None:
    intervals = [("stt", -5.0, 1.0), ("llm", 1.0, 10.0), ("tts", 20.0, 30.0)]

    parts = decompose(intervals, 0.0, 2.0)

    assert parts == pytest.approx({"stt": 1.0, "llm": 1.0, "tts": 0.0, "other": 0.0})


def test_decompose_counts_repeated_and_nested_intervals_once() -> None:
    intervals = [("llm", 0.0, 2.0), ("llm", 0.5, 1.0), ("llm", 1.0, 2.0), ("stt", 0.2, 0.4)]

    parts = decompose(intervals, 0.0, 3.0)

    assert parts == pytest.approx({"stt": 0.0, "llm": 2.0, "tts": 0.0, "other": 1.0})


def test_decompose_without_intervals_is_all_other() -> None:
    assert decompose([], 1.0, 1.5) == pytest.approx(
        {"stt": 0.0, "llm": 0.0, "tts": 0.0, "other": 0.5}
    )
    assert decompose([], 2.0, 2.0) == {"stt": 0.0, "llm": 0.0, "tts": 0.0, "other": 0.0}


_interval = st.tuples(
    st.sampled_from(["stt", "llm", "tts"]),
    st.floats(-10, 10, allow_nan=False),
    st.floats(0, 10, allow_nan=False),
).map(lambda x: (x[0], x[1], x[1] + x[2]))


@given(
    st.lists(_interval, max_size=8),
    st.floats(-10, 10, allow_nan=False),
    st.floats(0, 10, allow_nan=False),
)
def test_decompose_parts_are_non_negative_and_sum_to_window(
    intervals: list[tuple[str, float, float]], t0: float, width: float
) -> None:
    t1 = t0 + width

    parts = decompose(intervals, t0, t1)

    assert set(parts) == set(COMPONENTS)
    assert all(v >= 0 for v in parts.values())
    assert sum(parts.values()) == pytest.approx(t1 - t0, abs=1e-9)


# -- interruptions -----------------------------------------------------------------------------


def _chunk_usage(chunk: bytes) -> dict[str, float]:
    return {"output_audio_seconds": 0.5, "characters": 10}


@voice_otel.tts(provider="cartesia", model="sonic-2", usage=_chunk_usage)
def speak_metered(text: str) -> Iterator[bytes]:
    for word in text.split():
        yield word.encode()


def test_interruption_is_counted_with_stop_latency_and_wasted_output(otel: Captured) -> None:
    with voice_otel.conversation() as conv:
        with voice_otel.turn() as t:
            stream = speak_metered("one two three four")
            for i, _ in enumerate(stream):
                if i == 2:  # three chunks produced: 1.5 s of audio, 30 characters
                    t.interrupt(played_audio_seconds=0.5)
                    break
            stream.close()
        assert conv.interruptions == 1

    record = t.record
    assert record is not None
    assert record.outcome == "interrupted"
    assert record.interrupted is True
    assert record.interruption_stop_latency is not None
    assert record.interruption_stop_latency >= 0
    assert record.wasted_audio_seconds == pytest.approx(1.0)
    assert record.wasted_characters == pytest.approx(20.0)

    turn_span = otel.span("voice.turn")
    assert _attrs(turn_span)["voice.outcome"] == "interrupted"
    assert _attrs(turn_span)["voice.interrupted"] is True
    assert _attrs(turn_span)["voice.tts.wasted.audio"] == pytest.approx(1.0)
    assert _attrs(turn_span)["voice.tts.wasted.characters"] == pytest.approx(20.0)
    assert _attrs(turn_span)["voice.interruption.stop_latency"] == record.interruption_stop_latency
    assert _attrs(otel.span("text_to_speech sonic-2"))["voice.outcome"] == "interrupted"
    assert _attrs(otel.span("voice.conversation"))["voice.conversation.interruptions"] == 1

    assert otel.point("voice.interruptions").value == 1
    assert otel.point("voice.turns", {"voice.outcome": "interrupted"}).value == 1
    assert otel.points("voice.turns", {"voice.outcome": "ok"}) == []
    stop = otel.point("voice.interruption.stop_latency")
    assert stop.count == 1
    assert stop.sum == pytest.approx(record.interruption_stop_latency)
    tts_attrs = {"gen_ai.provider.name": "cartesia", "gen_ai.request.model": "sonic-2"}
    assert otel.point("voice.tts.wasted.audio", tts_attrs).value == pytest.approx(1.0)
    assert otel.point("voice.tts.wasted.characters", tts_attrs).value == pytest.approx(20.0)


@voice_otel.tts(provider="cartesia", model="sonic-2", usage=_chunk_usage)
async def speak_metered_async(text: str) -> AsyncIterator[bytes]:
    for word in text.split():
        yield word.encode()


async def _break_after_three(t: voice_otel.Turn, stream: Any) -> None:
    i = 0
    async for _ in stream:
        if i == 2:  # three chunks produced: 1.5 s of audio, 30 characters
            t.interrupt(played_audio_seconds=0.5)
            break
        i += 1


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_stream_left_with_break_and_never_closed_ends_with_its_turn(
    otel: Captured, kind: str
) -> None:
    # The README's barge-in: break out of the TTS stream and leave the turn. Python closes the
    # generator only when it is garbage-collected; `stream` keeps it alive past the turn.
    async with voice_otel.conversation() as conv:
        async with voice_otel.turn() as t:
            if kind == "sync":
                stream: Any = speak_metered("one two three four")
                for i, _ in enumerate(stream):
                    if i == 2:
                        t.interrupt(played_audio_seconds=0.5)
                        break
            else:
                stream = speak_metered_async("one two three four")
                await _break_after_three(t, stream)
        turn_span = otel.span("voice.turn")  # ended with the turn, stream still alive
        tts_span = otel.span("text_to_speech sonic-2")

    record = t.record
    assert record is not None
    assert record.tts_time_to_first_byte is not None
    assert record.interruption_stop_latency is not None
    assert record.wasted_audio_seconds == pytest.approx(1.0)
    assert record.wasted_characters == pytest.approx(20.0)
    price = 46.7 / 1e6  # cartesia/sonic-2 per character in the shipped table
    assert record.cost == pytest.approx(30 * price)
    assert conv.cost == pytest.approx(record.cost)
    assert record.components["tts"] > 0
    assert _attrs(tts_span)["voice.outcome"] == "interrupted"
    assert (tts_span.end_time or 0) <= (turn_span.end_time or 0)
    assert otel.point("voice.interruption.stop_latency").count == 1

    # Closing it later (or garbage collection) records nothing twice.
    if kind == "sync":
        stream.close()
    else:
        await stream.aclose()
    assert len(otel.spans("text_to_speech sonic-2")) == 1
    assert otel.point("voice.interruption.stop_latency").count == 1


def test_interruption_without_played_seconds_estimates_realtime_playback(
    otel: Captured,
) -> None:
    with voice_otel.turn() as t:
        stream = speak_metered("a b c d")  # 2 s of audio, 40 characters
        chunks = list(stream)
        assert t.first_audio_at is not None
        t.interrupt(at=t.first_audio_at + 0.5)  # half a second heard

    record = t.record
    assert record is not None
    assert len(chunks) == 4
    assert record.wasted_audio_seconds == pytest.approx(1.5)
    assert record.wasted_characters == pytest.approx(30.0)
    # TTS had finished before the barge-in: nothing had to stop.
    assert record.interruption_stop_latency is None
    assert otel.points("voice.interruption.stop_latency") == []


def test_interruption_when_played_exceeds_produced_wastes_nothing(otel: Captured) -> None:
    with voice_otel.turn() as t:
        list(speak_metered("a b"))
        t.interrupt(played_audio_seconds=5.0)

    record = t.record
    assert record is not None
    assert record.outcome == "interrupted"
    assert record.wasted_audio_seconds == 0
    assert record.wasted_characters == 0
    assert otel.points("voice.tts.wasted.audio") == []


def test_turn_without_interruption_has_no_interruption_telemetry(otel: Captured) -> None:
    with voice_otel.turn() as t:
        list(speak_metered("a b"))

    record = t.record
    assert record is not None
    assert record.interrupted is False
    assert record.wasted_audio_seconds == 0
    assert "voice.tts.wasted.audio" not in _attrs(otel.span("voice.turn"))
    assert otel.points("voice.interruptions") == []
    assert otel.points("voice.tts.wasted.audio") == []


# -- retries -----------------------------------------------------------------------------------


def test_retried_llm_stage_is_marked_with_retry_attempt(otel: Captured) -> None:
    failures = [ConnectionError("reset")]

    @voice_otel.llm(provider="openai", model="gpt-4o")
    def answer(text: str) -> str:
        if failures:
            raise failures.pop()
        return text

    with voice_otel.turn():
        for _ in range(2):
            try:
                answer("hi")
                break
            except ConnectionError:
                continue
        answer("a later call, not a retry")

    first, retry, later = otel.spans("chat gpt-4o")
    assert _attrs(first)["voice.outcome"] == "error"
    assert "voice.retry.attempt" not in _attrs(first)
    assert _attrs(retry)["voice.outcome"] == "ok"
    assert _attrs(retry)["voice.retry.attempt"] == 1
    assert "voice.retry.attempt" not in _attrs(later)


def test_retry_attempts_count_up_and_are_per_turn(otel: Captured) -> None:
    @voice_otel.llm(model="m")
    def flaky(fail: bool) -> str:
        if fail:
            raise TimeoutError
        return "ok"

    with voice_otel.turn():
        for fail in (True, True, False):
            with contextlib.suppress(TimeoutError):
                flaky(fail)
    with voice_otel.turn():
        flaky(False)

    attempts = [_attrs(s).get("voice.retry.attempt") for s in otel.spans("chat m")]
    assert attempts == [None, 1, 2, None]


# -- lifecycle ---------------------------------------------------------------------------------


def test_turn_is_recorded_when_it_ends_not_at_conversation_end(otel: Captured) -> None:
    with voice_otel.conversation() as conv:
        with voice_otel.turn():
            _pipeline()

        assert otel.point("voice.turn.latency").count == 1
        assert otel.point("voice.turns", {"voice.outcome": "ok"}).value == 1
        assert len(otel.spans("voice.turn")) == 1
        assert otel.spans("voice.conversation") == []
        assert conv.turns == 1

    assert len(otel.spans("voice.conversation")) == 1


def test_sync_conversation_nests_turns_and_stages(otel: Captured) -> None:
    with voice_otel.conversation("call-7", **{"app.customer_tier": "gold"}) as conv:
        with voice_otel.turn("first") as t1:
            _pipeline()
        with conv.turn() as t2:
            _pipeline()

    conv_span = otel.span("voice.conversation")
    turns = otel.spans("voice.turn")
    assert [_attrs(s)["voice.turn.index"] for s in turns] == [1, 2]
    assert [_attrs(s)["voice.turn.id"] for s in turns] == ["first", t2.id]
    assert t1.index == 1 and t2.index == 2
    for turn_span in turns:
        assert turn_span.parent is not None
        assert turn_span.parent.span_id == conv_span.context.span_id
        assert _attrs(turn_span)["gen_ai.conversation.id"] == "call-7"
    for stage_span in otel.stage_spans():
        assert stage_span.parent is not None
        assert stage_span.parent.span_id in {s.context.span_id for s in turns}
        assert stage_span.context.trace_id == conv_span.context.trace_id
    assert _attrs(conv_span)["gen_ai.conversation.id"] == "call-7"
    assert _attrs(conv_span)["app.customer_tier"] == "gold"
    assert _attrs(conv_span)["voice.conversation.turns"] == 2
    assert conv.turns == 2
    assert voice_otel.current_conversation() is None
    assert voice_otel.current_turn() is None
    assert otel.point("voice.conversation.duration").count == 1
    assert otel.point("voice.conversations.active").value == 0


async def test_async_conversation_and_turn_context_managers(otel: Captured) -> None:
    async with voice_otel.conversation("call-9") as conv:
        assert voice_otel.current_conversation() is conv
        async with voice_otel.turn() as t:
            assert voice_otel.current_turn() is t
            reply = " ".join([w async for w in athink("good morning")])
            [c async for c in aspeak(reply)]
        assert voice_otel.current_turn() is None

    assert voice_otel.current_conversation() is None
    record = t.record
    assert record is not None and record.latency is not None
    turn_span, conv_span = otel.span("voice.turn"), otel.span("voice.conversation")
    assert turn_span.parent is not None
    assert turn_span.parent.span_id == conv_span.context.span_id
    assert record.conversation_id == "call-9"


def test_turn_outside_a_conversation_is_standalone(otel: Captured) -> None:
    with voice_otel.turn() as t:
        _pipeline()

    record = t.record
    assert record is not None
    assert record.conversation_id is None
    assert record.index == 0
    assert otel.span("voice.turn").parent is None
    assert "gen_ai.conversation.id" not in _attrs(otel.span("voice.turn"))


def test_turn_record_fields(otel: Captured) -> None:
    with voice_otel.conversation("call-3"), voice_otel.turn("t-1") as t:
        _pipeline()

    record = t.record
    assert record is not None
    turn_span = otel.span("voice.turn")
    assert record.index == 1
    assert record.turn_id == "t-1"
    assert record.conversation_id == "call-3"
    assert record.outcome == "ok"
    assert record.latency is not None
    assert record.latency == _attrs(turn_span)["voice.turn.latency"]
    assert set(record.components) == set(COMPONENTS)
    assert record.stt_duration == otel.point(DURATION, {"voice.stage": "stt"}).sum
    llm_span = otel.span("chat gpt-4o-mini")
    assert record.llm_time_to_first_token == _attrs(llm_span)["voice.stage.time_to_first_output"]
    tts_span = otel.span("text_to_speech sonic-2")
    assert record.tts_time_to_first_byte == _attrs(tts_span)["voice.stage.time_to_first_output"]
    assert record.interrupted is False
    assert record.interruption_stop_latency is None
    assert record.wasted_audio_seconds == 0
    assert record.wasted_characters == 0
    assert record.cost == 0
    assert record.slow is False
    assert record.trace_id == format(turn_span.context.trace_id, "032x")


def test_turn_listener_is_called_with_the_record(otel: Captured) -> None:
    received: list[Any] = []
    remove = voice_otel.add_turn_listener(received.append)

    with voice_otel.turn() as t:
        _pipeline()
    remove()
    with voice_otel.turn():
        pass

    assert received == [t.record]
    assert received[0] is t.record


def test_stage_listener_is_called_with_the_outcome(otel: Captured) -> None:
    received: list[voice_otel.StageOutcome] = []
    remove = voice_otel.add_stage_listener(received.append)

    transcribe(b"hi")
    with pytest.raises(ZeroDivisionError), voice_otel.stage("llm", provider="x", model="y"):
        raise ZeroDivisionError
    remove()
    transcribe(b"ignored")

    assert [(o.stage, o.provider, o.model, o.outcome, o.error_type) for o in received] == [
        ("stt", "deepgram", "nova-3", "ok", None),
        ("llm", "x", "y", "error", "ZeroDivisionError"),
    ]
    assert all(o.duration >= 0 for o in received)


@pytest.mark.parametrize(("latency", "slow"), [(0.8, True), (0.3, False)])
def test_turn_is_slow_when_latency_exceeds_objective(
    otel: Captured, options: Options, latency: float, slow: bool
) -> None:
    options.latency_objective = 0.5

    with voice_otel.turn() as t:
        t.user_stopped_speaking(at=50.0)
        t.bot_started_speaking(at=50.0 + latency)

    record = t.record
    assert record is not None
    assert record.slow is slow
    span = otel.span("voice.turn")
    assert _attrs(span)["voice.turn.slow"] is slow
    assert _attrs(span)["voice.turn.latency_objective"] == 0.5


def test_turn_with_error_has_error_outcome_and_reraises(otel: Captured) -> None:
    error = RuntimeError("pipeline broke")

    with pytest.raises(RuntimeError) as caught, voice_otel.turn() as t:
        transcribe(b"x")
        raise error

    assert caught.value is error
    record = t.record
    assert record is not None and record.outcome == "error"
    span = otel.span("voice.turn")
    assert span.status.status_code is StatusCode.ERROR
    assert _attrs(span)["error.type"] == "RuntimeError"
    assert otel.point("voice.turns", {"voice.outcome": "error"}).value == 1


async def test_cancelled_turn_is_interrupted_not_error(otel: Captured) -> None:
    started = asyncio.Event()
    holder: list[Any] = []

    async def run_turn() -> None:
        async with voice_otel.turn() as t:
            holder.append(t)
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(run_turn())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    record = holder[0].record
    assert record is not None and record.outcome == "interrupted"
    span = otel.span("voice.turn")
    assert span.status.status_code is not StatusCode.ERROR
    assert otel.point("voice.turns", {"voice.outcome": "interrupted"}).value == 1


def test_turn_metrics_carry_no_ids(otel: Captured) -> None:
    with voice_otel.conversation("call-secret"), voice_otel.turn("turn-secret") as t:
        _pipeline()
        t.interrupt(played_audio_seconds=0)

    for metric in otel.metrics().values():
        for point in metric.data.data_points:
            values = set((point.attributes or {}).values())
            assert "call-secret" not in values
            assert "turn-secret" not in values


def test_stage_spans_carry_the_conversation_id(otel: Captured) -> None:
    transcribe(b"outside")
    with voice_otel.conversation("call-7"):
        transcribe(b"greeting, outside any turn")
        with voice_otel.turn():
            list(speak("".join(think(transcribe(b"hello")))))

    conv = voice_otel.conversation("call-8")
    with conv:  # conv.turn() brings its conversation into a task that runs outside it
        asyncio.run(_in_new_context(conv.turn))

    ids = [_attrs(s).get("gen_ai.conversation.id") for s in otel.stage_spans()]
    assert ids == [None, "call-7", "call-7", "call-7", "call-7", "call-8"]


async def _in_new_context(make_turn: Any) -> None:
    async def task() -> None:
        with make_turn():
            transcribe(b"from a helper task")

    await asyncio.create_task(task(), context=contextvars.Context())
