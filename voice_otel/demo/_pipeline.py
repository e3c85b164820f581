"""The demo voice agent: recorded speech -> pocketsphinx -> LLM (streamed) -> espeak-ng.

Each engine is wrapped with the voice_otel stage decorators when the pipeline is built, so the
spans carry the engine's real provider and model. A conversation is one
``voice_otel.conversation()``; each user utterance is one ``voice_otel.turn()``.

The reply is spoken sentence by sentence while the LLM is still streaming, as production voice
agents do, so the caller hears the first sentence before the last token exists. Two turns are
scripted to show what goes wrong in production: in one, the LLM provider fails once (a
simulated 503) and the turn retries; in another, the caller talks over the bot (a barge-in), so
the TTS and LLM streams are closed early. Audio is not played out loud; a chunk counts as
played when the pipeline consumes it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import aclosing, closing
from dataclasses import dataclass, field

import voice_otel
from voice_otel.demo._audio import Utterance
from voice_otel.demo._llm import (
    SYSTEM_PROMPT,
    ChatEngine,
    Message,
    ProviderError,
    ProviderUnavailable,
    TokenUsage,
)
from voice_otel.demo._stt import MODEL as STT_MODEL
from voice_otel.demo._stt import PROVIDER as STT_PROVIDER
from voice_otel.demo._stt import PocketsphinxSTT
from voice_otel.demo._tts import MODEL as TTS_MODEL
from voice_otel.demo._tts import PROVIDER as TTS_PROVIDER
from voice_otel.demo._tts import EspeakTTS, split_sentences

logger = logging.getLogger(__name__)

MAX_LLM_ATTEMPTS = 2
RETRY_BACKOFF_SECONDS = 0.1
_SENTENCE = re.compile(r"^(.*?[.!?;:])\s+(.*)$", re.DOTALL)


@dataclass(frozen=True)
class DemoPlan:
    """What the scripted conversation does; turn numbers count from 1.

    By default the second turn's first LLM call fails and is retried, and the caller barges in
    on the fourth turn after ``barge_in_after_chunks`` chunks of bot audio.
    """

    turns: int = 6
    failing_turn: int | None = 2
    barge_in_turn: int | None = 4
    barge_in_after_chunks: int = 30

    def __post_init__(self) -> None:
        if self.turns < 1:
            raise ValueError("a conversation needs at least one turn")
        if self.barge_in_after_chunks < 1:
            raise ValueError("barge_in_after_chunks must be at least 1")

    @classmethod
    def for_turns(cls, turns: int) -> DemoPlan:
        """The default script fitted to ``turns`` (short runs still fail once and barge in)."""
        return cls(turns=turns, failing_turn=min(2, turns), barge_in_turn=min(4, turns))


@dataclass
class TurnResult:
    """What one turn of the demo did, with what voice_otel measured for it."""

    number: int
    said: str
    heard: str
    reply: str
    llm_attempts: int = 0
    llm_errors: list[str] = field(default_factory=list)
    barged_in: bool = False
    played_chunks: int = 0
    played_seconds: float = 0.0
    error: str | None = None
    record: voice_otel.TurnRecord | None = None


class VoicePipeline:
    """STT, LLM and TTS engines behind voice_otel stage decorators.

    Example:
        >>> pipeline = VoicePipeline(PocketsphinxSTT(), LocalResponder(), EspeakTTS())
        >>> results = asyncio.run(pipeline.converse(load_utterances(), DemoPlan()))
    """

    def __init__(self, stt: PocketsphinxSTT, llm: ChatEngine, tts: EspeakTTS) -> None:
        self.stt, self.llm, self.tts = stt, llm, tts
        self.transcribe = voice_otel.stt(provider=STT_PROVIDER, model=STT_MODEL)(self._transcribe)
        self.reply = voice_otel.llm(provider=llm.provider, model=llm.model)(self._reply)
        self.speak = voice_otel.tts(provider=TTS_PROVIDER, model=TTS_MODEL, voice=tts.voice)(
            self._speak
        )

    # -- the three stages (decorated in __init__) --------------------------------------------

    def _transcribe(self, pcm: bytes, sample_rate: int) -> str:
        voice_otel.record_usage(input_audio_seconds=len(pcm) / 2 / sample_rate)
        return self.stt.transcribe(pcm, sample_rate)

    async def _reply(self, messages: Sequence[Message], fail: bool = False) -> AsyncIterator[str]:
        if fail:
            await asyncio.sleep(0.08)  # the request goes out; an error comes back
            raise ProviderUnavailable(f"503 from {self.llm.provider} {self.llm.model} (simulated)")
        usage = TokenUsage()
        try:
            async with aclosing(self.llm.stream(messages, usage)) as pieces:
                async for piece in pieces:
                    yield piece
        finally:
            # Also when the caller barged in: what was generated was paid for.
            voice_otel.record_usage(
                input_tokens=usage.input_tokens, output_tokens=usage.output_tokens
            )

    def _speak(self, text: str) -> Iterator[bytes]:
        voice_otel.record_usage(characters=len(text))
        for sentence in split_sentences(text):
            pcm = self.tts.synthesize(sentence)
            voice_otel.record_usage(output_audio_seconds=self.tts.seconds(pcm))
            yield from self.tts.chunks(pcm)

    # -- the conversation --------------------------------------------------------------------

    async def converse(self, utterances: Sequence[Utterance], plan: DemoPlan) -> list[TurnResult]:
        """Run ``plan.turns`` turns (cycling through ``utterances``) in one conversation."""
        if not utterances:
            raise ValueError("no utterances to play")
        history: list[Message] = [{"role": "system", "content": SYSTEM_PROMPT}]
        results: list[TurnResult] = []

        async with voice_otel.conversation():
            for number in range(1, plan.turns + 1):
                utterance = utterances[(number - 1) % len(utterances)]
                result = TurnResult(number, utterance.script, heard="", reply="")
                results.append(result)
                try:
                    async with voice_otel.turn() as turn:
                        await self._turn(turn, utterance, history, plan, result)
                except ProviderError as exc:
                    # The turn span already carries the error; the call goes on.
                    result.error = f"{type(exc).__name__}: {exc}"
                    logger.warning("turn %d failed: %s", number, result.error)

                result.record = turn.record
                history.append({"role": "user", "content": result.heard})
                if result.reply:
                    history.append({"role": "assistant", "content": result.reply})
        return results

    async def _turn(
        self,
        turn: voice_otel.Turn,
        utterance: Utterance,
        history: list[Message],
        plan: DemoPlan,
        result: TurnResult,
    ) -> None:
        # The caller's audio has just ended: the voice-to-voice clock starts now.
        turn.user_stopped_speaking()
        loop = asyncio.get_running_loop()
        result.heard = await loop.run_in_executor(
            None, voice_otel.in_context(self.transcribe), utterance.pcm, utterance.sample_rate
        )

        messages = [*history, {"role": "user", "content": result.heard}]
        barge_in_after = plan.barge_in_after_chunks if result.number == plan.barge_in_turn else None

        for attempt in range(1, MAX_LLM_ATTEMPTS + 1):
            result.llm_attempts = attempt
            fail = result.number == plan.failing_turn and attempt == 1
            try:
                await self._respond(turn, messages, fail, barge_in_after, result)
                return
            except ProviderUnavailable as exc:
                result.llm_errors.append(f"{type(exc).__name__}: {exc}")
                if attempt == MAX_LLM_ATTEMPTS or result.played_chunks:
                    raise  # out of attempts, or the caller already heard part of a reply
                logger.info("LLM attempt %d failed (%s); retrying", attempt, exc)
                result.reply = ""
                await asyncio.sleep(RETRY_BACKOFF_SECONDS)

    async def _respond(
        self,
        turn: voice_otel.Turn,
        messages: list[Message],
        fail: bool,
        barge_in_after: int | None,
        result: TurnResult,
    ) -> None:
        """Stream the reply and speak each sentence as soon as it is complete."""
        pending = ""
        async with aclosing(self.reply(messages, fail)) as pieces:
            async for piece in pieces:
                result.reply += piece
                pending += piece
                while (match := _SENTENCE.match(pending)) is not None:
                    sentence, pending = match.group(1), match.group(2)
                    if not self._say(turn, sentence, barge_in_after, result):
                        return  # barge-in: leaving the block closes the LLM stream too
        if pending.strip():
            self._say(turn, pending, barge_in_after, result)

    def _say(
        self,
        turn: voice_otel.Turn,
        sentence: str,
        barge_in_after: int | None,
        result: TurnResult,
    ) -> bool:
        """Speak one sentence; False when the caller barged in and the bot stopped."""
        with closing(self.speak(sentence)) as audio:
            for chunk in audio:
                result.played_chunks += 1
                result.played_seconds += self.tts.seconds(chunk)
                if barge_in_after is not None and result.played_chunks >= barge_in_after:
                    turn.interrupt(played_audio_seconds=result.played_seconds)
                    result.barged_in = True
                    return False
        return True
