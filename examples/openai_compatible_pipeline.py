"""A voice pipeline on OpenAI-compatible HTTP APIs, streamed end to end and traced with voice_otel.

Each turn sends a recorded utterance to ``/audio/transcriptions`` (streamed transcript), the
transcript to ``/chat/completions`` (streamed tokens) and every finished sentence of the reply to
``/audio/speech`` (streamed audio), while the reply is still being generated. The three calls
are plain httpx functions under the ``@voice_otel.stt``, ``@voice_otel.llm`` and
``@voice_otel.tts`` decorators, so each turn gets its voice-to-voice latency split into STT, LLM
to first token, TTS to first byte and the rest.

Try it offline against the local stand-in server::

    pip install "voice-otel[demo]"
    python examples/local_openai_server.py --port 8000 &
    python examples/openai_compatible_pipeline.py --base-url http://127.0.0.1:8000/v1

Or against OpenAI (the key is read from ``OPENAI_API_KEY`` only, never from the command line)::

    export OPENAI_API_KEY=sk-...
    python examples/openai_compatible_pipeline.py --base-url https://api.openai.com/v1

Telemetry goes to an OTLP collector with ``--otlp-endpoint http://127.0.0.1:4317`` (the stack
from ``voice-otel stack up``), otherwise to ``--json-path`` (OTLP-JSON lines) and an embedded
Prometheus ``/metrics`` endpoint. Audio is not played; a chunk counts as played when it arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import re
import sys
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

import voice_otel

logger = logging.getLogger("openai_compatible_pipeline")

API_KEY_ENV = "OPENAI_API_KEY"
SYSTEM_PROMPT = "You are a voice assistant. Answer in one to three short spoken sentences."
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Endpoint:
    """Where the API is and which models to ask for."""

    base_url: str
    provider: str
    stt_model: str
    llm_model: str
    tts_model: str
    voice: str


@dataclass(frozen=True)
class Utterance:
    """One recorded caller utterance: a WAV file and, if known, what was said."""

    name: str
    wav: bytes
    script: str | None = None


def provider_name(base_url: str) -> str:
    """``gen_ai.provider.name`` for an endpoint: ``openai`` for OpenAI's API, else generic."""
    return "openai" if urlsplit(base_url).hostname == "api.openai.com" else "openai_compatible"


async def sse_data(response: httpx.Response) -> AsyncIterator[dict[str, object]]:
    """The JSON payloads of a server-sent event stream, until ``[DONE]`` or its end."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


async def raise_for_status(response: httpx.Response) -> None:
    """Raise ``httpx.HTTPStatusError`` with the body's first bytes in the message."""
    if response.is_success:
        return
    try:
        detail = (await response.aread())[:200].decode("utf-8", "replace")
    except httpx.HTTPError:
        detail = "(no body)"
    raise httpx.HTTPStatusError(
        f"{response.status_code} from {response.request.url}: {detail}",
        request=response.request,
        response=response,
    )


