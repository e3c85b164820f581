"""The latency report: reading turns from OTLP-JSON lines and Prometheus, percentiles, and the
self-contained HTML page."""

from __future__ import annotations

import asyncio
import gzip
import json
import math
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
from voice_otel.report._prometheus import _selector
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
    assert result.output == (
        f"Error: cannot write {blocked / 'r.html'}: {blocked} is a file, not a directory\n"
    )


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


BOUNDS = (0.25, 0.5, 1.0, 2.0)
SPLIT = {"stt": 0.25, "llm": 0.5, "tts": 0.25}  # each turn's latency, by component


def _scrapes(times: list[float], new: dict[float, list[float]]) -> list[tuple[float, list[float]]]:
    """What each scrape saw: every latency observed up to it (``new`` holds them by time)."""
    seen: list[float] = []
    out = []
    for t in times:
        seen = seen + new.get(t, [])
        out.append((t, seen))
    return out


def _histogram(
    name: str, scrapes: list[tuple[float, list[float]]], **labels: str
) -> list[dict[str, Any]]:
    """The ``_count``, ``_sum`` and ``_bucket`` series of a cumulative histogram, as stored."""

    def series(suffix: str, value: Any, **extra: str) -> dict[str, Any]:
        metric = {"__name__": f"{name}_{suffix}", "job": "agent", **labels, **extra}
        return {"metric": metric, "values": [[t, str(value(seen))] for t, seen in scrapes]}

    out = [series("count", len), series("sum", sum)]
    for bound in (*BOUNDS, math.inf):
        le = "+Inf" if bound == math.inf else f"{bound:g}"
        out.append(series("bucket", lambda seen, b=bound: sum(v <= b for v in seen), le=le))
    return out


def _voice_histograms(scrapes: list[tuple[float, list[float]]]) -> list[dict[str, Any]]:
    out = _histogram("voice_turn_latency_seconds", scrapes)
    for component, share in SPLIT.items():
        parts = [(t, [v * share for v in seen]) for t, seen in scrapes]
        out += _histogram(
            "voice_turn_latency_component_seconds", parts, voice_latency_component=component
        )
    return out


def _prometheus_serving(series: list[dict[str, Any]]) -> httpx.Client:
    """A Prometheus stand-in that answers a range selector at a time with the raw samples."""

    def answer(request: httpx.Request) -> httpx.Response:
        query = request.url.params.get("query", "")
        window = re.fullmatch(r"\{.*\}\[(\d+)s\]", query)
        if request.url.path != "/api/v1/query" or window is None:
            error = f"the stand-in answers raw samples only, not {request.url.path} {query}"
            return httpx.Response(400, json={"status": "error", "error": error})
        at = float(request.url.params["time"])
        since = at - int(window.group(1))
        result = [
            {"metric": s["metric"], "values": [[t, v] for t, v in s["values"] if since < t <= at]}
            for s in series
        ]
        body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
        return httpx.Response(200, json=body)

    return httpx.Client(base_url="http://p.invalid", transport=httpx.MockTransport(answer))


def test_prometheus_source_gives_one_bar_per_step_and_percentile_lines() -> None:
    times = [float(t) for t in range(900, 1061, 15)]
    new = {945.0: [0.4, 0.6], 1005.0: [0.8, 1.2, 1.0]}
    client = _prometheus_serving(_voice_histograms(_scrapes(times, new)))

    data = report.load_prometheus(
        "http://p.invalid", start=940, end=1060, step=60, client=client, objective=1.0
    )

    assert [t.label for t in data.turns] == ["00:16", "00:17"]  # steps ending 1000 and 1060
    assert [t.latency for t in data.turns] == pytest.approx([0.5, 1.0])
    assert data.turns[1].components == pytest.approx({"llm": 0.5, "stt": 0.25, "tts": 0.25})
    assert data.per_turn is False
    assert [line.name for line in data.lines] == ["p50", "p95", "p99"]
    assert [t for t, _ in data.lines[0].points] == [1000.0, 1060.0]
    # 5 turns: 1 in (0.25, 0.5], 3 in (0.5, 1], 1 in (1, 2]; PromQL's interpolation inside them
    assert data.percentiles["voice-to-voice"][0.5] == pytest.approx(0.5 + 0.5 * (1.5 / 3))
    assert data.percentiles["voice-to-voice"][0.95] == pytest.approx(1.0 + 1.0 * 0.75)
    assert set(data.percentiles) == {"voice-to-voice", "stt", "llm", "tts"}
    assert data.within_objective == pytest.approx(4 / 5)  # from the bucket, not from the bars
    assert '<svg class="chart percentile-lines"' in report.render_html(data)


