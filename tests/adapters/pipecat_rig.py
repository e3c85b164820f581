"""A Pipecat voice pipeline with local stand-ins where a call would use the network.

Everything between the microphone and the speaker is Pipecat's own code: the VAD processor,
the segmented-STT base class, the user and assistant context aggregators with their turn
strategies, the OpenAI LLM service (talking to the loopback stub), the TTS base class with its
sentence aggregation, and the base input and output transports with their bot-speaking and
interruption handling. The stand-ins are the audio device (a scripted microphone and a speaker
that plays in real time), the VAD model (signal energy), the speech recogniser (a scripted
transcript per utterance) and the synthesiser (a tone whose length follows the text).
"""

from __future__ import annotations

import asyncio
import math
import struct
import sys
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    StartFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.settings import STTSettings, TTSSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.services.tts_service import TTSService
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.utils.time import time_now_iso8601
from pipecat.workers.runner import WorkerRunner

# Pipecat logs every frame at DEBUG; the checks' output should show failures, not that.
logger.remove()
logger.add(sys.stderr, level="WARNING")

SAMPLE_RATE = 16000
CHUNK_SECONDS = 0.02
VAD_START_SECS = 0.1
VAD_STOP_SECS = 0.2
STT_DELAY = 0.15
TTS_FIRST_AUDIO_DELAY = 0.12
TTS_SECONDS_PER_CHARACTER = 0.04


def tone(seconds: float, amplitude: float = 0.4) -> bytes:
    """16-bit mono PCM of a 220 Hz tone: what the stand-in VAD hears as speech."""
    n = int(SAMPLE_RATE * seconds)
    scale = 32767 * amplitude
    return struct.pack(
        f"<{n}h", *(int(scale * math.sin(2 * math.pi * 220 * i / SAMPLE_RATE)) for i in range(n))
    )


def silence(seconds: float) -> bytes:
    return bytes(2 * int(SAMPLE_RATE * seconds))


# -- the microphone's script -------------------------------------------------------------


@dataclass(frozen=True)
class Speak:
    """The caller speaks for ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Pause:
    """Silence for ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class AfterBotStarts:
    """Silence until the bot starts speaking, then ``seconds`` more."""

    seconds: float


@dataclass(frozen=True)
class AfterBotStops:
    """Silence until the bot has stopped speaking, then ``seconds`` more."""

    seconds: float


Step = Speak | Pause | AfterBotStarts | AfterBotStops


class ScriptedMic(BaseInputTransport):
    """An input transport whose audio comes from a script, paced like a real microphone."""

    def __init__(self, params: TransportParams, script: list[Step]) -> None:
        super().__init__(params)
        self._script = script
        self._task: asyncio.Task[None] | None = None
        self._bot_speaking = asyncio.Event()
        self._bot_quiet = asyncio.Event()
        self._bot_quiet.set()
        self.done = asyncio.Event()

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)
        self._task = self.create_task(self._play())

    async def stop(self, frame: EndFrame) -> None:
        if self._task is not None:
            await self.cancel_task(self._task)
        await super().stop(frame)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_quiet.clear()
            self._bot_speaking.set()
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking.clear()
            self._bot_quiet.set()

    async def _play(self) -> None:
        clock = time.monotonic()
        for step in self._script:
            if isinstance(step, Speak):
                clock = await self._push(tone(step.seconds), clock)
            elif isinstance(step, Pause):
                clock = await self._push(silence(step.seconds), clock)
            else:
                wanted = self._bot_speaking if isinstance(step, AfterBotStarts) else self._bot_quiet
                if isinstance(step, AfterBotStops):
                    await self._hear_silence_until(self._bot_speaking)  # its reply must start
                clock = await self._hear_silence_until(wanted)
                clock = await self._push(silence(step.seconds), clock)
        self.done.set()

    async def _hear_silence_until(self, event: asyncio.Event) -> float:
        clock = time.monotonic()
        while not event.is_set():
            clock = await self._push(silence(CHUNK_SECONDS), clock)
        return clock

    async def _push(self, pcm: bytes, clock: float) -> float:
        step = 2 * int(SAMPLE_RATE * CHUNK_SECONDS)
        for i in range(0, len(pcm), step):
            chunk = pcm[i : i + step]
            await self.push_audio_frame(
                InputAudioRawFrame(audio=chunk, sample_rate=SAMPLE_RATE, num_channels=1)
            )
            clock += len(chunk) / (2 * SAMPLE_RATE)
            await asyncio.sleep(max(0.0, clock - time.monotonic()))
        return clock


class Speaker(BaseOutputTransport):
    """An output transport that plays audio in real time, like a sound card."""

    def __init__(self, params: TransportParams) -> None:
        super().__init__(params)
        self.played_seconds = 0.0

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        seconds = len(frame.audio) / (2 * frame.sample_rate * frame.num_channels)
        self.played_seconds += seconds
        await asyncio.sleep(seconds)
        return True


class LoopbackTransport(BaseTransport):
    """The scripted microphone and the real-time speaker as one Pipecat transport."""

    def __init__(self, script: list[Step]) -> None:
        super().__init__()
        params = TransportParams(
            audio_in_enabled=True,
            audio_in_sample_rate=SAMPLE_RATE,
            audio_out_enabled=True,
            audio_out_sample_rate=SAMPLE_RATE,
            audio_out_end_silence_secs=0,
        )
        self.mic = ScriptedMic(params, script)
        self.speaker = Speaker(params)

    def input(self) -> ScriptedMic:
        return self.mic

    def output(self) -> Speaker:
        return self.speaker


