"""The demo's engines on their own: shipped audio, pocketsphinx, espeak-ng, the LLM engines."""

from __future__ import annotations

import array
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import voice_otel
from voice_otel._contract import Attr, GenAI, SpanName
from voice_otel.demo import DemoPlan, VoicePipeline, _audio
from voice_otel.demo._llm import (
    PREFIX,
    LocalResponder,
    ProviderError,
    ProviderUnavailable,
    TokenUsage,
    local_answer,
)
from voice_otel.demo._openai_compat import OpenAICompatibleLLM, completions_url, provider_for
from voice_otel.demo._stt import PocketsphinxSTT
from voice_otel.demo._tts import EspeakTTS, split_sentences

if TYPE_CHECKING:
    from conftest import Captured

MAKE_AUDIO = Path(_audio.__file__).with_name("make_audio.sh")


@pytest.fixture(scope="module")
def stt() -> PocketsphinxSTT:
    return PocketsphinxSTT()


@pytest.fixture(scope="module")
def tts() -> EspeakTTS:
    return EspeakTTS()


def _peak(pcm: bytes) -> int:
    samples = array.array("h")
    samples.frombytes(pcm)
    return max(abs(s) for s in samples)


# -- shipped audio ---------------------------------------------------------------------------


def test_shipped_utterances_are_16khz_mono_16bit_and_small() -> None:
    total = 0
    for name, _script in _audio.UTTERANCES:
        path = _audio.audio_dir() / f"{name}.wav"
        with wave.open(str(path), "rb") as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16_000)
            assert 1.0 < wav.getnframes() / 16_000 < 5.0
        total += path.stat().st_size
    assert len(_audio.UTTERANCES) >= 5
    assert total < 1_000_000


def test_make_audio_script_lists_the_same_utterances() -> None:
    script = MAKE_AUDIO.read_text()
    listed = re.search(r"<<'LIST'\n(.*?)\nLIST\n", script, re.DOTALL)
    assert listed is not None
    pairs = tuple(tuple(line.split("|", 1)) for line in listed.group(1).splitlines())
    assert pairs == _audio.UTTERANCES
    assert "en-us+f2" in script and "-s 130" in script and "-r 16000" in script