class VoiceAgent:
    """The three stages as decorated functions, built once per endpoint.

    The decorators are applied in ``__init__`` because provider and model come from the
    command line; with fixed ones, decorate the functions where they are defined.
    """

    def __init__(self, client: httpx.AsyncClient, endpoint: Endpoint) -> None:
        self.client = client
        self.endpoint = endpoint
        self.transcribe = voice_otel.stt(provider=endpoint.provider, model=endpoint.stt_model)(
            self._transcribe
        )
        self.reply = voice_otel.llm(provider=endpoint.provider, model=endpoint.llm_model)(
            self._reply
        )
        self.speak = voice_otel.tts(
            provider=endpoint.provider, model=endpoint.tts_model, voice=endpoint.voice
        )(self._speak)

    async def _transcribe(self, wav: bytes) -> AsyncIterator[str]:
        """Stream the transcript of one utterance (first delta = STT time to first output)."""
        with wave.open(io.BytesIO(wav)) as reader:
            voice_otel.record_usage(input_audio_seconds=reader.getnframes() / reader.getframerate())
        files = {"file": ("utterance.wav", wav, "audio/wav")}
        data = {"model": self.endpoint.stt_model, "stream": "true", "response_format": "json"}
        url = f"{self.endpoint.base_url}/audio/transcriptions"
        async with self.client.stream("POST", url, files=files, data=data) as response:
            await raise_for_status(response)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                # A server that does not stream transcriptions answers with one JSON object.
                yield str(json.loads(await response.aread()).get("text", ""))
                return
            async for event in sse_data(response):
                if event.get("type") == "transcript.text.delta":
                    yield str(event.get("delta", ""))

    async def _reply(self, messages: Sequence[dict[str, str]]) -> AsyncIterator[str]:
        """Stream the chat completion's text (first piece = LLM time to first token)."""
        body = {
            "model": self.endpoint.llm_model,
            "messages": list(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": 120,
        }
        url = f"{self.endpoint.base_url}/chat/completions"
        async with self.client.stream("POST", url, json=body) as response:
            await raise_for_status(response)
            async for chunk in sse_data(response):
                usage = chunk.get("usage")
                if isinstance(usage, dict):
                    voice_otel.record_usage(
                        input_tokens=int(usage.get("prompt_tokens") or 0),
                        output_tokens=int(usage.get("completion_tokens") or 0),
                    )
                for choice in chunk.get("choices") or []:  # type: ignore[attr-defined]
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield piece

    async def _speak(self, text: str) -> AsyncIterator[bytes]:
        """Stream 16-bit mono PCM of one sentence (first chunk = TTS time to first byte)."""
        voice_otel.record_usage(characters=len(text))
        body = {
            "model": self.endpoint.tts_model,
            "input": text,
            "voice": self.endpoint.voice,
            "response_format": "pcm",
        }
        url = f"{self.endpoint.base_url}/audio/speech"
        received = 0
        async with self.client.stream("POST", url, json=body) as response:
            await raise_for_status(response)
            # OpenAI's pcm is 24 kHz; the local stand-in says its rate in a header.
            rate = int(response.headers.get("x-sample-rate", "24000"))
            try:
                async for chunk in response.aiter_bytes(4800):
                    received += len(chunk)
                    yield chunk
            finally:
                voice_otel.record_usage(output_audio_seconds=received / 2 / rate)


async def run_turn(
    agent: VoiceAgent, utterance: Utterance, history: list[dict[str, str]]
) -> voice_otel.TurnRecord | None:
    """One turn: transcribe, then speak each sentence of the reply as soon as it is complete."""
    async with voice_otel.turn() as turn:
        turn.user_stopped_speaking()  # the recording has ended: the latency clock starts
        transcript = "".join([piece async for piece in agent.transcribe(utterance.wav)]).strip()
        if utterance.script:
            print(f"  said   : {utterance.script}")
        print(f"  heard  : {transcript}")
        history.append({"role": "user", "content": transcript})

        reply, pending = "", ""
        async for piece in agent.reply(history):
            reply += piece
            pending += piece
            *sentences, pending = _SENTENCE_END.split(pending)
            for sentence in sentences:
                await play(agent, sentence)
        if pending.strip():
            await play(agent, pending.strip())

        history.append({"role": "assistant", "content": reply})
        print(f"  agent  : {reply.strip()}")
    return turn.record


async def play(agent: VoiceAgent, sentence: str) -> None:
    """Consume one sentence's audio (a real agent would send it to the caller)."""
    async for _chunk in agent.speak(sentence):
        pass


def load_utterances(paths: Sequence[Path]) -> list[Utterance]:
    """The given WAV files, or the demo's six recordings shipped with voice_otel."""
    if paths:
        return [Utterance(p.name, p.read_bytes()) for p in paths]
    from voice_otel.demo import load_utterances as demo_utterances

    utterances = []
    for clip in demo_utterances():
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(clip.sample_rate)
            writer.writeframes(clip.pcm)
        utterances.append(Utterance(clip.name, buffer.getvalue(), clip.script))
    return utterances


async def converse(endpoint: Endpoint, utterances: Sequence[Utterance], api_key: str | None) -> int:
    """Run one conversation; return how many turns failed."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    failures = 0
    history = [{"role": "system", "content": SYSTEM_PROMPT}]
    async with (
        httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(60.0, connect=5.0)) as client,
        voice_otel.conversation() as call,
    ):
        agent = VoiceAgent(client, endpoint)
        for number, utterance in enumerate(utterances, start=1):
            print(f"turn {number} ({utterance.name})")
            try:
                record = await run_turn(agent, utterance, history)
            except httpx.HTTPError as exc:
                # The turn and stage spans already carry the error; the call goes on.
                failures += 1
                print(f"  failed : {type(exc).__name__}: {exc}")
                continue
            if record is not None and record.latency is not None:
                parts = ", ".join(f"{k} {v:.3f}" for k, v in record.components.items())
                print(f"  voice-to-voice {record.latency:.3f} s ({parts})")
        print(f"conversation {call.id}: {len(utterances) - failures} of {len(utterances)} turns ok")
    return failures


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--base-url",
        default="http://127.0.0.1:8000/v1",
        help="OpenAI-compatible API base [http://127.0.0.1:8000/v1]",
    )
    parser.add_argument("--provider", help="gen_ai.provider.name [openai for api.openai.com]")
    parser.add_argument("--stt-model", default="whisper-1", help="[whisper-1]")
    parser.add_argument("--llm-model", default="gpt-4o-mini", help="[gpt-4o-mini]")
    parser.add_argument("--tts-model", default="gpt-4o-mini-tts", help="[gpt-4o-mini-tts]")
    parser.add_argument("--voice", default="alloy", help="TTS voice [alloy]")
    parser.add_argument(
        "--turns", type=int, default=3, help="utterances to play, from the demo recordings [3]"
    )
    parser.add_argument(
        "--audio", type=Path, nargs="*", default=[], help="16-bit mono WAV files to play instead"
    )
    parser.add_argument("--otlp-endpoint", help="send telemetry to this collector (OTLP)")
    parser.add_argument(
        "--json-path",
        default="voice-otel-telemetry.jsonl",
        help="OTLP-JSON lines file when there is no collector [voice-otel-telemetry.jsonl]",
    )
    parser.add_argument(
        "--prometheus-port",
        type=int,
        default=0,
        help="embedded /metrics port when there is no collector, 0 = any free port [0]",
    )
    parser.add_argument("--service-name", default="openai-compatible-agent")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    base_url = args.base_url.rstrip("/")
    endpoint = Endpoint(
        base_url=base_url,
        provider=args.provider or provider_name(base_url),
        stt_model=args.stt_model,
        llm_model=args.llm_model,
        tts_model=args.tts_model,
        voice=args.voice,
    )
    utterances = load_utterances(args.audio)
    if not args.audio:
        utterances = [utterances[i % len(utterances)] for i in range(max(1, args.turns))]

    if args.otlp_endpoint:
        telemetry = voice_otel.configure(
            service_name=args.service_name, otlp_endpoint=args.otlp_endpoint
        )
    else:
        telemetry = voice_otel.configure(
            service_name=args.service_name,
            json_path=args.json_path,
            prometheus_port=args.prometheus_port,
        )
    for line in telemetry.describe():
        print(f"telemetry -> {line}")
    try:
        failures = asyncio.run(converse(endpoint, utterances, os.environ.get(API_KEY_ENV)))
    finally:
        voice_otel.shutdown(timeout=10)
    return 1 if failures == len(utterances) else 0


if __name__ == "__main__":
    sys.exit(main())