@pytest.mark.parametrize("step", [5, 7, 10, 15, 20, 60, 3600])
def test_prometheus_source_loses_no_increase_whatever_the_step(step: float) -> None:
    # Scraped every 5 s: 6, 6, 12, 12. The 6 new turns land between two samples, which one
    # increase(x[10s]) per 10 s step never sees in a single window.
    times = [1000.0, 1005.0, 1010.0, 1015.0]
    scrapes = _scrapes(times, {1000.0: [0.3] * 6, 1010.0: [0.9] * 6})
    client = _prometheus_serving(_voice_histograms(scrapes))

    data = report.load_prometheus(
        "http://p.invalid", start=995, end=1015, step=step, client=client, objective=0.5
    )

    assert [t.latency for t in data.turns] == pytest.approx([0.9])  # the first 6 are a baseline
    assert data.within_objective == 0.0


def test_prometheus_source_counts_the_increase_into_the_range_from_just_before_it() -> None:
    scrapes = _scrapes([980.0, 1005.0], {980.0: [0.3], 1005.0: [0.7, 0.7]})
    client = _prometheus_serving(_voice_histograms(scrapes))

    data = report.load_prometheus("http://p.invalid", start=1000, end=1010, step=10, client=client)

    assert [t.latency for t in data.turns] == pytest.approx([0.7])


def test_prometheus_source_takes_a_drop_for_a_counter_reset() -> None:
    # 8 turns, then the agent restarts: the next scrape counts 1 turn from zero.
    times = [1000.0, 1005.0, 1010.0]
    before = _scrapes(times[:2], {1000.0: [0.3] * 6, 1005.0: [0.5, 0.5]})
    after = [(1010.0, [2.0])]
    client = _prometheus_serving(_voice_histograms(before + after))

    data = report.load_prometheus("http://p.invalid", start=995, end=1010, step=5, client=client)

    assert [t.latency for t in data.turns] == pytest.approx([0.5, 2.0])


def test_histogram_quantile_matches_promql() -> None:
    from voice_otel.report._prometheus import histogram_quantile

    buckets = {0.5: 2.0, 1.0: 6.0, math.inf: 8.0}

    assert histogram_quantile(0.5, buckets) == pytest.approx(0.5 + 0.5 * (2 / 4))
    assert histogram_quantile(0.1, buckets) == pytest.approx(0.5 * (0.8 / 2))
    assert histogram_quantile(0.99, buckets) == 1.0  # in +Inf: the highest finite bound
    non_monotonic = {0.5: 1.0, 1.0: 0.0, 2.0: 4.0, math.inf: 4.0}  # read as 1, 1, 4, 4
    assert histogram_quantile(0.5, non_monotonic) == pytest.approx(1.0 + 1.0 * (1 / 3))
    assert histogram_quantile(0.5, {0.5: 0.0, math.inf: 0.0}) is None
    assert histogram_quantile(0.5, {0.5: 1.0, 1.0: 1.0}) is None  # no +Inf bucket


def test_prometheus_source_with_no_data_is_a_clear_error() -> None:
    client = _prometheus_serving([])

    with pytest.raises(report.ReportSourceError, match="no voice_turn_latency_seconds data"):
        report.load_prometheus("http://p.invalid", start=0, end=60, client=client)


