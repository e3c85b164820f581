"""Usage (tokens, audio seconds, characters) on spans and metrics, and cost from the price table."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import voice_otel
from voice_otel import _usage
from voice_otel._usage import PriceTable, Usage, load_table

if TYPE_CHECKING:
    from conftest import Captured

TOKENS = "gen_ai.client.token.usage"
SHIPPED = json.loads((Path(_usage.__file__).parent / "prices.json").read_text())


def _attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


def _use_prices(otel: Captured, prices: Any) -> None:
    """configure() with only a price override, then back to the test's in-memory providers."""
    voice_otel.configure(
        prices=prices, prometheus_port=False, json_path=False, handle_sigterm=False
    )
    otel.install()


# -- usage -----------------------------------------------------------------------------------


def test_record_usage_sets_token_attributes_and_metric(otel: Captured) -> None:
    @voice_otel.llm(provider="openai", model="gpt-4o-mini")
    def answer(prompt: str) -> str:
        voice_otel.record_usage(input_tokens=120, output_tokens=30)
        return "ok"

    answer("hi")

    span = otel.span("chat gpt-4o-mini")
    assert _attrs(span)["gen_ai.usage.input_tokens"] == 120
    assert _attrs(span)["gen_ai.usage.output_tokens"] == 30
    base = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
    assert otel.point(TOKENS, {**base, "gen_ai.token.type": "input"}).sum == 120
    assert otel.point(TOKENS, {**base, "gen_ai.token.type": "output"}).sum == 30


def test_only_reported_token_directions_are_recorded(otel: Captured) -> None:
    @voice_otel.llm(provider="openai", model="gpt-4o-mini")
    def embed(prompt: str) -> str:
        voice_otel.record_usage(input_tokens=8)
        return "ok"

    embed("x")

    assert otel.point(TOKENS, {"gen_ai.token.type": "input"}).sum == 8
    assert otel.points(TOKENS, {"gen_ai.token.type": "output"}) == []
    assert "gen_ai.usage.output_tokens" not in _attrs(otel.span("chat gpt-4o-mini"))


def test_usage_extractor_reads_the_result(otel: Captured) -> None:
    @voice_otel.stt(
        provider="deepgram",
        model="nova-3",
        usage=lambda result: {"input_audio_seconds": result["seconds"]},
    )
    def transcribe(audio: bytes) -> dict[str, Any]:
        return {"text": "hi", "seconds": 3.5}

    transcribe(b"...")

    span = otel.span("speech_to_text nova-3")
    assert _attrs(span)["voice.usage.input_audio_seconds"] == 3.5
    point = otel.point("voice.usage.audio")
    assert point.value == 3.5
    assert dict(point.attributes) == {
        "voice.stage": "stt",
        "gen_ai.operation.name": "speech_to_text",
        "gen_ai.provider.name": "deepgram",
        "gen_ai.request.model": "nova-3",
        "voice.usage.direction": "input",
    }


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_usage_extractor_sums_over_stream_items(otel: Captured, kind: str) -> None:
    def per_chunk(chunk: bytes) -> Usage:
        return Usage(output_audio_seconds=0.25, characters=len(chunk))

    @voice_otel.tts(provider="cartesia", model="sonic-2", usage=per_chunk)
    def speak(text: str) -> Iterator[bytes]:
        for word in text.split():
            yield word.encode()

    @voice_otel.tts(provider="cartesia", model="sonic-2", usage=per_chunk)
    async def aspeak(text: str) -> AsyncIterator[bytes]:
        for word in text.split():
            yield word.encode()

    if kind == "sync":
        chunks = list(speak("hello big world"))
    else:
        chunks = [c async for c in aspeak("hello big world")]

    assert len(chunks) == 3
    span = otel.span("text_to_speech sonic-2")
    assert _attrs(span)["voice.usage.output_audio_seconds"] == pytest.approx(0.75)
    assert _attrs(span)["voice.usage.characters"] == 13
    assert otel.point("voice.usage.audio", {"voice.usage.direction": "output"}).value == (
        pytest.approx(0.75)
    )
    assert otel.point("voice.usage.characters").value == 13


def test_stage_context_manager_records_usage(otel: Captured) -> None:
    with voice_otel.stage("tts", provider="openai", model="tts-1") as s:
        s.record_usage(characters=1000, output_audio_seconds=4.0)
        s.set_response_model("tts-1-2025")

    span = otel.span("text_to_speech tts-1")
    assert _attrs(span)["voice.usage.characters"] == 1000
    assert _attrs(span)["gen_ai.response.model"] == "tts-1-2025"
    assert otel.point("voice.usage.characters").value == 1000


def test_record_usage_outside_a_stage_is_ignored(otel: Captured) -> None:
    voice_otel.record_usage(input_tokens=5)

    assert otel.spans() == []
    assert otel.points(TOKENS) == []


INVALID = [
    pytest.param({"input_tokens": -1}, id="negative"),
    pytest.param({"input_tokens": math.nan}, id="nan"),
    pytest.param({"input_audio_seconds": math.inf}, id="inf"),
    pytest.param({"characters": "12"}, id="string"),
    pytest.param({"output_tokens": True}, id="bool"),
    pytest.param({"tokens": 12}, id="unknown-name"),
    pytest.param({"add": 1, "merge": 2}, id="method-name"),
]


