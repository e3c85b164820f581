"""Load: 200 concurrent conversations of 10 turns each, exported to the collector.

Each conversation is an asyncio task: per turn an STT coroutine, a streamed LLM reply (20
tokens) and a streamed TTS answer (5 chunks), with awaits standing in for the providers and for
the caller speaking. That is 41 spans per conversation (the conversation, 10 turns, 30 stages).
The SDK's count of ended spans is compared with what the collector accepted (its own
``otelcol_receiver_accepted_spans``) after ``shutdown()`` flushed the queue.

Two paces, each with ``configure()``'s defaults:

- *paced*: provider latencies and pauses of a fast voice agent (STT 100-400 ms, 10-40 ms per
  token, 20-80 ms per audio chunk, 100-400 ms before the next turn), about 1.3 s per turn; the
  budget (no span dropped) applies here;
- *burst*: the same conversations 20 times faster, several thousand spans a second from one
  process; reported, not budgeted: it shows where the default queue of 2048 spans stops
  absorbing a burst on this machine, and the same burst again with a larger ``max_queue_size``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import psutil
from _endpoints import collector_up, wait_until
from _export import EndCounter
from _harness import Row

import voice_otel

TURNS = 10
TOKENS = 20
CHUNKS = 5
PACED = 20.0  # the paced run's delays, as a multiple of the burst's
BURST_QUEUE = 16_384  # the larger queue for the burst's second run


@voice_otel.stt(provider="local", model="bench-stt")
async def transcribe(audio: bytes, rng: random.Random, pace: float) -> str:
    await asyncio.sleep(rng.uniform(0.005, 0.02) * pace)
    return "what time does the pharmacy close"


@voice_otel.llm(provider="local", model="bench-llm")
async def think(text: str, rng: random.Random, pace: float) -> AsyncIterator[str]:
    for i in range(TOKENS):
        await asyncio.sleep(rng.uniform(0.0005, 0.002) * pace)
        yield f"token{i} "


@voice_otel.tts(provider="local", model="bench-tts")
async def speak(text: str, rng: random.Random, pace: float) -> AsyncIterator[bytes]:
    for _ in range(CHUNKS):
        await asyncio.sleep(rng.uniform(0.001, 0.004) * pace)
        yield b"\x00" * 320


async def one_conversation(index: int, pace: float) -> None:
    rng = random.Random(index)
    async with voice_otel.conversation(f"load-{index}"):
        for _ in range(TURNS):
            async with voice_otel.turn() as turn:
                turn.user_stopped_speaking()
                text = await transcribe(b"\x00" * 3200, rng, pace)
                reply = "".join([token async for token in think(text, rng, pace)])
                async for _chunk in speak(reply, rng, pace):
                    pass
            await asyncio.sleep(rng.uniform(0.005, 0.02) * pace)


async def all_conversations(count: int, pace: float) -> None:
    await asyncio.gather(*(one_conversation(i, pace) for i in range(count)))


@dataclass
class Result:
    kind: str  # what received the spans
    version: str
    ended: int
    accepted: int
    refused: int
    forwarded: int | None
    flushed: bool
    wall: float
    agent_cpu: float  # % of one core
    receiver_cpu: float

    @property
    def dropped(self) -> int:
        return self.ended - self.accepted


def one_run(conversations: int, pace: float, queue: int | None) -> Result:
    """The conversations through a fresh collector, with configure()'s defaults (or ``queue``)."""
    extra = {} if queue is None else {"max_queue_size": queue}
    with collector_up() as receiver:
        telemetry = voice_otel.configure(
            service_name="bench-load",
            otlp_endpoint=receiver.endpoint,
            otlp_protocol="grpc",
            prometheus_port=False,
            json_path=False,
            handle_sigterm=False,
            **extra,
        )
        counter = EndCounter()
        telemetry.tracer_provider.add_span_processor(counter)
        own = psutil.Process()
        other = psutil.Process(receiver.pid) if receiver.pid else None
        cpu0 = own.cpu_times()
        other0 = other.cpu_times() if other else None
        started = time.monotonic()
        asyncio.run(all_conversations(conversations, pace))
        flushed = voice_otel.shutdown(timeout=30)
        wall = time.monotonic() - started
        cpu1 = own.cpu_times()
        wait_until(lambda: receiver.accepted_spans() >= counter.ended, timeout=20)
        accepted = receiver.accepted_spans()
        refused = receiver.refused_spans()
        wait_until(lambda: (receiver.sent_spans() or accepted) >= accepted, timeout=20)
        forwarded = receiver.sent_spans()
        other1 = other.cpu_times() if other else None

    return Result(
        kind=receiver.kind,
        version=f" {receiver.version}" if receiver.version else "",
        ended=counter.ended,
        accepted=accepted,
        refused=refused,
        forwarded=forwarded,
        flushed=flushed,
        wall=wall,
        agent_cpu=(cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall * 100,
        receiver_cpu=(
            (other1.user + other1.system - other0.user - other0.system) / wall * 100
            if other0 and other1
            else float("nan")
        ),
    )


def run(quick: bool) -> list[Row]:
    conversations = 50 if quick else 200
    expected = conversations * (1 + TURNS * 4)
    paced = one_run(conversations, PACED, None)
    burst = one_run(conversations, 1.0, None)
    burst_queue = one_run(conversations, 1.0, BURST_QUEUE)

    section = f"load ({conversations} conversations x {TURNS} turns, {paced.kind})"
    rows = [
        Row(
            section,
            f"paced: spans ended by the SDK / accepted by the {paced.kind}{paced.version}",
            f"{paced.ended:,} / {paced.accepted:,} (expected {expected:,}; refused "
            f"{paced.refused}; flushed in time: {paced.flushed}"
            + (f"; sent on to Jaeger: {paced.forwarded:,}" if paced.forwarded is not None else "")
            + ")",
        ),
        Row(
            section,
            "paced: spans dropped",
            f"{paced.dropped:,}",
            "0",
            paced.dropped == 0 and paced.flushed,
        ),
        Row(section, "paced: CPU share (100 % = one core), rate", _usage(paced)),
    ]
    for label, result in (
        ("burst, default queue (2048)", burst),
        (f"burst, max_queue_size={BURST_QUEUE:,}", burst_queue),
    ):
        rows.append(
            Row(
                section,
                f"{label}: spans dropped / ended",
                f"{result.dropped:,} / {result.ended:,} (refused {result.refused}; flushed in "
                f"time: {result.flushed}); {_usage(result)}",
            )
        )
    return rows


def _usage(result: Result) -> str:
    return (
        f"agent {result.agent_cpu:.0f} %, {result.kind} {result.receiver_cpu:.0f} %; "
        f"{result.ended / result.wall:,.0f} spans/s over {result.wall:.1f} s"
    )