def test_read_wav_rejects_stereo(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(b"\0\0" * 200)
    with pytest.raises(ValueError, match="mono 16-bit"):
        _audio.read_wav(path)


# -- pocketsphinx ------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 4])
def test_pocketsphinx_decodes_shipped_speech(stt: PocketsphinxSTT, index: int) -> None:
    utterance = _audio.load_utterances()[index]
    heard = stt.transcribe(utterance.pcm, utterance.sample_rate)
    expected = set(utterance.script.split())
    assert len(expected & set(heard.split())) >= 3, (utterance.script, heard)


def test_pocketsphinx_rejects_other_sample_rates(stt: PocketsphinxSTT) -> None:
    with pytest.raises(ValueError, match="16000 Hz"):
        stt.transcribe(b"\0\0" * 100, 8_000)


# -- espeak-ng ---------------------------------------------------------------------------------


def test_espeak_produces_16bit_pcm_of_plausible_duration(tts: EspeakTTS) -> None:
    pcm = tts.synthesize("book a table for two people")
    assert len(pcm) % 2 == 0
    assert 0.8 < tts.seconds(pcm) < 4.0  # six words at 165 words per minute, plus pauses
    assert _peak(pcm) > 1000  # speech, not silence


def test_espeak_stream_is_chunked_sentence_by_sentence(tts: EspeakTTS) -> None:
    text = "Sure. We open at nine tomorrow."
    chunks = list(tts.stream(text))
    assert len(chunks) > 5
    assert all(len(c) == tts.chunk_bytes for c in chunks[:3])
    # espeak-ng varies its intonation a little from run to run: compare durations, not bytes.
    expected = sum(tts.seconds(tts.synthesize(s)) for s in split_sentences(text))
    assert tts.seconds(b"".join(chunks)) == pytest.approx(expected, rel=0.1)


def test_espeak_stream_closed_early_stops(tts: EspeakTTS) -> None:
    stream: Iterator[bytes] = tts.stream("One sentence here. Another one there. And a third.")
    first = next(stream)
    stream.close()  # type: ignore[attr-defined]
    assert first
    assert list(stream) == []


def test_espeak_rejects_unknown_voice() -> None:
    with pytest.raises(ValueError, match="no voice"):
        EspeakTTS(voice="no-such-voice")


def test_espeak_speech_is_recognisable(tts: EspeakTTS, stt: PocketsphinxSTT) -> None:
    if shutil.which("sox") is None:
        if os.environ.get("CI"):
            pytest.fail("sox is missing (scripts/install-system-deps installs it)")
        pytest.skip("sox is not installed")
    pcm = tts.synthesize("i need a taxi to the airport")
    resampled = subprocess.run(
        ["sox", "-t", "raw", "-r", str(tts.sample_rate), "-e", "signed", "-b", "16", "-c", "1",
         "-", "-t", "raw", "-r", "16000", "-"],
        input=pcm, capture_output=True, check=True,
    ).stdout  # fmt: skip
    heard = stt.transcribe(resampled)
    assert len({"taxi", "airport", "need"} & set(heard.split())) >= 1, heard


def test_split_sentences() -> None:
    assert split_sentences("Hi. How are you?  Fine!") == ["Hi.", "How are you?", "Fine!"]
    assert split_sentences("  ") == []


# -- local responder ---------------------------------------------------------------------------


async def test_local_responder_streams_word_by_word() -> None:
    responder = LocalResponder(first_token_delay=0.01, word_delay=0.0)
    usage = TokenUsage()
    messages = [{"role": "user", "content": "what time do you open tomorrow"}]
    pieces = [p async for p in responder.stream(messages, usage)]
    assert len(pieces) > 5
    assert "".join(pieces) == local_answer("what time do you open tomorrow")
    assert pieces[0] == "(local "
    assert usage.input_tokens > 0 and usage.output_tokens > 0 and usage.estimated


def test_local_answer_survives_misrecognition_and_says_what_it_is() -> None:
    assert "booked a table" in local_answer("look at a goal for two people")
    assert "pizza" in local_answer("i would like to order a pizza")
    fallback = local_answer("purple elephants")
    assert fallback.startswith(PREFIX) and "purple elephants" in fallback
    assert "did not catch" in local_answer("")


# -- OpenAI-compatible endpoint, served on loopback ---------------------------------------------


class _Server:
    """A one-route HTTP/1.1 server on 127.0.0.1 answering chat completions with canned SSE."""

    def __init__(
        self,
        status: int = 200,
        events: list[str] | None = None,
        raw: tuple[str, bytes] | None = None,
    ) -> None:
        self.status = status
        self.events = events or []
        self.raw = raw  # (content type, body) answered as they are
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> _Server:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
        headers = {k.lower(): v for k, v in headers.items()}
        body = json.loads(await reader.readexactly(int(headers["content-length"])))
        self.requests.append((headers, body))
        if self.raw is not None:
            kind, payload = self.raw
        elif self.status == 200:
            payload = "".join(f"data: {e}\n\n" for e in self.events).encode()
            kind = "text/event-stream"
        else:
            payload, kind = b'{"error": "overloaded"}', "application/json"
        writer.write(
            f"HTTP/1.1 {self.status} X\r\ncontent-type: {kind}\r\n"
            f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()


def _delta(text: str) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]})


async def _collect(llm: OpenAICompatibleLLM, usage: TokenUsage) -> list[str]:
    pieces: AsyncIterator[str] = llm.stream([{"role": "user", "content": "hello"}], usage)
    try:
        return [p async for p in pieces]
    finally:
        await llm.aclose()


