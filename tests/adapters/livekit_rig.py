"""A LiveKit Agents voice session with local stand-ins where a call would use the network.

Everything between the microphone and the speaker is LiveKit's own code: ``AgentSession`` and
its agent activity (VAD-based turn detection, endpointing, interruptions, the speech queue),
the STT and TTS stream adapters that segment speech by VAD and text by sentence, the base STT,
LLM and TTS classes that measure and emit the metrics, and LiveKit Inference's ``inference.LLM``
over HTTP to the loopback OpenAI-compatible stub. The stand-ins are the audio device (a scripted
microphone and a speaker that plays in real time), the VAD model (signal energy), the speech
recogniser (a scripted transcript per utterance) and the synthesiser (a tone whose length
follows the text).
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
import uuid
from dataclasses import dataclass
from typing import Any

from livekit import rtc
from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    Agent,
    AgentSession,
    APIConnectOptions,
    inference,
    stt,
    tts,
    utils,
    vad,
)
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.voice.io import AudioInput, AudioOutput, AudioOutputCapabilities

SAMPLE_RATE = 16000
CHUNK_SECONDS = 0.02
MIN_SPEECH_SECS = 0.1
MIN_SILENCE_SECS = 0.3
ENDPOINTING_DELAY = 0.3
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


def rms(frame: rtc.AudioFrame) -> float:
    data = bytes(frame.data)
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


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
    """Silence until the agent starts speaking, then ``seconds`` more."""

    seconds: float


@dataclass(frozen=True)
class AfterBotStops:
    """Silence until the agent has spoken and stopped, then ``seconds`` more."""

    seconds: float


Step = Speak | Pause | AfterBotStarts | AfterBotStops


class ScriptedMic(AudioInput):
    """Audio input from a script, paced like a real microphone (20 ms frames)."""

    def __init__(self, speaker: Speaker) -> None:
        super().__init__(label="scripted-mic")
        self._speaker = speaker
        self._frames: asyncio.Queue[rtc.AudioFrame] = asyncio.Queue()
        self.done = asyncio.Event()

    async def __anext__(self) -> rtc.AudioFrame:
        return await self._frames.get()

    async def play(self, script: list[Step]) -> None:
        clock = time.monotonic()
        for step in script:
            if isinstance(step, Speak):
                clock = await self._push(tone(step.seconds), clock)
            elif isinstance(step, Pause):
                clock = await self._push(silence(step.seconds), clock)
            else:
                if isinstance(step, AfterBotStops):
                    clock = await self._silence_until(self._speaker.playing)
                    clock = await self._silence_until(self._speaker.quiet)
                else:
                    clock = await self._silence_until(self._speaker.playing)
                clock = await self._push(silence(step.seconds), clock)
        self.done.set()

    async def _silence_until(self, event: asyncio.Event) -> float:
        clock = time.monotonic()
        while not event.is_set():
            clock = await self._push(silence(CHUNK_SECONDS), clock)
        return clock

    async def _push(self, pcm: bytes, clock: float) -> float:
        step = 2 * int(SAMPLE_RATE * CHUNK_SECONDS)
        for i in range(0, len(pcm), step):
            chunk = pcm[i : i + step]
            self._frames.put_nowait(
                rtc.AudioFrame(
                    data=chunk,
                    sample_rate=SAMPLE_RATE,
                    num_channels=1,
                    samples_per_channel=len(chunk) // 2,
                )
            )
            clock += len(chunk) / (2 * SAMPLE_RATE)
            await asyncio.sleep(max(0.0, clock - time.monotonic()))
        return clock


class Speaker(AudioOutput):
    """Audio output that plays in real time: a segment lasts as long as its audio."""

    def __init__(self) -> None:
        super().__init__(
            label="speaker", capabilities=AudioOutputCapabilities(pause=False), sample_rate=None
        )
        self.playing = asyncio.Event()
        self.quiet = asyncio.Event()
        self.quiet.set()
        self._started_at = 0.0
        self._pushed = 0.0
        self._finish: asyncio.TimerHandle | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._pushed:
            self._started_at = time.time()
            self.on_playback_started(created_at=self._started_at)
            self.quiet.clear()
            self.playing.set()
        self._pushed += frame.duration

    def flush(self) -> None:
        super().flush()
        if not self._pushed:
            return
        remaining = self._pushed - (time.time() - self._started_at)
        if self._finish is not None:
            self._finish.cancel()
        self._finish = asyncio.get_running_loop().call_later(max(0.0, remaining), self._finished)

    def clear_buffer(self) -> None:
        if not self._pushed:
            return
        if self._finish is not None:
            self._finish.cancel()
        self._finished(interrupted=True)

    def _finished(self, interrupted: bool = False) -> None:
        played = min(self._pushed, time.time() - self._started_at)
        self._finish = None
        self._pushed = 0.0
        self.playing.clear()
        self.quiet.set()
        self.on_playback_finished(playback_position=played, interrupted=interrupted)


# -- models ------------------------------------------------------------------------------


class EnergyVAD(vad.VAD):
    """A VAD whose model calls 20 ms of audio speech when its level is well above silence."""

    def __init__(self) -> None:
        super().__init__(capabilities=vad.VADCapabilities(update_interval=CHUNK_SECONDS))
        self.min_silence_duration = MIN_SILENCE_SECS

    @property
    def model(self) -> str:
        return "energy"

    @property
    def provider(self) -> str:
        return "local"

    def stream(self) -> EnergyVADStream:
        return EnergyVADStream(self)


class EnergyVADStream(vad.VADStream):
    async def _main_task(self) -> None:
        speaking = False
        speech: list[rtc.AudioFrame] = []
        speech_s = silence_s = 0.0
        index = 0
        async for item in self._input_ch:
            if not isinstance(item, rtc.AudioFrame):  # a flush: start a fresh segment
                speaking, speech, speech_s, silence_s = False, [], 0.0, 0.0
                continue
            index += item.samples_per_channel
            voiced = rms(item) > 1000
            if voiced:
                speech_s += item.duration
                silence_s = 0.0
            else:
                silence_s += item.duration
                if not speaking:
                    speech_s = 0.0
            if speaking or voiced:
                speech.append(item)
            event = vad.VADEvent(
                type=vad.VADEventType.INFERENCE_DONE,
                samples_index=index,
                timestamp=time.time(),
                speech_duration=speech_s,
                silence_duration=silence_s,
                frames=[item],
                probability=1.0 if voiced else 0.0,
                speaking=speaking,
                raw_accumulated_speech=speech_s if voiced else 0.0,
                raw_accumulated_silence=silence_s,
            )
            self._event_ch.send_nowait(event)
            if not speaking and speech_s >= MIN_SPEECH_SECS:
                speaking = True
                self._event_ch.send_nowait(
                    vad.VADEvent(
                        type=vad.VADEventType.START_OF_SPEECH,
                        samples_index=index,
                        timestamp=time.time(),
                        speech_duration=speech_s,
                        silence_duration=0.0,
                        frames=list(speech),
                        speaking=True,
                    )
                )
            elif speaking and silence_s >= MIN_SILENCE_SECS:
                speaking = False
                self._event_ch.send_nowait(
                    vad.VADEvent(
                        type=vad.VADEventType.END_OF_SPEECH,
                        samples_index=index,
                        timestamp=time.time(),
                        speech_duration=speech_s,
                        silence_duration=silence_s,
                        frames=list(speech),
                        speaking=False,
                    )
                )
                speech, speech_s = [], 0.0
            elif not speaking and not voiced:
                speech = []


class LocalSTT(stt.STT):
    """Recognises each VAD segment as the next line of a script, after ``STT_DELAY``."""

    def __init__(self, transcripts: list[str]) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._transcripts = list(transcripts)
        self.segments_seconds: list[float] = []

    @property
    def model(self) -> str:
        return "local-asr"

    @property
    def provider(self) -> str:
        return "local"

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        frame = rtc.combine_audio_frames(buffer)
        self.segments_seconds.append(frame.duration)
        await asyncio.sleep(STT_DELAY)
        text = self._transcripts.pop(0) if self._transcripts else ""
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=uuid.uuid4().hex,
            alternatives=[stt.SpeechData(language="en", text=text)],
        )


class LocalTTS(tts.TTS):
    """Speaks text as a tone of ``TTS_SECONDS_PER_CHARACTER`` per character."""

    def __init__(self) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=SAMPLE_RATE,
            num_channels=1,
        )
        self.characters = 0

    @property
    def model(self) -> str:
        return "tone-1"

    @property
    def provider(self) -> str:
        return "local"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> LocalChunkedStream:
        return LocalChunkedStream(tts=self, input_text=text, conn_options=conn_options)


class LocalChunkedStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=uuid.uuid4().hex,
            sample_rate=SAMPLE_RATE,
            num_channels=1,
            mime_type="audio/pcm",
        )
        await asyncio.sleep(TTS_FIRST_AUDIO_DELAY)
        pcm = tone(len(self.input_text) * TTS_SECONDS_PER_CHARACTER, amplitude=0.2)
        step = 2 * int(SAMPLE_RATE * 0.1)
        for i in range(0, len(pcm), step):
            output_emitter.push(pcm[i : i + step])
        output_emitter.flush()


# -- the session -------------------------------------------------------------------------


@dataclass
class Rig:
    session: AgentSession[Any]
    mic: ScriptedMic
    speaker: Speaker
    stt: LocalSTT
    tts: LocalTTS
    llm: inference.LLM

    async def run(self, script: list[Step], greeting: str | None = None) -> None:
        """Start the session, say the greeting, play the script, then close the session."""
        await self.session.start(Agent(instructions="You are a helpful voice assistant."))
        if greeting:
            self.session.say(greeting)
        await self.mic.play(script)
        await self.session.aclose()
        await self.llm.aclose()


def build_rig(*, llm_url: str, transcripts: list[str]) -> Rig:
    """An ``AgentSession`` set up the way LiveKit's examples set one up, with the stand-ins."""
    speaker = Speaker()
    mic = ScriptedMic(speaker)
    local_stt = LocalSTT(transcripts)
    local_tts = LocalTTS()
    llm = inference.LLM(
        "openai/gpt-4o-mini",
        base_url=llm_url,
        api_key="loopback",
        api_secret="loopback-secret-of-at-least-32-bytes",
    )
    session: AgentSession[Any] = AgentSession(
        vad=EnergyVAD(),
        stt=local_stt,
        llm=llm,
        tts=local_tts,
        turn_handling={
            "turn_detection": "vad",
            "endpointing": {"min_delay": ENDPOINTING_DELAY, "max_delay": 3.0},
            "interruption": {"mode": "vad", "min_duration": 0.3},
            "preemptive_generation": {"enabled": False},
        },
        user_away_timeout=None,
        aec_warmup_duration=None,
    )
    session.input.audio = mic
    session.output.audio = speaker
    return Rig(session, mic, speaker, local_stt, local_tts, llm)
