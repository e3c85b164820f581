"""An instrumented voice pipeline run as its own process, the way an application runs.

It configures voice_otel with an OTLP endpoint, runs conversations of one turn each through
decorated STT, LLM and TTS stages, and prints one JSON line per conversation (its trace id and
what the SDK recorded about the turn). Run by the integration tests as a subprocess, so the SDK's
process-wide setup (global providers, exit and SIGTERM hooks) stays out of the test process.

Usage:
    python tests/integration/workload.py --endpoint http://127.0.0.1:4317 [--protocol grpc] \
        --kinds fast,slow,interrupted,error [--repeat N] [--objective 0.5] [--hold SECONDS]

Kinds: ``fast`` (well under the latency objective), ``slow`` (LLM waits past the objective),
``interrupted`` (barge-in during TTS), ``error`` (the LLM raises; the turn fails).
``--hold`` keeps the process alive after the last conversation without shutting down (the
SIGTERM test stops it then). ``--pace`` waits between conversations; ``--stop-file`` makes the
loop end when that file appears (the fault test's bounded run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from opentelemetry import trace

import voice_otel

PRICES = {
    "test-stt/test-stt-model": {"input_audio_per_minute": 0.01},
    "test-llm/test-llm-model": {"input_per_1m_tokens": 1.0, "output_per_1m_tokens": 2.0},
    "test-tts/test-tts-model": {"per_1m_characters": 10.0},
}


class ProviderError(RuntimeError):
    """The fake LLM provider failed."""


@voice_otel.stt(provider="test-stt", model="test-stt-model")
def transcribe(audio: bytes) -> str:
    voice_otel.record_usage(input_audio_seconds=len(audio) / 32000)
    return "what is the weather like"


@voice_otel.llm(provider="test-llm", model="test-llm-model")
def reply(text: str, delay: float, fail: bool) -> Iterator[str]:
    time.sleep(delay)
    if fail:
        raise ProviderError("upstream returned 503")
    voice_otel.record_usage(input_tokens=12, output_tokens=6)
    yield "It is "
    yield "sunny today."


@voice_otel.tts(provider="test-tts", model="test-tts-model", voice="test-voice")
def speak(text: str) -> Iterator[bytes]:
    voice_otel.record_usage(characters=len(text), output_audio_seconds=1.2)
    for _ in range(4):
        yield b"\0" * 3200


def one_conversation(kind: str, objective: float) -> dict[str, object]:
    turn: voice_otel.Turn | None = None
    trace_id = ""
    try:
        with voice_otel.conversation(), voice_otel.turn() as turn:
            trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
            turn.user_stopped_speaking()
            text = transcribe(b"\0" * 32000)
            delay = objective * 1.5 if kind == "slow" else 0.0
            answer = "".join(reply(text, delay, kind == "error"))
            audio = speak(answer)
            try:
                for index, _chunk in enumerate(audio):
                    if kind == "interrupted" and index == 1:
                        turn.interrupt(played_audio_seconds=0.2)
                        break
            finally:
                audio.close()
    except ProviderError:
        pass

    record = turn.record if turn is not None else None
    return {
        "kind": kind,
        "trace_id": trace_id,
        "latency": record.latency if record else None,
        "slow": record.slow if record else None,
        "interrupted": record.interrupted if record else None,
        "outcome": record.outcome if record else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--protocol", default=None, choices=["grpc", "http/protobuf"])
    parser.add_argument("--service-name", default="voice-otel-it")
    parser.add_argument("--kinds", default="fast")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--objective", type=float, default=0.5)
    parser.add_argument("--export-interval", type=float, default=1.0)
    parser.add_argument("--pace", type=float, default=0.0)
    parser.add_argument("--stop-file", type=Path, default=None)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--hold", type=float, default=0.0)
    args = parser.parse_args()

    voice_otel.configure(
        service_name=args.service_name,
        otlp_endpoint=args.endpoint,
        otlp_protocol=args.protocol,
        metric_export_interval=args.export_interval,
        latency_objective=args.objective,
        prices=PRICES,
        json_path=False,
        prometheus_port=False,
    )
    kinds = [k for k in args.kinds.split(",") if k] * args.repeat
    deadline = time.monotonic() + args.max_seconds
    index = 0
    while time.monotonic() < deadline:
        if args.stop_file is None and index >= len(kinds):
            break
        if args.stop_file is not None and args.stop_file.exists():
            break
        started = time.monotonic()
        result = one_conversation(kinds[index % len(kinds)], args.objective)
        result["call_seconds"] = time.monotonic() - started
        print(json.dumps(result), flush=True)
        index += 1
        if args.pace:
            time.sleep(args.pace)

    if args.hold:
        print(json.dumps({"holding": True}), flush=True)
        time.sleep(args.hold)
        return 3  # the SIGTERM test expects the signal to end the process before this
    voice_otel.shutdown(timeout=10.0)
    print(json.dumps({"done": index}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