# -- models ------------------------------------------------------------------------------


class EnergyVAD(VADAnalyzer):
    """A VAD model that calls 20 ms of audio speech when its level is well above silence."""

    def num_frames_required(self) -> int:
        return int(self.sample_rate * CHUNK_SECONDS)

    def voice_confidence(self, buffer: bytes) -> float:
        samples = struct.unpack(f"<{len(buffer) // 2}h", buffer)
        rms = math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))
        return 1.0 if rms > 1000 else 0.0


class LocalSTTService(SegmentedSTTService):
    """Transcribes each VAD segment as the next line of a script, after ``STT_DELAY``."""

    def __init__(self, transcripts: list[str]) -> None:
        super().__init__(
            settings=STTSettings(model="local-asr", language="en"), ttfs_p99_latency=0.3
        )
        self._transcripts = list(transcripts)
        self.segments_seconds: list[float] = []

    def can_generate_metrics(self) -> bool:
        return True

    @property
    def wants_wav_segments(self) -> bool:
        return False

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        self.segments_seconds.append(len(audio) / (2 * SAMPLE_RATE))
        await asyncio.sleep(STT_DELAY)
        text = self._transcripts.pop(0) if self._transcripts else ""
        yield TranscriptionFrame(text, user_id="caller", timestamp=time_now_iso8601())


class LocalTTSService(TTSService):
    """Speaks text as a tone of ``TTS_SECONDS_PER_CHARACTER`` per character, in 100 ms chunks."""

    def __init__(self) -> None:
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            stop_frame_timeout_s=0.5,
            sample_rate=SAMPLE_RATE,
            settings=TTSSettings(model="tone-1", voice="alto", language="en"),
        )
        self.characters = 0

    def can_generate_metrics(self) -> bool:
        return True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        await self.start_tts_usage_metrics(text)
        self.characters += len(text)
        await asyncio.sleep(TTS_FIRST_AUDIO_DELAY)
        pcm = tone(len(text) * TTS_SECONDS_PER_CHARACTER, amplitude=0.2)
        step = 2 * int(SAMPLE_RATE * 0.1)
        for i in range(0, len(pcm), step):
            await self.stop_ttfb_metrics()
            yield TTSAudioRawFrame(
                audio=pcm[i : i + step],
                sample_rate=SAMPLE_RATE,
                num_channels=1,
                context_id=context_id,
            )


class LoopbackOpenAILLMService(OpenAILLMService):
    """Pipecat's OpenAI service, keeping its HTTP client so the rig can close it afterwards."""

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        self.client = super().create_client(*args, **kwargs)
        return self.client


# -- the pipeline ------------------------------------------------------------------------


@dataclass
class Rig:
    worker: PipelineWorker
    transport: LoopbackTransport
    stt: LocalSTTService
    llm: LoopbackOpenAILLMService
    tts: LocalTTSService
    greeting: str | None = None

    async def run(self, timeout: float = 60.0, *, cancel: bool = False) -> None:
        """Run the pipeline until the microphone's script is over, greeting the caller first.

        The script's end ends the pipeline (``EndFrame``), or cancels it with ``cancel``: a
        call dropped at that moment.
        """

        @self.worker.event_handler("on_pipeline_started")
        async def greet(worker: PipelineWorker, frame: Frame) -> None:
            if self.greeting:
                await worker.queue_frame(TTSSpeakFrame(self.greeting))

        async def end_when_done() -> None:
            await self.transport.mic.done.wait()
            if cancel:
                await self.worker.cancel(reason="the caller hung up")
            else:
                await self.worker.queue_frame(EndFrame())

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        try:
            await asyncio.wait_for(asyncio.gather(runner.run(), end_when_done()), timeout)
        finally:
            await self.llm.client.close()


def build_rig(
    *,
    llm_url: str,
    script: list[Step],
    transcripts: list[str],
    observers: list[object],
    greeting: str | None = None,
) -> Rig:
    """A voice pipeline the way Pipecat's examples build one, with the stand-ins above."""
    transport = LoopbackTransport(script)
    stt = LocalSTTService(transcripts)
    tts = LocalTTSService()
    llm = LoopbackOpenAILLMService(
        api_key="loopback-key",
        base_url=llm_url,
        settings=LoopbackOpenAILLMService.Settings(
            model="gpt-4o-mini", system_instruction="You are a helpful voice assistant."
        ),
    )
    context = LLMContext()
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            user_turn_strategies=UserTurnStrategies(
                stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.2)]
            ),
        ),
    )
    vad = VADProcessor(
        vad_analyzer=EnergyVAD(
            params=VADParams(
                confidence=0.5, start_secs=VAD_START_SECS, stop_secs=VAD_STOP_SECS, min_volume=0.0
            )
        )
    )
    pipeline = Pipeline(
        [
            transport.input(),
            vad,
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
            audio_in_sample_rate=SAMPLE_RATE,
            audio_out_sample_rate=SAMPLE_RATE,
            enable_metrics=True,
            enable_usage_metrics=True,
        ),
        observers=observers,
        cancel_on_idle_timeout=False,
    )
    return Rig(worker, transport, stt, llm, tts, greeting)