@pytest.mark.parametrize(
    "scrapes",
    [
        [(55.0, [0.5] * 12)],  # a run shorter than one scrape: it appears at its final count
        [(10.0, [0.5] * 12), (25.0, [0.5] * 12)],  # counted before the range, flat in it
    ],
)
def test_prometheus_source_explains_a_counter_that_never_rises(
    scrapes: list[tuple[float, list[float]]],
) -> None:
    client = _prometheus_serving(_voice_histograms(scrapes))

    with pytest.raises(report.ReportSourceError, match="never rises") as caught:
        report.load_prometheus("http://p.invalid", start=5, end=60, step=10, client=client)
    assert "--from-json" in str(caught.value) and "--since" in str(caught.value)
    assert "--step" not in str(caught.value)  # the step loses nothing any more


@pytest.mark.parametrize(
    ("arguments", "wrong"),
    [
        ({"objective": math.nan}, "objective"),
        ({"objective": math.inf}, "objective"),
        ({"objective": 0.0}, "objective"),
        ({"step": math.nan}, "step"),
        ({"start": math.nan}, "start"),
    ],
)
def test_prometheus_source_refuses_a_bad_number_before_asking(
    arguments: dict[str, float], wrong: str
) -> None:
    client = _prometheus_serving([])
    kwargs: dict[str, Any] = {"start": 0.0, "end": 60.0, "step": 10.0, **arguments}

    with pytest.raises(report.ReportSourceError, match=wrong):
        report.load_prometheus("http://p.invalid", client=client, **kwargs)


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


def _spans_line(*spans: dict[str, Any]) -> str:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}) + "\n"


def _turn_with(latency_value: dict[str, Any]) -> dict[str, Any]:
    span = _turn_span(CONVERSATION_A, 2, 110.0, None)
    span["attributes"].append({"key": "voice.turn.latency", "value": latency_value})
    return span


GOOD_LINE = _spans_line(_turn_span(CONVERSATION_A, 1, 100.0, {"stt": 0.2, "llm": 0.4}))


@pytest.mark.parametrize(
    ("second_line", "says"),
    [
        (b"[1, 2]\n", "not an OTLP/JSON export request (an array, not an object)"),
        (b"null\n", "not an OTLP/JSON export request (null, not an object)"),
        (b'{"resourceSpans": "x"}\n', "resourceSpans is a string, not an array of objects"),
        (b'{"resourceSpans": [1]}\n', "resourceSpans is an array holding non-objects"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": {}}]}]}\n',
            "spans is an object, not an array of objects",
        ),
        (
            _spans_line(_turn_with({"doubleValue": "abc"})).encode(),
            "span attribute voice.turn.latency is 'abc', not a number",
        ),
        (
            _spans_line(_turn_with({"stringValue": "fast"})).encode(),
            "span attribute voice.turn.latency is 'fast', not a latency in seconds",
        ),
        (
            _spans_line(_turn_with({"doubleValue": "NaN"})).encode(),
            "span attribute voice.turn.latency is nan, not a latency in seconds",
        ),
        (b"\xff\xfe{}\n", "not UTF-8 text"),
        (b"{not json\n", "not a JSON line"),
    ],
)
def test_a_malformed_line_is_named_by_file_and_line(
    tmp_path: Path, second_line: bytes, says: str
) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(GOOD_LINE.encode() + second_line)

    with pytest.raises(report.ReportSourceError) as caught:
        report.load_json_lines(path)

    assert str(caught.value).startswith(f"{path}:2: {says}")


def test_a_gzip_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl.gz"
    path.write_bytes(gzip.compress(GOOD_LINE.encode()))

    with pytest.raises(report.ReportSourceError, match=r"run\.jsonl\.gz:1: .*gzip-compressed"):
        report.load_json_lines(path)


@pytest.mark.parametrize(
    "content",
    [gzip.compress(b"{}\n"), b"[1,2]\n", b"null\n", b'{"resourceSpans":"x"}\n', b"\x00\xff\n"],
)
def test_cli_says_what_is_wrong_with_a_malformed_file_in_one_line(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(content)

    result = CliRunner().invoke(
        main, ["report", "--from-json", str(path), "--out", str(tmp_path / "r.html")]
    )

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}:1: ")
    assert result.output.count("\n") == 1, result.output
    assert not (tmp_path / "r.html").exists()


