"""voice_otel's own faults never reach the user's pipeline and are logged once per call site.

Every test here runs with strict mode off (``lenient``), as in production.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import voice_otel
from voice_otel import _content, _guard, _runtime

if TYPE_CHECKING:
    from conftest import Captured

pytestmark = pytest.mark.usefixtures("lenient")

ROUNDS = 25


class Broken(Exception):
    """Raised by the injected faults."""


class UserError(Exception):
    """Raised by the user's own code."""


# -- injected faults -----------------------------------------------------------------------


class RaisingTracerProvider:
    """A tracer provider whose tracers cannot start spans."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        return self

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        raise Broken("start_span")


class RaisingInstrument:
    def record(self, *args: Any, **kwargs: Any) -> None:
        raise Broken("record")

    def add(self, *args: Any, **kwargs: Any) -> None:
        raise Broken("add")


class RaisingMeterProvider:
    """A meter provider whose instruments raise on every measurement."""

    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        return self

    def create_histogram(self, *args: Any, **kwargs: Any) -> RaisingInstrument:
        return RaisingInstrument()

    create_counter = create_up_down_counter = create_histogram


class RejectingSpan:
    """A real span that rejects every attribute value it is given."""

    def __init__(self, span: Any) -> None:
        self._span = span

    def __getattr__(self, name: str) -> Any:
        return getattr(self._span, name)

    def set_attribute(self, key: str, value: Any) -> None:
        raise Broken(f"bad attribute value {value!r} for {key}")

    def set_attributes(self, attributes: Any) -> None:
        raise Broken("bad attribute values")


class RejectingTracerProvider:
    def __init__(self, real: TracerProvider) -> None:
        self._tracer = real.get_tracer("tests")

    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        return self

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        return RejectingSpan(self._tracer.start_span(*args, **kwargs))


class RaisingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Any) -> SpanExportResult:
        self.calls += 1
        raise Broken("export")

    def shutdown(self) -> None:
        return None


# -- the user's pipeline -------------------------------------------------------------------


class Pipeline:
    """Decorated functions of each shape that count their calls."""

    def __init__(self, usage: Callable[[Any], Any] | None = None) -> None:
        self.calls: dict[str, int] = {"ok": 0, "fail": 0, "stream": 0}

        @voice_otel.llm(provider="openai", model="gpt-4o-mini", usage=usage)
        def ok(text: str) -> str:
            self.calls["ok"] += 1
            return text.upper()

        @voice_otel.stt(provider="deepgram", model="nova-3", usage=usage)
        def fail(audio: bytes) -> str:
            self.calls["fail"] += 1
            raise UserError(audio)

        @voice_otel.tts(provider="cartesia", model="sonic-2", usage=usage)
        def stream(text: str) -> Iterator[bytes]:
            self.calls["stream"] += 1
            for word in text.split():
                yield word.encode()

        self.ok, self.fail, self.stream = ok, fail, stream

    def run_round(self) -> None:
        with voice_otel.conversation(), voice_otel.turn():
            assert self.ok("hi") == "HI"
            error = UserError("mine")
            with pytest.raises(UserError):
                self.fail(b"x")
            assert list(self.stream("a b c")) == [b"a", b"b", b"c"]
            with pytest.raises(UserError) as caught, voice_otel.stage("llm") as s:
                s.first_output()
                s.record_usage(input_tokens=1)
                raise error
            assert caught.value is error


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.split(".")[0] == "voice_otel"
    ]


def _run_many(pipeline: Pipeline, caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Run the pipeline ROUNDS times; return voice_otel's errors, checking none repeat."""
    with caplog.at_level(logging.DEBUG):
        pipeline.run_round()
        first = list(_errors(caplog))
        for _ in range(ROUNDS - 1):
            pipeline.run_round()
        errors = _errors(caplog)

    assert pipeline.calls == {"ok": ROUNDS, "fail": ROUNDS, "stream": ROUNDS}
    assert errors == first, "voice_otel logged again for a call site that had already logged"
    messages = [r.getMessage() for r in errors]
    assert len(messages) == len(set(messages)), messages
    assert all(r.exc_info is not None for r in errors)
    return errors


