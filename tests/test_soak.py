"""A compressed soak: 100,000 turns as fast as the machine goes, with memory and state watched.

Conversations of ten turns each (STT call, streamed LLM reply, streamed TTS audio; every
seventh turn interrupted mid-audio, every eleventh LLM call failing, every tenth conversation
run as async code) export to a discarding exporter. After a warm-up, at checkpoints, the test
checks that no span is left open, that no context (OpenTelemetry context, current conversation,
turn or stage) is left behind, that no voice_otel object outlives its turn, and counts the
memory blocks the interpreter holds (``sys.getallocatedblocks()``: every live object is at least
one). Memory must stay flat: the growth from the first checkpoint to the last is bounded by a
small constant, not by the number of turns. Counting blocks costs nothing per turn, unlike
tracemalloc, which would make the run several times longer; resident memory is reported too.

The work is bounded: a fixed number of turns, no sleeping, no network; about half a millisecond
of CPU per turn on a 2-core CI machine.

``VOICE_OTEL_SOAK_TURNS`` changes the count (the default is the full 100,000).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import voice_otel
from voice_otel import _runtime, _stage, _turn

if TYPE_CHECKING:
    from conftest import Captured
    from opentelemetry.context import Context

TURNS = int(os.environ.get("VOICE_OTEL_SOAK_TURNS", "100000"))
TURNS_PER_CONVERSATION = 10
CHECKPOINTS = 5
WARMUP_CONVERSATIONS = 50
# Allocated blocks may grow this much from the first checkpoint to the last (caches settling,
# the metric SDK's bounded state); a leak of one object every 50 turns would exceed it.
BLOCK_BOUND = 1_000


class Counting(SpanExporter):
    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class OpenSpans(SpanProcessor):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = 0
        self.ended = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        with self._lock:
            self.started += 1

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.ended += 1


class ProviderDown(Exception):
    pass


@voice_otel.stt(provider="local", model="soak-stt")
def transcribe(audio: bytes) -> str:
    return "book a table for two"


@voice_otel.llm(provider="openai", model="gpt-4o-mini")
def think(text: str, fail: bool) -> Iterator[str]:
    voice_otel.record_usage(input_tokens=12)
    if fail:
        raise ProviderDown("503")
    yield from ("a ", "table ", "for ", "two")
    voice_otel.record_usage(output_tokens=4)


@voice_otel.tts(provider="local", model="soak-tts", usage=lambda chunk: {"characters": 5})
def speak(text: str) -> Iterator[bytes]:
    for word in text.split():
        yield word.encode()


@voice_otel.llm(provider="local", model="soak-llm-async")
async def think_async(text: str) -> AsyncIterator[str]:
    for token in ("sure ", "thing"):
        yield token


def one_turn(index: int) -> int:
    """One turn of sync code; returns unexpected exceptions seen by this (user) code."""
    try:
        with voice_otel.turn() as turn:
            turn.user_stopped_speaking()
            text = transcribe(b"\x00" * 160)
            try:
                answer = "".join(think(text, fail=index % 11 == 0))
            except ProviderDown:
                answer = "sorry"
            audio = speak(answer)
            next(audio, None)
            if index % 7 == 0:
                turn.interrupt()
                audio.close()  # barge-in: the rest of the audio is never played
            else:
                for _chunk in audio:
                    pass
    except Exception:
        return 1
    return 0


async def async_conversation(conversation_id: str, first: int) -> int:
    errors = 0
    async with voice_otel.conversation(conversation_id):
        for _ in range(first, first + TURNS_PER_CONVERSATION):
            try:
                async with voice_otel.turn():
                    text = transcribe(b"\x00")
                    answer = "".join([t async for t in think_async(text)])
                    for _chunk in speak(answer):
                        pass
            except Exception:
                errors += 1
    return errors


def run_conversations(start: int, count: int, loop: asyncio.AbstractEventLoop) -> int:
    errors = 0
    for c in range(start, start + count):
        first = c * TURNS_PER_CONVERSATION
        if c % 10 == 9:
            errors += loop.run_until_complete(async_conversation(f"soak-{c}", first))
            continue
        with voice_otel.conversation(f"soak-{c}"):
            for index in range(first, first + TURNS_PER_CONVERSATION):
                errors += one_turn(index)
    return errors


def leftovers() -> dict[str, int]:
    """voice_otel objects still alive, and contexts still set, between conversations."""
    gc.collect()
    kinds = (_stage.StageRun, _turn.Turn, _turn.Conversation)
    alive = {k.__name__: 0 for k in kinds}
    for obj in gc.get_objects():
        for kind in kinds:
            if type(obj) is kind:
                alive[kind.__name__] += 1
    alive["otel context entries"] = len(otel_context.get_current())
    alive["current conversation"] = int(voice_otel.current_conversation() is not None)
    alive["current turn"] = int(voice_otel.current_turn() is not None)
    alive["current stage"] = int(voice_otel.current_stage() is not None)
    return alive


def resident_bytes() -> int:
    """Resident memory of this process (0 where /proc is not available)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


@pytest.mark.usefixtures("lenient")
def test_soak_memory_and_state_stay_flat(
    otel: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    exporter = Counting()
    spans = OpenSpans()
    tracer_provider = TracerProvider()  # exports to a counter only: nothing kept in memory
    tracer_provider.add_span_processor(spans)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    _runtime.use_providers(tracer_provider, otel.meter_provider)
    conversations = TURNS // TURNS_PER_CONVERSATION
    per_checkpoint = (conversations - WARMUP_CONVERSATIONS) // CHECKPOINTS
    assert per_checkpoint > 0

    loop = asyncio.new_event_loop()
    try:
        errors = run_conversations(0, WARMUP_CONVERSATIONS, loop)
        otel.metric_reader.get_metrics_data()  # the collection's own state, allocated now
        readings = []
        done = WARMUP_CONVERSATIONS
        for _ in range(CHECKPOINTS):
            errors += run_conversations(done, per_checkpoint, loop)
            done += per_checkpoint
            otel.metric_reader.get_metrics_data()
            state = leftovers()  # collects garbage first
            blocks = sys.getallocatedblocks()
            readings.append((done * TURNS_PER_CONVERSATION, blocks, resident_bytes()))
            assert spans.started == spans.ended, f"open spans after {done} conversations"
            assert set(state.values()) == {0}, state
    finally:
        loop.close()
        tracer_provider.shutdown()

    turns = done * TURNS_PER_CONVERSATION
    growth = readings[-1][1] - readings[0][1]
    with capsys.disabled():
        print(
            f"\n[soak] {turns:,} turns, {spans.ended:,} spans ended and exported "
            f"({exporter.exported:,}), 0 open, unexpected exceptions {errors}; allocated blocks "
            "at checkpoints (turns: blocks): "
            + ", ".join(f"{t:,}: {blocks:,}" for t, blocks, _rss in readings)
            + f"; growth first->last {growth:+,} blocks (bound {BLOCK_BOUND:,}); resident "
            f"memory first->last {(readings[-1][2] - readings[0][2]) / 1024:+,.0f} KiB"
        )
    assert errors == 0
    assert spans.started == spans.ended == exporter.exported
    assert spans.ended >= turns * 4
    assert growth < BLOCK_BOUND
