"""A Pipecat voice pipeline with voice_otel telemetry: one observer, nothing else changed.

The pipeline has the usual Pipecat shape: an input transport, the Silero VAD, OpenAI
speech-to-text, the context aggregators, an OpenAI LLM, OpenAI text-to-speech and an output
transport. The one voice_otel line is ``observers=[VoiceOtelObserver()]`` on the worker; every
call becomes a ``voice.conversation`` with a ``voice.turn`` per exchange and STT, LLM and TTS
stages inside, and the metrics (latency and its decomposition, barge-ins, tokens, cost) are
recorded as each turn ends.

So that it runs anywhere, the caller is a few recorded utterances played into the pipeline in
real time (``voice_otel/demo/audio``) and the speaker plays into nothing; with a real call you
would use ``SmallWebRTCTransport`` or ``DailyTransport`` instead and keep the rest. Offline,
against the local stand-in server::

    pip install "voice-otel[pipecat,demo]" "pipecat-ai[openai,silero]"
    python examples/local_openai_server.py --port 8000 &
    python examples/pipecat_pipeline.py --base-url http://127.0.0.1:8000/v1

Against OpenAI (the key is read from ``OPENAI_API_KEY`` only)::

    python examples/pipecat_pipeline.py --base-url https://api.openai.com/v1

Telemetry goes to an OTLP collector with ``--otlp-endpoint http://127.0.0.1:4317`` (the stack
from ``voice-otel stack up``), otherwise to OTLP-JSON lines in ``--json-path``. When the bot does
not answer an utterance within ``--answer-timeout`` seconds (the provider is unreachable, say),
the call is cancelled and the script exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import wave
from pathlib import Path
from typing import Any

import httpx
from openai import AsyncOpenAI
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    StartFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.openai.stt import OpenAISTTService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

import voice_otel
from voice_otel.integrations.pipecat import VoiceOtelObserver

logger = logging.getLogger("pipecat_pipeline")

API_KEY_ENV = "OPENAI_API_KEY"
AUDIO_DIR = Path(voice_otel.__file__).parent / "demo" / "audio"
IN_RATE, OUT_RATE = 16_000, 24_000
CHUNK = 0.02
ANSWER_TIMEOUT = 30.0  # seconds the caller waits for the bot to finish answering an utterance
STT_MODEL = "gpt-4o-mini-transcribe"  # in voice_otel's price table, so STT gets a cost


class NoAnswerError(RuntimeError):
    """The bot did not answer an utterance in time; the call was cancelled."""


class RecordedCaller(BaseInputTransport):
    """Plays WAV files like a caller: one utterance, then silence until the bot has answered.

    A caller waits ``answer_timeout`` seconds at most, then hangs up with ``unanswered`` set to
    the utterance the bot never answered.
    """

    def __init__(self, params: TransportParams, files: list[Path], answer_timeout: float) -> None:
        super().__init__(params)
        self._files = files
        self._answer_timeout = answer_timeout
        self._bot_done = asyncio.Event()
        self.finished = asyncio.Event()
        self.unanswered: Path | None = None

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)
        self.create_task(self._call())

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_done.clear()
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_done.set()

    async def _call(self) -> None:
        clock = time.monotonic()
        for path in self._files:
            with wave.open(str(path), "rb") as wav:
                pcm = wav.readframes(wav.getnframes())
            self._bot_done.clear()
            clock = await self._play(pcm + bytes(2 * IN_RATE), clock)  # the words, then 1 s
            deadline = time.monotonic() + self._answer_timeout
            while not self._bot_done.is_set():  # silence while the bot answers
                if time.monotonic() > deadline:
                    self.unanswered = path
                    break
                clock = await self._play(bytes(2 * int(IN_RATE * CHUNK)), clock)
            if self.unanswered is not None:
                break
        self.finished.set()

    async def _play(self, pcm: bytes, clock: float) -> float:
        step = 2 * int(IN_RATE * CHUNK)
        for i in range(0, len(pcm), step):
            chunk = pcm[i : i + step]
            await self.push_audio_frame(InputAudioRawFrame(chunk, IN_RATE, 1))
            clock += len(chunk) / (2 * IN_RATE)
            await asyncio.sleep(max(0.0, clock - time.monotonic()))
        return clock


class SilentSpeaker(BaseOutputTransport):
    """Plays the bot's audio in real time, into nothing."""

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        await asyncio.sleep(len(frame.audio) / (2 * frame.sample_rate * frame.num_channels))
        return True


class SharedClientLLMService(OpenAILLMService):
    """Pipecat's OpenAI LLM service on the call's HTTP client, so the call can close it."""

    def __init__(self, http_client: httpx.AsyncClient, **kwargs: Any) -> None:
        self._http_client = http_client
        super().__init__(**kwargs)

    def create_client(self, api_key: Any = None, base_url: Any = None, **kwargs: Any) -> Any:
        return AsyncOpenAI(api_key=api_key, base_url=base_url, http_client=self._http_client)