async def test_openai_compatible_streams_tokens_and_usage() -> None:
    events = [
        _delta("Hello"),
        _delta(" there."),
        json.dumps({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3}}),
        "[DONE]",
    ]
    async with _Server(events=events) as server:
        llm = OpenAICompatibleLLM(server.url, "tiny-model", api_key="sk-test")
        usage = TokenUsage()
        pieces = await _collect(llm, usage)
    assert pieces == ["Hello", " there."]
    assert (usage.input_tokens, usage.output_tokens, usage.estimated) == (12, 3, False)
    headers, body = server.requests[0]
    assert headers["authorization"] == "Bearer sk-test"
    assert body["model"] == "tiny-model" and body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert llm.provider == "openai_compatible"


async def test_openai_compatible_estimates_usage_when_not_reported() -> None:
    async with _Server(events=[_delta("Fine, thanks."), "[DONE]"]) as server:
        llm = OpenAICompatibleLLM(server.url, "tiny-model")
        usage = TokenUsage()
        assert await _collect(llm, usage) == ["Fine, thanks."]
    assert "authorization" not in server.requests[0][0]
    assert usage.estimated and usage.input_tokens > 0 and usage.output_tokens > 0


@pytest.mark.parametrize(
    ("status", "error"), [(503, ProviderUnavailable), (429, ProviderUnavailable)]
)
async def test_openai_compatible_overload_is_retryable(status: int, error: type[Exception]) -> None:
    async with _Server(status=status) as server:
        llm = OpenAICompatibleLLM(server.url, "tiny-model")
        with pytest.raises(error, match=str(status)):
            await _collect(llm, TokenUsage())


async def test_openai_compatible_client_error_is_not_retryable() -> None:
    async with _Server(status=400) as server:
        llm = OpenAICompatibleLLM(server.url, "tiny-model")
        with pytest.raises(ProviderError, match="400") as caught:
            await _collect(llm, TokenUsage())
    assert not isinstance(caught.value, ProviderUnavailable)


async def test_openai_compatible_unreachable_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = OpenAICompatibleLLM(f"http://127.0.0.1:{port}/v1", "tiny-model", timeout=5)
    with pytest.raises(ProviderUnavailable, match="ConnectError"):
        await _collect(llm, TokenUsage())


_SSE = "text/event-stream"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (("text/plain", b"garbage"), "answered text/plain, not a stream of server-sent events"),
        (("text/html; charset=utf-8", b"<html>"), "not a stream of server-sent events"),
        (("application/json", b'{"id": "x", "choices": []}'), "not a stream of server-sent"),
        ((_SSE, b"garbage\n\n"), "no chat completion chunks"),
        ((_SSE, b'data: {"text": "hello"}\n\ndata: [DONE]\n\n'), "no chat completion chunks"),
        ((_SSE, b"data: [DONE]\n\n"), "no chat completion chunks"),
        ((_SSE, b"data: garbage\n\n"), "malformed stream chunk"),
        ((_SSE, b'data: {"choices": "hello"}\n\n'), "malformed stream chunk"),
        ((_SSE, b'data: {"choices": [{"delta": "hello"}]}\n\n'), "malformed stream chunk"),
        ((_SSE, b'data: {"choices": [{"delta": {"content": 7}}]}\n\n'), "malformed stream"),
        ((_SSE, b'data: {"choices": [], "usage": {"prompt_tokens": "x"}}\n\n'), "malformed"),
    ],
    ids=["plain", "html", "json", "no-data", "no-choices", "only-done", "not-json",
         "choices-not-list", "delta-not-object", "content-not-text", "usage-not-number"],
)  # fmt: skip
async def test_openai_compatible_answer_that_is_not_openai_streaming_is_an_error(
    raw: tuple[str, bytes], message: str
) -> None:
    async with _Server(raw=raw) as server:
        llm = OpenAICompatibleLLM(server.url, "tiny-model")
        with pytest.raises(ProviderError, match=message) as caught:
            await _collect(llm, TokenUsage())
    assert not isinstance(caught.value, ProviderUnavailable)  # retrying will not help