@pytest.mark.parametrize("values", INVALID)
def test_invalid_usage_is_ignored_with_a_warning(
    otel: Captured, caplog: pytest.LogCaptureFixture, values: dict[str, Any]
) -> None:
    @voice_otel.llm(provider="openai", model="gpt-4o-mini")
    def answer() -> str:
        voice_otel.record_usage(**values)
        voice_otel.record_usage(input_tokens=10)
        return "ok"

    with caplog.at_level(logging.WARNING):
        assert answer() == "ok"

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "invalid usage" in warnings[0].getMessage()
    assert f"invalid usage {list(values)}" in warnings[0].getMessage()
    span = otel.span("chat gpt-4o-mini")
    assert _attrs(span)["gen_ai.usage.input_tokens"] == 10
    assert otel.point(TOKENS, {"gen_ai.token.type": "input"}).sum == 10
    assert otel.points(TOKENS, {"gen_ai.token.type": "output"}) == []
    assert otel.points("voice.usage.audio") == []
    assert otel.points("voice.usage.characters") == []


@pytest.mark.parametrize(
    "bad",
    [
        {"output_audio_seconds": -0.5, "characters": "x"},
        Usage(output_audio_seconds=-0.5, characters=math.nan),
    ],
    ids=["mapping", "usage-object"],
)
def test_invalid_usage_from_an_extractor_never_reaches_a_metric(
    otel: Captured, caplog: pytest.LogCaptureFixture, bad: Any
) -> None:
    @voice_otel.tts(provider="cartesia", model="sonic-2", usage=lambda chunk: bad)
    def speak() -> Iterator[bytes]:
        yield from (b"a", b"b", b"c", b"d")

    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert list(speak()) == [b"a", b"b", b"c", b"d"]

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once for the call site, not per audio chunk
    for span in otel.spans():
        assert "voice.usage.output_audio_seconds" not in _attrs(span)
        assert "voice.usage.characters" not in _attrs(span)
        assert "voice.cost.usd" not in _attrs(span)
    assert otel.points("voice.usage.audio") == []
    assert otel.points("voice.usage.characters") == []
    assert otel.points("voice.cost") == []


def test_usage_add_reports_rejected_names() -> None:
    usage = Usage()

    rejected = usage.add(input_tokens=3, output_tokens=-1, characters=None, bogus=1)

    assert rejected == ["output_tokens", "bogus"]
    assert usage == Usage(input_tokens=3)
    assert bool(Usage()) is False
    assert bool(usage) is True


# -- cost ------------------------------------------------------------------------------------


def test_cost_from_shipped_table_for_known_model(otel: Captured) -> None:
    @voice_otel.llm(provider="openai", model="gpt-4o-mini")
    def answer() -> str:
        voice_otel.record_usage(input_tokens=1000, output_tokens=500)
        return "ok"

    answer()

    price = SHIPPED["prices"]["openai/gpt-4o-mini"]
    expected = (1000 * price["input_per_1m_tokens"] + 500 * price["output_per_1m_tokens"]) / 1e6
    span = otel.span("chat gpt-4o-mini")
    assert _attrs(span)["voice.cost.usd"] == pytest.approx(expected)
    assert _attrs(span)["voice.price_table.version"] == SHIPPED["version"]
    point = otel.point("voice.cost")
    assert point.value == pytest.approx(expected)
    assert dict(point.attributes) == {
        "voice.stage": "llm",
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
    }


def test_cost_of_audio_and_characters(otel: Captured) -> None:
    with voice_otel.stage("stt", provider="deepgram", model="nova-3") as s:
        s.record_usage(input_audio_seconds=90)
    with voice_otel.stage("tts", provider="cartesia", model="sonic-2") as s:
        s.record_usage(characters=2000)

    stt_price = SHIPPED["prices"]["deepgram/nova-3"]["input_audio_per_minute"]
    tts_price = SHIPPED["prices"]["cartesia/sonic-2"]["per_1m_characters"]
    stt, tts = otel.span("speech_to_text nova-3"), otel.span("text_to_speech sonic-2")
    assert _attrs(stt)["voice.cost.usd"] == pytest.approx(1.5 * stt_price)
    assert _attrs(tts)["voice.cost.usd"] == pytest.approx(2000 * tts_price / 1e6)


def test_provider_wildcard_prices_any_model(otel: Captured) -> None:
    _use_prices(otel, {"acme/*": {"input_per_1m_tokens": 2.0}})

    with voice_otel.stage("llm", provider="acme", model="anything-7b") as s:
        s.record_usage(input_tokens=500_000)

    assert _attrs(otel.span("chat anything-7b"))["voice.cost.usd"] == pytest.approx(1.0)


def test_shipped_wildcard_for_free_engines_costs_zero(otel: Captured) -> None:
    with voice_otel.stage("tts", provider="espeak-ng") as s:
        s.record_usage(characters=300)

    assert _attrs(otel.span("text_to_speech"))["voice.cost.usd"] == 0