class RecordedCallTransport(BaseTransport):
    def __init__(self, files: list[Path], answer_timeout: float) -> None:
        super().__init__()
        params = TransportParams(
            audio_in_enabled=True,
            audio_in_sample_rate=IN_RATE,
            audio_out_enabled=True,
            audio_out_sample_rate=OUT_RATE,
            audio_out_end_silence_secs=0,
        )
        self.caller = RecordedCaller(params, files, answer_timeout)
        self.speaker = SilentSpeaker(params)

    def input(self) -> RecordedCaller:
        return self.caller

    def output(self) -> SilentSpeaker:
        return self.speaker


async def run_call(
    base_url: str, api_key: str, files: list[Path], answer_timeout: float = ANSWER_TIMEOUT
) -> None:
    """One call: the recorded caller talks to the bot until the files run out.

    Raises:
        NoAnswerError: the bot did not answer an utterance within ``answer_timeout`` seconds.
    """
    async with httpx.AsyncClient(timeout=30.0) as http:
        await _run_call(http, base_url, api_key, files, answer_timeout)


async def _run_call(
    http: httpx.AsyncClient, base_url: str, api_key: str, files: list[Path], answer_timeout: float
) -> None:
    transport = RecordedCallTransport(files, answer_timeout)
    stt = OpenAISTTService(
        api_key=api_key,
        base_url=base_url,
        http_client=http,
        settings=OpenAISTTService.Settings(model=STT_MODEL),
    )
    llm = SharedClientLLMService(
        http,
        api_key=api_key,
        base_url=base_url,
        settings=OpenAILLMService.Settings(
            model="gpt-4o-mini",
            system_instruction="You are a voice assistant. Answer in one short sentence.",
        ),
    )
    tts = OpenAITTSService(api_key=api_key, base_url=base_url, http_client=http)
    aggregators = LLMContextAggregatorPair(
        LLMContext(),
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(),
            user_turn_strategies=UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy()]),
        ),
    )
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            aggregators.user(),
            llm,
            tts,
            transport.output(),
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=IN_RATE,
            audio_out_sample_rate=OUT_RATE,
            enable_metrics=True,  # Pipecat's metrics frames carry the usage voice_otel records
            enable_usage_metrics=True,
        ),
        observers=[VoiceOtelObserver(conversation_id=f"call-{int(time.time())}")],  # <- voice_otel
    )

    async def hang_up() -> None:
        await transport.caller.finished.wait()
        if transport.caller.unanswered is None:
            await worker.queue_frame(EndFrame())
        else:  # nothing worth waiting for: a request may still be retrying
            await worker.cancel(reason="the bot did not answer")

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), hang_up())
    if transport.caller.unanswered is not None:
        raise NoAnswerError(
            f"the bot did not answer {transport.caller.unanswered.name} within "
            f"{answer_timeout:g} s; is the provider at {base_url} reachable? (see the log above)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--calls", type=int, default=1, help="calls to run, one after another")
    parser.add_argument("--utterances", type=int, default=3, help="utterances per call")
    parser.add_argument(
        "--answer-timeout",
        type=float,
        default=ANSWER_TIMEOUT,
        help="seconds to wait for the bot's answer before giving up on the call",
    )
    parser.add_argument("--otlp-endpoint", help="OTLP endpoint of a collector")
    parser.add_argument("--json-path", default="voice-otel-pipecat.jsonl")
    args = parser.parse_args()

    api_key = os.environ.get(API_KEY_ENV, "local")
    files = sorted(AUDIO_DIR.glob("*.wav"))[: args.utterances]
    telemetry = voice_otel.configure(
        service_name="pipecat-example",
        otlp_endpoint=args.otlp_endpoint,
        json_path=None if args.otlp_endpoint else args.json_path,
    )
    turns: list[voice_otel.TurnRecord] = []
    voice_otel.add_turn_listener(turns.append)
    failure: NoAnswerError | None = None
    try:
        for _ in range(args.calls):
            asyncio.run(run_call(args.base_url, api_key, files, args.answer_timeout))
    except NoAnswerError as exc:
        failure = exc
    finally:
        voice_otel.shutdown()
    for record in turns:
        latency = "-" if record.latency is None else f"{record.latency:.2f}s"
        parts = ", ".join(f"{k} {v:.2f}s" for k, v in record.components.items())
        print(f"turn {record.index}: {record.outcome}, voice-to-voice {latency} ({parts})")
    for line in telemetry.describe():
        print(line)
    if failure is not None:
        print(f"pipecat_pipeline: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
