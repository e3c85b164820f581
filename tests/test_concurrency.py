"""Concurrent conversations never mix; context follows work into threads when asked to."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import voice_otel

if TYPE_CHECKING:
    from conftest import Captured


@voice_otel.stt(provider="deepgram", model="nova-3")
def transcribe(audio: bytes) -> str:
    return audio.decode()


@voice_otel.llm(provider="openai", model="gpt-4o-mini")
async def think(text: str) -> AsyncIterator[str]:
    for word in text.split():
        await asyncio.sleep(0)  # let the other conversation run in between
        yield word


@voice_otel.tts(provider="cartesia", model="sonic-2")
async def speak(text: str) -> AsyncIterator[bytes]:
    for word in text.split():
        await asyncio.sleep(0)
        yield word.encode()


@voice_otel.llm(provider="openai", model="gpt-4o-mini")
def think_sync(text: str) -> Iterator[str]:
    yield from text.split()


@voice_otel.tts(provider="cartesia", model="sonic-2")
def speak_sync(text: str) -> Iterator[bytes]:
    for word in text.split():
        yield word.encode()


def _conversation_of(span: Any) -> str:
    return str((span.attributes or {})["gen_ai.conversation.id"])


def _assert_not_mixed(otel: Captured, conversation_ids: list[str], turns_each: int) -> None:
    """Each conversation's turns and stages are in its own trace, under its own spans."""
    conv_spans = {_conversation_of(s): s for s in otel.spans("voice.conversation")}
    assert sorted(conv_spans) == sorted(conversation_ids)
    trace_of = {cid: s.context.trace_id for cid, s in conv_spans.items()}
    assert len(set(trace_of.values())) == len(conversation_ids)

    turn_spans = otel.spans("voice.turn")
    assert len(turn_spans) == turns_each * len(conversation_ids)
    turn_owner: dict[int, str] = {}
    for span in turn_spans:
        cid = _conversation_of(span)
        assert span.context.trace_id == trace_of[cid]
        assert span.parent is not None
        assert span.parent.span_id == conv_spans[cid].context.span_id
        turn_owner[span.context.span_id] = cid

    stages = otel.stage_spans()
    assert len(stages) == 3 * turns_each * len(conversation_ids)
    for span in stages:
        assert span.parent is not None
        owner = turn_owner[span.parent.span_id]
        assert span.context.trace_id == trace_of[owner]
    for cid in conversation_ids:
        indexes = sorted(
            (s.attributes or {})["voice.turn.index"]
            for s in turn_spans
            if _conversation_of(s) == cid
        )
        assert indexes == list(range(1, turns_each + 1))


async def test_conversations_in_asyncio_tasks_never_mix(otel: Captured) -> None:
    async def call(cid: str) -> list[Any]:
        records = []
        async with voice_otel.conversation(cid) as conv:
            for _ in range(3):
                async with voice_otel.turn() as t:
                    text = transcribe(cid.encode())
                    await asyncio.sleep(0)
                    reply = " ".join([w async for w in think(f"{text} one two three")])
                    [c async for c in speak(reply)]
                    assert voice_otel.current_conversation() is conv
                    assert voice_otel.current_turn() is t
                records.append(t.record)
        return records

    ids = ["call-a", "call-b", "call-c"]
    results = await asyncio.gather(*(call(cid) for cid in ids))

    _assert_not_mixed(otel, ids, turns_each=3)
    for cid, records in zip(ids, results, strict=True):
        assert [r.conversation_id for r in records] == [cid] * 3
        assert [r.index for r in records] == [1, 2, 3]
        assert all(r.latency is not None for r in records)


def test_conversations_in_threads_never_mix(otel: Captured) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def call(cid: str) -> None:
        try:
            with voice_otel.conversation(cid) as conv:
                barrier.wait(timeout=30)  # both conversations are open at the same time
                for _ in range(3):
                    with voice_otel.turn():
                        text = transcribe(cid.encode())
                        reply = " ".join(think_sync(f"{text} hello there"))
                        list(speak_sync(reply))
                        assert voice_otel.current_conversation() is conv
                barrier.wait(timeout=30)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(cid,)) for cid in ("call-x", "call-y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert not any(t.is_alive() for t in threads)
    _assert_not_mixed(otel, ["call-x", "call-y"], turns_each=3)


def test_in_context_keeps_parent_in_thread_pool_submit(otel: Captured) -> None:
    with (
        ThreadPoolExecutor(max_workers=2) as pool,
        voice_otel.conversation("call-p"),
        voice_otel.turn() as t,
    ):
        bound = pool.submit(voice_otel.in_context(transcribe), b"bound").result(timeout=30)
        seen = pool.submit(voice_otel.in_context(voice_otel.current_turn)).result(timeout=30)
        unbound_turn = pool.submit(voice_otel.current_turn).result(timeout=30)
        list(speak_sync("hi"))

    assert bound == "bound"
    assert seen is t
    assert unbound_turn is None  # submit alone does not carry the context: why in_context exists
    turn_span = otel.span("voice.turn")
    stt = otel.span("speech_to_text nova-3")
    assert stt.parent is not None and stt.parent.span_id == turn_span.context.span_id
    assert stt.context.trace_id == turn_span.context.trace_id
    record = t.record
    assert record is not None and record.stt_duration is not None


async def test_in_context_keeps_parent_in_run_in_executor(otel: Captured) -> None:
    loop = asyncio.get_running_loop()
    async with voice_otel.conversation("call-e"), voice_otel.turn():
        await loop.run_in_executor(None, voice_otel.in_context(transcribe), b"x")

    turn_span = otel.span("voice.turn")
    stt = otel.span("speech_to_text nova-3")
    assert stt.parent is not None and stt.parent.span_id == turn_span.context.span_id


async def test_asyncio_to_thread_keeps_parent_as_is(otel: Captured) -> None:
    async with voice_otel.conversation("call-t"), voice_otel.turn() as t:
        text = await asyncio.to_thread(transcribe, b"threaded")
        in_thread_turn = await asyncio.to_thread(voice_otel.current_turn)

    assert text == "threaded"
    assert in_thread_turn is t
    turn_span = otel.span("voice.turn")
    stt = otel.span("speech_to_text nova-3")
    assert stt.parent is not None and stt.parent.span_id == turn_span.context.span_id


def test_in_context_binds_the_context_at_wrap_time(otel: Captured) -> None:
    with voice_otel.conversation("first") as first:
        bound = voice_otel.in_context(voice_otel.current_conversation)
    with voice_otel.conversation("second"):
        assert bound() is first
    assert bound() is first


def test_in_context_runs_each_call_in_a_fresh_copy(otel: Captured) -> None:
    var: contextvars.ContextVar[int] = contextvars.ContextVar("n", default=0)

    def bump() -> int:
        var.set(var.get() + 1)
        return var.get()

    bound = voice_otel.in_context(bump)

    assert [bound(), bound(), bound()] == [1, 1, 1]
    assert var.get() == 0


async def test_turn_started_in_helper_task_nests_under_conversation_not_stage(
    otel: Captured,
) -> None:
    async with voice_otel.conversation("call-h"):

        @voice_otel.llm(model="m")
        async def answer() -> str:
            # The next turn starts from code running inside this stage.
            async with voice_otel.turn():
                pass
            return "ok"

        await answer()

    conv_span, turn_span = otel.span("voice.conversation"), otel.span("voice.turn")
    assert turn_span.parent is not None
    assert turn_span.parent.span_id == conv_span.context.span_id