def test_no_cost_for_unknown_model_or_provider(otel: Captured) -> None:
    with voice_otel.stage("llm", provider="openai", model="gpt-unknown") as s:
        s.record_usage(input_tokens=1000)
    with voice_otel.stage("llm", provider="nobody", model="x") as s:
        s.record_usage(input_tokens=1000)
    with voice_otel.stage("llm") as s:
        s.record_usage(input_tokens=1000)

    for span in otel.stage_spans():
        assert "voice.cost.usd" not in _attrs(span)
        assert "voice.price_table.version" not in _attrs(span)
    assert otel.points("voice.cost") == []


def test_exact_model_price_wins_over_wildcard_even_when_free() -> None:
    table = PriceTable(
        "v1",
        {"acme/*": {"input_per_1m_tokens": 5.0}, "acme/free": {}, "acme/pro": {"x": 1.0}},
    )

    assert table.cost("acme", "free", Usage(input_tokens=1e6)) == 0
    assert table.cost("acme", "other", Usage(input_tokens=1e6)) == pytest.approx(5.0)
    assert table.cost("nobody", "free", Usage(input_tokens=1e6)) is None
    assert table.cost(None, "free", Usage(input_tokens=1e6)) is None


def test_prices_override_with_a_mapping(otel: Captured) -> None:
    prices = {"version": "mine-1", "prices": {"openai/gpt-4o-mini": {"input_per_1m_tokens": 100.0}}}
    _use_prices(otel, prices)

    with voice_otel.stage("llm", provider="openai", model="gpt-4o-mini") as s:
        s.record_usage(input_tokens=10_000)
    with voice_otel.stage("llm", provider="openai", model="gpt-4o") as s:
        s.record_usage(input_tokens=1_000_000)

    mini, big = otel.span("chat gpt-4o-mini"), otel.span("chat gpt-4o")
    assert _attrs(mini)["voice.cost.usd"] == pytest.approx(1.0)
    assert _attrs(mini)["voice.price_table.version"] == "mine-1"
    shipped = SHIPPED["prices"]["openai/gpt-4o"]["input_per_1m_tokens"]
    assert _attrs(big)["voice.cost.usd"] == pytest.approx(shipped)  # the rest still shipped


def test_prices_override_with_a_file(otel: Captured, tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"prices": {"acme/voice-1": {"per_1m_characters": 10.0}}}))
    _use_prices(otel, path)

    with voice_otel.stage("tts", provider="acme", model="voice-1") as s:
        s.record_usage(characters=100_000)

    span = otel.span("text_to_speech voice-1")
    assert _attrs(span)["voice.cost.usd"] == pytest.approx(1.0)
    assert _attrs(span)["voice.price_table.version"] == f"{SHIPPED['version']}+custom"


def test_price_override_is_undone_by_a_new_configure(otel: Captured) -> None:
    _use_prices(otel, {"acme/*": {"input_per_1m_tokens": 2.0}})
    _use_prices(otel, None)

    with voice_otel.stage("llm", provider="acme", model="m") as s:
        s.record_usage(input_tokens=10)

    assert "voice.cost.usd" not in _attrs(otel.span("chat m"))


def test_load_table_keeps_shipped_prices() -> None:
    table = load_table(None)

    assert table.version == SHIPPED["version"]
    assert table.lookup("openai", "gpt-4o-mini") == SHIPPED["prices"]["openai/gpt-4o-mini"]


# -- cost per turn and conversation ----------------------------------------------------------


def test_cost_adds_up_per_turn_and_per_conversation(otel: Captured) -> None:
    @voice_otel.llm(provider="openai", model="gpt-4o")
    def answer() -> str:
        voice_otel.record_usage(input_tokens=1_000_000)
        return "ok"

    @voice_otel.tts(provider="openai", model="tts-1")
    def speak() -> bytes:
        voice_otel.record_usage(characters=1_000_000)
        return b""

    llm_cost = SHIPPED["prices"]["openai/gpt-4o"]["input_per_1m_tokens"]
    tts_cost = SHIPPED["prices"]["openai/tts-1"]["per_1m_characters"]
    with voice_otel.conversation() as conv:
        speak()  # a greeting before the first turn
        with voice_otel.turn() as t1:
            answer()
            speak()
        with voice_otel.turn() as t2:
            answer()

    assert t1.record is not None and t2.record is not None
    assert t1.record.cost == pytest.approx(llm_cost + tts_cost)
    assert t2.record.cost == pytest.approx(llm_cost)
    assert conv.cost == pytest.approx(2 * llm_cost + 2 * tts_cost)
    turn_costs = [_attrs(s)["voice.cost.usd"] for s in otel.spans("voice.turn")]
    assert turn_costs == pytest.approx([llm_cost + tts_cost, llm_cost])
    conv_span = otel.span("voice.conversation")
    assert _attrs(conv_span)["voice.cost.usd"] == pytest.approx(2 * llm_cost + 2 * tts_cost)
    assert sum(p.value for p in otel.points("voice.cost")) == pytest.approx(conv.cost)
