"""Conversation content: never recorded by default; opt-in, truncated and redacted when on."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

import voice_otel
from voice_otel import _content

if TYPE_CHECKING:
    from conftest import Captured

    from voice_otel._runtime import Options

INPUT, OUTPUT = "voice.content.input", "voice.content.output"


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


@voice_otel.llm(provider="openai", model="gpt-4o-mini")
def answer(prompt: str) -> str:
    return f"You said: {prompt}"


@voice_otel.llm(provider="openai", model="gpt-4o-mini")
def stream_answer(prompt: str) -> Iterator[str]:
    yield from ("Sure, ", "your ", "order ", "is ", "on ", "its ", "way.")


@voice_otel.stt(provider="deepgram", model="nova-3")
def transcribe(audio: bytes) -> str:
    return "my card is 4111 1111 1111 1111"


@voice_otel.tts(provider="cartesia", model="sonic-2")
async def speak(text: str) -> AsyncIterator[bytes]:
    for word in text.split():
        yield word.encode()


async def _run_everything() -> None:
    transcribe(b"\x00\x01audio")
    answer("where is my order?")
    list(stream_answer("and when?"))
    [c async for c in speak("It ships today")]
    with voice_otel.stage("llm", model="manual") as s:
        s.record_content(input="manual prompt", output="manual reply")


async def test_content_is_not_recorded_by_default(otel: Captured) -> None:
    await _run_everything()

    assert len(otel.stage_spans()) == 5
    for span in otel.spans():
        assert not any(key.startswith("voice.content.") for key in _attrs(span))


async def test_content_is_recorded_when_capture_is_on(otel: Captured, options: Options) -> None:
    options.capture_content = True

    await _run_everything()

    stt = _attrs(otel.span("speech_to_text nova-3"))
    assert INPUT not in stt  # audio is never recorded
    assert stt[OUTPUT] == "my card is 4111 1111 1111 1111"
    plain, streamed = otel.spans("chat gpt-4o-mini")
    assert _attrs(plain)[INPUT] == "where is my order?"
    assert _attrs(plain)[OUTPUT] == "You said: where is my order?"
    assert _attrs(streamed)[INPUT] == "and when?"
    assert _attrs(streamed)[OUTPUT] == "Sure, your order is on its way."
    tts = _attrs(otel.span("text_to_speech sonic-2"))
    assert tts[INPUT] == "It ships today"
    assert OUTPUT not in tts  # audio bytes are never recorded
    manual = _attrs(otel.span("chat manual"))
    assert manual[INPUT] == "manual prompt"
    assert manual[OUTPUT] == "manual reply"


async def test_content_never_reaches_metric_attributes(otel: Captured, options: Options) -> None:
    options.capture_content = True

    await _run_everything()

    for metric in otel.metrics().values():
        for point in metric.data.data_points:
            for value in (point.attributes or {}).values():
                assert "order" not in str(value)
                assert "4111" not in str(value)


def test_input_is_the_first_text_argument(otel: Captured, options: Options) -> None:
    options.capture_content = True

    class Bot:
        @voice_otel.llm
        def reply(self, history: list[str], prompt: str, style: str = "brief") -> str:
            return "ok"

    Bot().reply(["earlier"], "the prompt", style="long")

    assert _attrs(otel.span("chat"))[INPUT] == "the prompt"


def test_long_input_is_truncated_and_marked(otel: Captured, options: Options) -> None:
    options.capture_content = True
    options.content_max_length = 10

    answer("a" * 50)

    span = _attrs(otel.span("chat gpt-4o-mini"))
    assert span[INPUT] == "a" * 10 + "…"
    assert span[OUTPUT] == "You said: " + "…"


def test_long_streamed_output_is_truncated_and_marked(otel: Captured, options: Options) -> None:
    options.capture_content = True
    options.content_max_length = 12

    assert "".join(stream_answer("x")) == "Sure, your order is on its way."

    assert _attrs(otel.span("chat gpt-4o-mini"))[OUTPUT] == "Sure, your o…"


def test_text_at_the_limit_is_not_marked(otel: Captured, options: Options) -> None:
    options.capture_content = True
    options.content_max_length = len("Sure, your order is on its way.")

    list(stream_answer("x"))

    assert _attrs(otel.span("chat gpt-4o-mini"))[OUTPUT] == "Sure, your order is on its way."


def test_redact_hook_applies_to_input_and_output(otel: Captured, options: Options) -> None:
    options.capture_content = True
    options.redact = lambda text: re.sub(r"\d", "#", text)

    transcribe(b"...")
    answer("call me at 555 0100")

    assert _attrs(otel.span("speech_to_text nova-3"))[OUTPUT] == "my card is #### #### #### ####"
    llm = _attrs(otel.span("chat gpt-4o-mini"))
    assert llm[INPUT] == "call me at ### ####"
    assert llm[OUTPUT] == "You said: call me at ### ####"


def test_redact_sees_streamed_output_whole(otel: Captured, options: Options) -> None:
    options.capture_content = True
    options.redact = lambda text: re.sub(r"\b\d{4}\b", "[pin]", text)

    @voice_otel.llm
    def pin() -> Iterator[str]:
        yield from ("your pin is 12", "34, keep it safe")

    list(pin())

    assert _attrs(otel.span("chat"))[OUTPUT] == "your pin is [pin], keep it safe"


def test_redact_runs_before_truncation(otel: Captured, options: Options) -> None:
    options.capture_content = True
    options.content_max_length = 16
    options.redact = lambda text: re.sub(r"(\d{4} ?){4}", "[card] ", text)

    answer("card 4111 1111 1111 1111 please")

    assert _attrs(otel.span("chat gpt-4o-mini"))[INPUT] == "card [card] plea…"


def test_a_redact_hook_that_raises_drops_the_text_and_says_whose_fault(
    otel: Captured, options: Options, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    monkeypatch.setattr(_content, "_redact_warned", False)
    options.capture_content = True

    def redact(text: str) -> str:
        raise KeyError("no pattern for this locale")

    options.redact = redact
    with caplog.at_level(logging.WARNING, "voice_otel"):
        assert answer("call me at 555 0100") == "You said: call me at 555 0100"
        answer("again")

    for span in otel.spans():
        assert INPUT not in _attrs(span) and OUTPUT not in _attrs(span)  # never unredacted
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "redact hook" in warning and "KeyError" in warning
    assert "internal error" not in warning


def test_record_content_is_ignored_when_capture_is_off(otel: Captured) -> None:
    with voice_otel.stage("llm") as s:
        s.record_content(input="secret prompt", output="secret reply")

    assert INPUT not in _attrs(otel.span("chat"))
    assert OUTPUT not in _attrs(otel.span("chat"))


@pytest.mark.parametrize("source", ["argument", "environment"])
def test_configure_turns_capture_on(
    otel: Captured, options: Options, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    if source == "environment":
        monkeypatch.setenv("VOICE_OTEL_CAPTURE_CONTENT", "true")
        kwargs: dict[str, Any] = {}
    else:
        kwargs = {"capture_content": True, "content_max_length": 5}
    voice_otel.configure(prometheus_port=False, json_path=False, handle_sigterm=False, **kwargs)
    otel.install()

    answer("hello world")

    assert options.capture_content is True
    expected = "hello…" if source == "argument" else "hello world"
    assert _attrs(otel.span("chat gpt-4o-mini"))[INPUT] == expected
