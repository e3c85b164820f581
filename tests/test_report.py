"""The latency report: reading turns from OTLP-JSON lines and Prometheus, percentiles, and the
self-contained HTML page."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import voice_otel
from voice_otel import report
from voice_otel.cli import main
from voice_otel.report import PercentileLine
from voice_otel.report._svg import lines_svg

CONVERSATION_A = "a" * 32
CONVERSATION_B = "b" * 32


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def _turn_span(
    conversation: str,
    index: int,
    start_s: float,
    parts: dict[str, float] | None,
    outcome: str = "ok",
) -> dict[str, Any]:
    attrs = [
        _attr("gen_ai.conversation.id", conversation),
        _attr("voice.turn.index", index),
        _attr("voice.outcome", outcome),
        _attr("voice.turn.latency_objective", 1.0),
    ]
    if parts is not None:
        attrs.append(_attr("voice.turn.latency", sum(parts.values())))
        attrs += [_attr(f"voice.turn.latency.{k}", v) for k, v in parts.items()]
    return {
        "traceId": f"{index:032x}",
        "spanId": f"{index:016x}",
        "name": "voice.turn",
        "kind": "SPAN_KIND_INTERNAL",
        "startTimeUnixNano": str(int(start_s * 1e9)),
        "endTimeUnixNano": str(int((start_s + 2) * 1e9)),
        "attributes": attrs,
    }


def write_fixture(path: Path) -> Path:
    """Five turns with a latency over two conversations, one without, and a metrics line."""
    spans = [
        _turn_span(CONVERSATION_A, 1, 100.0, {"stt": 0.2, "llm": 0.4, "tts": 0.1, "other": 0.1}),
        _turn_span(CONVERSATION_A, 2, 110.0, {"stt": 0.3, "llm": 0.9, "tts": 0.2, "other": 0.1}),
        _turn_span(CONVERSATION_A, 3, 120.0, None, outcome="error"),
        _turn_span(CONVERSATION_B, 1, 105.0, {"stt": 0.1, "llm": 0.3, "tts": 0.1, "other": 0.0}),
        _turn_span(
            CONVERSATION_B,
            2,
            115.0,
            {"stt": 0.2, "llm": 0.5, "tts": 0.2, "other": 0.1},
            outcome="interrupted",
        ),
        _turn_span(CONVERSATION_B, 3, 125.0, {"stt": 0.2, "llm": 0.6, "tts": 0.1, "other": 0.1}),
    ]
    stage = {"name": "chat echo", "spanId": "f" * 16, "attributes": [_attr("voice.stage", "llm")]}
    lines = [
        {"resourceSpans": [{"scopeSpans": [{"spans": [*spans[:3], stage]}]}]},
        {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "voice.turns"}]}]}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": spans[3:]}]}]},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def fixture_file(tmp_path: Path) -> Path:
    return write_fixture(tmp_path / "run.jsonl")


def test_turns_are_read_per_conversation_in_start_order(fixture_file: Path) -> None:
    turns = report.turn_timings(fixture_file)

    assert [(t.group[:1], t.label) for t in turns] == [
        ("a", "1"),
        ("a", "2"),
        ("b", "1"),
        ("b", "2"),
        ("b", "3"),
    ]
    assert turns[0].latency == pytest.approx(0.8)
    assert turns[0].components == {"stt": 0.2, "llm": 0.4, "tts": 0.1, "other": 0.1}
    assert turns[3].outcome == "interrupted"


def test_turns_without_latency_are_left_out(fixture_file: Path) -> None:
    assert all(t.outcome != "error" for t in report.turn_timings(fixture_file))


def test_report_data_has_percentiles_objective_and_share_within_it(fixture_file: Path) -> None:
    data = report.load_json_lines(fixture_file)

    latencies = sorted([0.8, 1.5, 0.5, 1.0, 1.0])
    assert data.percentiles["voice-to-voice"][0.5] == pytest.approx(latencies[2])
    assert set(data.percentiles) == {"voice-to-voice", "stt", "llm", "tts", "other"}
    assert data.objective == 1.0
    assert data.within_objective == pytest.approx(4 / 5)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0], 0.99, 1.0),
        ([1.0, 2.0], 0.5, 1.5),
        ([3.0, 1.0, 2.0, 4.0], 0.0, 1.0),
        ([3.0, 1.0, 2.0, 4.0], 1.0, 4.0),
        ([float(i) for i in range(101)], 0.95, 95.0),
    ],
)
def test_percentile_interpolates_between_ranks(
    values: list[float], q: float, expected: float
) -> None:
    assert report.percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        report.percentile([], 0.5)


def test_a_file_without_turns_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "metrics-only.jsonl"
    empty.write_text(json.dumps({"resourceMetrics": []}) + "\n")

    with pytest.raises(report.ReportSourceError, match=r"no voice\.turn span"):
        report.load_json_lines(empty)


def test_a_corrupt_line_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")

    with pytest.raises(report.ReportSourceError, match=r"bad\.jsonl:1"):
        report.load_json_lines(bad)


def test_page_draws_one_stacked_bar_per_turn_and_percentile_bars(fixture_file: Path) -> None:
    html = report.render_html(report.load_json_lines(fixture_file))

    waterfall = re.search(r'<svg class="chart waterfall".*?</svg>', html, re.S)
    assert waterfall is not None
    for component in ("stt", "llm", "tts"):
        assert waterfall.group(0).count(f'class="bar bar-{component}"') == 5
    # turn b1 has no "other" time, so it has no "other" segment
    assert waterfall.group(0).count('class="bar bar-other"') == 4
    assert waterfall.group(0).count('class="objective"') == 1
    assert waterfall.group(0).count('class="conversation-break"') == 1
    percentiles = re.search(r'<svg class="chart percentiles".*?</svg>', html, re.S)
    assert percentiles is not None
    assert percentiles.group(0).count('class="bar bar-p95"') == 5


def test_page_is_self_contained(fixture_file: Path) -> None:
    html = report.render_html(report.load_json_lines(fixture_file))

    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html


def test_page_escapes_text_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    span = _turn_span("<script>alert(1)</script>", 1, 1.0, {"stt": 0.1, "llm": 0.1})
    span["attributes"][1] = _attr("voice.turn.index", "<b>1</b>")
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}) + "\n")

    html = report.render_html(report.load_json_lines(path, title="<i>run</i>"))

    assert "<script>" not in html and "<b>1</b>" not in html and "<i>run</i>" not in html


def test_cli_writes_the_html_page(fixture_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"

    args = ["report", "--from-json", str(fixture_file), "--out", str(out)]
    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_cli_says_which_file_it_could_not_write(fixture_file: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")

    result = CliRunner().invoke(
        main, ["report", "--from-json", str(fixture_file), "--out", str(blocked / "r.html")]
    )

    assert result.exit_code == 1, result.output
    assert f"Error: {blocked}" in result.output  # the path component that is not a directory
    assert "Traceback" not in result.output


def test_cli_wants_exactly_one_source(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "r.html")])

    assert result.exit_code == 2
    assert "exactly one" in result.output


def test_report_reads_what_the_sdk_really_writes(tmp_path: Path) -> None:
    path = tmp_path / "sdk.jsonl"
    voice_otel.configure(
        service_name="report-test", json_path=path, prometheus_port=False, enabled=True
    )

    @voice_otel.stt(provider="local", model="m")
    def transcribe(audio: bytes) -> str:
        time.sleep(0.01)
        return "hi"

    @voice_otel.llm(provider="local", model="m")
    async def reply(text: str):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.01)
        yield "ok"

    @voice_otel.tts(provider="local", model="m")
    async def speak(text: str):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.01)
        yield b"\x00" * 10

    async def run() -> None:
        async with voice_otel.conversation():
            for _ in range(3):
                async with voice_otel.turn() as turn:
                    turn.user_stopped_speaking()
                    words = [w async for w in reply(transcribe(b""))]
                    async for _chunk in speak("".join(words)):
                        turn.bot_started_speaking()

    asyncio.run(run())
    voice_otel.shutdown()

    data = report.load_json_lines(path)

    assert [t.label for t in data.turns] == ["1", "2", "3"]
    for turn in data.turns:
        assert set(turn.components) == {"stt", "llm", "tts", "other"}
        assert sum(turn.components.values()) == pytest.approx(turn.latency, rel=1e-6)


def _prometheus_stub(request: httpx.Request) -> httpx.Response:
    query = request.url.params["query"]
    if request.url.path == "/api/v1/query_range":
        if "voice_latency_component" in query:
            result = [
                {
                    "metric": {"voice_latency_component": c},
                    "values": [[1000, str(v)], [1060, str(v * 2)]],
                }
                for c, v in (("stt", 0.1), ("llm", 0.3), ("tts", 0.05), ("other", 0.05))
            ]
        elif "histogram_quantile" in query:
            result = [{"metric": {}, "values": [[1000, "0.6"], [1060, "1.1"]]}]
        else:
            result = [{"metric": {}, "values": [[1000, "0.5"], [1060, "1.0"]]}]
        return httpx.Response(200, json={"status": "success", "data": {"result": result}})
    if 'le=~"1|1.0"' in query:
        result = [{"metric": {}, "value": [1060, "0.8"]}]
        return httpx.Response(200, json={"status": "success", "data": {"result": result}})
    by_component = "voice_latency_component" in query
    result = (
        [{"metric": {"voice_latency_component": "llm"}, "value": [1060, "0.4"]}]
        if by_component
        else [{"metric": {}, "value": [1060, "0.9"]}]
    )
    return httpx.Response(200, json={"status": "success", "data": {"result": result}})


def test_prometheus_source_gives_one_bar_per_step_and_percentile_lines() -> None:
    client = httpx.Client(
        base_url="http://prometheus.invalid", transport=httpx.MockTransport(_prometheus_stub)
    )

    data = report.load_prometheus(
        "http://prometheus.invalid", start=940, end=1060, step=60, client=client, objective=1.0
    )

    assert [t.latency for t in data.turns] == [0.5, 1.0]
    assert data.turns[1].components["llm"] == pytest.approx(0.6)
    assert data.per_turn is False
    assert [line.name for line in data.lines] == ["p50", "p95", "p99"]
    assert data.percentiles["voice-to-voice"][0.95] == pytest.approx(0.9)
    assert data.percentiles["llm"][0.5] == pytest.approx(0.4)
    assert data.within_objective == pytest.approx(0.8)  # from the bucket, not from the bars
    assert [t.label for t in data.turns] == ["00:16", "00:17"]
    assert '<svg class="chart percentile-lines"' in report.render_html(data)


def test_prometheus_source_with_no_data_is_a_clear_error() -> None:
    def empty(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "success", "data": {"result": []}})

    client = httpx.Client(base_url="http://p.invalid", transport=httpx.MockTransport(empty))

    with pytest.raises(report.ReportSourceError, match="no voice_turn_latency_seconds data"):
        report.load_prometheus("http://p.invalid", start=0, end=60, client=client)


def test_prometheus_source_explains_a_counter_that_never_increased() -> None:
    # A run shorter than one scrape: the series appears at its final count, increase() is empty.
    def appeared_at_final_count(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        result = (
            [{"metric": {}, "value": [60, "12"]}]
            if query.startswith("sum(max_over_time(voice_turn_latency_seconds_count[")
            else []
        )
        return httpx.Response(200, json={"status": "success", "data": {"result": result}})

    client = httpx.Client(
        base_url="http://p.invalid", transport=httpx.MockTransport(appeared_at_final_count)
    )

    with pytest.raises(report.ReportSourceError, match="never increases") as caught:
        report.load_prometheus("http://p.invalid", start=0, end=60, client=client)
    assert "--from-json" in str(caught.value)


def test_lines_of_a_single_step_draw_points_and_one_time_label() -> None:
    lines = [PercentileLine("p50", ((1000.0, 0.5),)), PercentileLine("p95", ((1000.0, 0.9),))]

    svg = lines_svg(lines)

    assert svg.count("<circle") == 2
    assert svg.count("00:16:40") == 1


def test_prometheus_query_error_is_reported() -> None:
    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"status": "error", "error": "parse error"})

    client = httpx.Client(base_url="http://p.invalid", transport=httpx.MockTransport(failing))

    with pytest.raises(report.ReportSourceError, match="parse error"):
        report.load_prometheus("http://p.invalid", start=0, end=60, client=client)