def _logged_sites(errors: list[logging.LogRecord]) -> set[str]:
    return {str(r.args[0]) for r in errors if isinstance(r.args, tuple) and r.args}


def test_tracer_that_cannot_start_spans(otel: Captured, caplog: pytest.LogCaptureFixture) -> None:
    _runtime.use_providers(RaisingTracerProvider(), otel.meter_provider)  # type: ignore[arg-type]

    errors = _run_many(Pipeline(), caplog)

    assert _logged_sites(errors) == {
        "conversation start",
        "turn start",
        "stage start of Pipeline.__init__.<locals>.ok",
        "stage start of Pipeline.__init__.<locals>.fail",
        "stage start of Pipeline.__init__.<locals>.stream",
        "stage start of llm",
    }
    assert otel.spans() == []


def test_instruments_that_raise_on_record(otel: Captured, caplog: pytest.LogCaptureFixture) -> None:
    _runtime.use_providers(otel.tracer_provider, RaisingMeterProvider())  # type: ignore[arg-type]

    errors = _run_many(Pipeline(), caplog)

    assert _logged_sites(errors) == {
        "conversation start",
        "conversation metrics",
        "turn metrics",
        "stage end",
    }
    # Telemetry that does not depend on the meter still arrives: every span ended.
    assert len(otel.spans("voice.conversation")) == ROUNDS
    assert len(otel.spans("voice.turn")) == ROUNDS
    assert len(otel.stage_spans()) == 4 * ROUNDS
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_conversation_and_turn_end_their_spans_when_metrics_fail(
    otel: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    _runtime.use_providers(otel.tracer_provider, RaisingMeterProvider())  # type: ignore[arg-type]

    with caplog.at_level(logging.ERROR), otel.tracer.start_as_current_span("app") as app:
        with voice_otel.conversation("c"), voice_otel.turn() as t:
            t.bot_started_speaking()
        after = trace.get_current_span()

    assert after is app  # the conversation's and turn's contexts were detached
    assert len(otel.spans("voice.turn")) == 1
    assert len(otel.spans("voice.conversation")) == 1
    assert t.record is not None and t.record.latency is not None


def test_span_that_rejects_attribute_values(
    otel: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    _runtime.use_providers(RejectingTracerProvider(otel.tracer_provider), otel.meter_provider)  # type: ignore[arg-type]

    errors = _run_many(Pipeline(), caplog)

    assert _logged_sites(errors) == {"conversation end", "turn end", "stage end"}
    assert len(otel.stage_spans()) == 4 * ROUNDS  # spans still end
    assert len(otel.spans("voice.turn")) == ROUNDS
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_bad_attribute_values_from_the_user_are_dropped(
    otel: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    opaque = object()
    bad = {"app.object": opaque, "app.nested": {"a": 1}}

    @voice_otel.llm(model="m", **bad)
    def answer() -> str:
        return "ok"

    with caplog.at_level(logging.ERROR):
        for _ in range(ROUNDS):
            with voice_otel.conversation(**bad), voice_otel.turn(**bad):
                assert answer() == "ok"
                with voice_otel.stage("tts", **bad) as s:
                    s.set_response_model(object())  # type: ignore[arg-type]

    assert _errors(caplog) == []
    for span in otel.spans():
        # Dropped, blanked or converted: the raw object never reaches an exporter.
        assert all(value is not opaque for value in (span.attributes or {}).values())
    assert len(otel.spans("chat m")) == ROUNDS
    assert otel.point("voice.stage.duration", {"voice.stage": "llm"}).count == ROUNDS


def test_exporter_that_raises(caplog: pytest.LogCaptureFixture) -> None:
    exporter = RaisingExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _runtime.use_providers(provider, None)
    pipeline = Pipeline()

    with caplog.at_level(logging.ERROR):
        for _ in range(ROUNDS):
            pipeline.run_round()

    assert pipeline.calls == {"ok": ROUNDS, "fail": ROUNDS, "stream": ROUNDS}
    assert exporter.calls == 6 * ROUNDS  # conversation, turn and four stages per round
    assert _errors(caplog) == []  # the SDK reports its exporter's failures, not voice_otel
    provider.shutdown()


def test_usage_extractor_that_raises(otel: Captured, caplog: pytest.LogCaptureFixture) -> None:
    def extractor(value: Any) -> dict[str, float]:
        raise Broken("extractor")

    errors = _run_many(Pipeline(usage=extractor), caplog)

    assert len(errors) == 2  # the ok function's and the stream's extractors: one line each
    assert all("usage extractor" in r.getMessage() for r in errors)
    assert len(otel.stage_spans()) == 4 * ROUNDS
    ok_points = otel.points("voice.stage.duration", {"voice.outcome": "ok"})
    assert sum(p.count for p in ok_points) == 2 * ROUNDS


def test_usage_extractor_returning_garbage(
    otel: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    errors = _run_many(Pipeline(usage=lambda value: ["not", "a", "mapping"]), caplog)

    # The user's extractor gave bad data: a warning once per stage, not an internal error.
    assert errors == []
    warnings = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("voice_otel")
    ]
    assert len(warnings) == 2  # the ok function's and the stream's extractors
    assert len(otel.stage_spans()) == 4 * ROUNDS


def test_stage_listener_that_raises(otel: Captured, caplog: pytest.LogCaptureFixture) -> None:
    def listener(outcome: Any) -> None:
        raise Broken("listener")

    voice_otel.add_stage_listener(listener)
    received: list[Any] = []
    voice_otel.add_stage_listener(received.append)

    errors = _run_many(Pipeline(), caplog)

    assert _logged_sites(errors) == {"stage listener"}
    assert len(received) == 4 * ROUNDS  # later listeners still run
    assert len(otel.spans("voice.turn")) == ROUNDS


def test_turn_listener_that_raises(otel: Captured, caplog: pytest.LogCaptureFixture) -> None:
    def listener(record: Any) -> None:
        raise Broken("listener")

    voice_otel.add_turn_listener(listener)

    errors = _run_many(Pipeline(), caplog)

    assert _logged_sites(errors) == {"turn listener"}
    assert len(otel.spans("voice.conversation")) == ROUNDS


def test_redact_hook_that_raises_drops_content_only(
    otel: Captured, options: Any, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    monkeypatch.setattr(_content, "_redact_warned", False)

    def redact(text: str) -> str:
        raise Broken("redact")

    options.capture_content = True
    options.redact = redact
    records: list[Any] = []
    voice_otel.add_turn_listener(records.append)

    errors = _run_many(Pipeline(), caplog)

    assert _logged_sites(errors) == set()  # the user's hook failed, not voice_otel
    warnings = [r.getMessage() for r in caplog.records if "redact hook" in r.getMessage()]
    assert len(warnings) == 1 and "Broken" in warnings[0]
    for span in otel.stage_spans():
        attrs = span.attributes or {}
        assert "voice.content.input" not in attrs
        assert "voice.content.output" not in attrs
    assert otel.point("voice.turn.latency").count == ROUNDS
    # The stages' share of the turn was still recorded.
    assert all(r.tts_time_to_first_byte is not None for r in records)
    assert len(records) == ROUNDS


def test_strict_mode_reraises_internal_faults(otel: Captured) -> None:
    _guard.set_strict(True)
    _runtime.use_providers(RaisingTracerProvider(), otel.meter_provider)  # type: ignore[arg-type]

    @voice_otel.llm
    def answer() -> str:
        return "ok"

    with pytest.raises(Broken):
        answer()