def test_openai_compatible_settings() -> None:
    assert completions_url("http://h/v1/") == "http://h/v1/chat/completions"
    assert completions_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"
    assert provider_for("https://api.openai.com/v1") == "openai"
    with pytest.raises(ValueError, match="http"):
        OpenAICompatibleLLM("ftp://h/v1", "m")
    with pytest.raises(ValueError, match="model"):
        OpenAICompatibleLLM("http://h/v1", "")


async def test_pipeline_traces_an_openai_compatible_endpoint(
    otel: Captured, stt: PocketsphinxSTT, tts: EspeakTTS
) -> None:
    events = [
        _delta("It is sunny. "),
        _delta("Enjoy your day."),
        json.dumps({"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 7}}),
        "[DONE]",
    ]
    async with _Server(events=events) as server:
        llm = OpenAICompatibleLLM(server.url, "tiny-model", provider="testlab")
        pipeline = VoicePipeline(stt, llm, tts)
        plan = DemoPlan(turns=1, failing_turn=None, barge_in_turn=None)
        try:
            (result,) = await pipeline.converse(_audio.load_utterances()[:1], plan)
        finally:
            await llm.aclose()

    assert result.reply == "It is sunny. Enjoy your day."
    assert result.record is not None and result.record.outcome == "ok"
    (chat,) = otel.spans(SpanName.stage(GenAI.OP_CHAT, "tiny-model"))
    attrs = dict(chat.attributes or {})
    assert attrs[GenAI.PROVIDER_NAME] == "testlab"
    assert (attrs[GenAI.USAGE_INPUT_TOKENS], attrs[GenAI.USAGE_OUTPUT_TOKENS]) == (40, 7)
    assert attrs[Attr.OUTCOME] == "ok"
    speech = [s for s in otel.stage_spans() if dict(s.attributes or {})[Attr.STAGE] == "tts"]
    assert len(speech) == 2  # one per sentence
    sent = server.requests[0][1]["messages"]
    assert sent[0]["role"] == "system" and sent[-1] == {"role": "user", "content": result.heard}
    assert voice_otel.current_turn() is None


@pytest.mark.parametrize(
    ("status", "raw", "attempts", "error"),
    [
        (503, None, 2, "503"),
        (400, None, 1, "400"),
        (200, ("text/plain", b"garbage"), 1, "not a stream of server-sent events"),
    ],
)
async def test_pipeline_retries_an_unavailable_endpoint_once_and_moves_on(
    otel: Captured,
    stt: PocketsphinxSTT,
    tts: EspeakTTS,
    status: int,
    raw: tuple[str, bytes] | None,
    attempts: int,
    error: str,
) -> None:
    async with _Server(status=status, raw=raw) as server:
        llm = OpenAICompatibleLLM(server.url, "tiny-model")
        pipeline = VoicePipeline(stt, llm, tts)
        plan = DemoPlan(turns=2, failing_turn=None, barge_in_turn=None)
        clips = _audio.load_utterances()[4:6]  # the two shortest decodes
        try:
            results = await pipeline.converse(clips, plan)
        finally:
            await llm.aclose()

    assert len(server.requests) == 2 * attempts
    for result in results:  # the call goes on after a failed turn
        assert result.llm_attempts == attempts
        assert result.error is not None and error in result.error
        assert result.record is not None and result.record.outcome == "error"
    chats = otel.spans(SpanName.stage(GenAI.OP_CHAT, "tiny-model"))
    assert len(chats) == 2 * attempts
    assert all(dict(s.attributes or {})[Attr.OUTCOME] == "error" for s in chats)
    assert not [s for s in otel.stage_spans() if dict(s.attributes or {})[Attr.STAGE] == "tts"]