def test_an_objective_in_the_file_that_is_not_a_positive_number_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    span = _turn_span(CONVERSATION_A, 1, 100.0, {"stt": 0.2})
    span["attributes"][3] = _attr("voice.turn.latency_objective", math.nan)
    path = tmp_path / "run.jsonl"
    path.write_text(_spans_line(span))

    assert report.load_json_lines(path).objective is None
    assert "ignoring voice.turn.latency_objective" in caplog.text


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--objective", "nan", "nan is not a finite number of seconds"),
        ("--objective", "inf", "inf is not a finite number of seconds"),
        ("--objective", "0", "0.0 is not in the range x>0"),
        ("--objective", "-1", "-1.0 is not in the range x>0"),
        ("--step", "nan", "nan is not a finite number of seconds"),
        ("--since", "inf", "inf is not a finite number of seconds"),
    ],
)
def test_cli_refuses_a_number_that_is_not_finite_and_positive(
    fixture_file: Path, tmp_path: Path, option: str, value: str, says: str
) -> None:
    out = tmp_path / "r.html"

    result = CliRunner().invoke(
        main, ["report", "--from-json", str(fixture_file), "--out", str(out), f"{option}={value}"]
    )

    assert result.exit_code == 2
    assert f"Invalid value for '{option}': {says}" in result.output
    assert not out.exists()


def test_cli_refuses_a_png_name_that_is_not_png_before_doing_anything(
    fixture_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.html"

    result = CliRunner().invoke(
        main,
        ["report", "--from-json", str(fixture_file), "--out", str(out), "--png", "x.html"],
    )

    assert result.exit_code == 2
    assert "Invalid value for '--png': x.html: a PNG file name must end in .png" in result.output
    assert not out.exists()


def test_cli_says_the_html_was_written_when_the_png_fails(
    fixture_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "chromium"
    broken.write_text(
        "#!/bin/sh\necho '[1:2:0101/000000.1:ERROR:dbus/bus.cc:405] Failed to connect' >&2\n"
        "echo '[1:1:0101/000000.2:ERROR:gpu.cc:9] out of paint' >&2\nexit 3\n"
    )
    broken.chmod(0o755)
    monkeypatch.setenv("VOICE_OTEL_CHROMIUM", str(broken))
    out = tmp_path / "r.html"

    result = CliRunner().invoke(
        main,
        ["report", "--from-json", str(fixture_file), "--out", str(out), "--png", "r.png"],
    )

    assert result.exit_code == 1
    assert result.output == (
        "Error: Chromium wrote no screenshot (exit 3): out of paint; "
        f"the HTML page was written to {out}\n"
    )
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_cli_says_which_png_path_it_could_not_write(
    fixture_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICE_OTEL_CHROMIUM", "/bin/true")
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    out, png = tmp_path / "r.html", blocked / "r.png"

    result = CliRunner().invoke(
        main,
        ["report", "--from-json", str(fixture_file), "--out", str(out), "--png", str(png)],
    )

    assert result.exit_code == 1
    assert result.output == (
        f"Error: cannot write {png}: {blocked} is a file, not a directory; "
        f"the HTML page was written to {out}\n"
    )


def test_cli_prints_both_written_paths_as_given(
    fixture_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_screenshot(html: Path, png: str | Path, **kwargs: Any) -> Path:
        Path(png).write_bytes(b"\x89PNG")
        return Path(png).resolve()

    monkeypatch.setattr("voice_otel.report._write.screenshot", fake_screenshot)
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(
        main,
        ["report", "--from-json", str(fixture_file), "--out", "out/r.html", "--png", "out/r.png"],
    )

    assert result.exit_code == 0, result.output
    assert result.output == "wrote out/r.html and out/r.png\n"


def test_job_regex_is_quoted_as_a_promql_string() -> None:
    assert _selector('agent"x\\.y').endswith('job=~"agent\\"x\\\\.y"}')
