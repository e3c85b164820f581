"""configure() and shutdown(): validation, the embedded default, OTLP export, bounded shutdown."""

from __future__ import annotations

import inspect
import logging
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

import voice_otel
from voice_otel import _config, _runtime, _setup
from voice_otel._contract import Metrics
from voice_otel._jsonfile import read_lines

if TYPE_CHECKING:
    from conftest import Captured

pytestmark = pytest.mark.usefixtures("clean_otel_env")

WATCHDOG = 10.0  # generous outer bound for calls that must not hang; never a timing assertion
QUIET = {"handle_sigterm": False, "metric_export_interval": 60}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=WATCHDOG) as response:
        return str(response.read().decode())


def _call_with_watchdog(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``fn`` in a thread; fail if it has not returned before the watchdog."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(fn(*args, **kwargs)), daemon=True)
    thread.start()
    thread.join(WATCHDOG)
    assert not thread.is_alive(), f"{fn.__name__} did not return within {WATCHDOG} s"
    return result[0]


def _wait_for_background_shutdown() -> None:
    """Let a timed-out shutdown's worker finish before the next test starts."""
    for thread in threading.enumerate():
        if thread.name == "voice-otel-shutdown":
            thread.join(60)


@voice_otel.llm(provider="openai", model="gpt-4o-mini")
def answer(prompt: str) -> str:
    voice_otel.record_usage(input_tokens=10, output_tokens=5)
    return prompt.upper()


@voice_otel.tts(provider="cartesia", model="sonic-2")
def speak(text: str) -> Iterator[bytes]:
    for word in text.split():
        yield word.encode()


def _names(lines: list[dict[str, Any]], resources: str, scopes: str, items: str) -> set[str]:
    """Names of the spans or metrics in OTLP-JSON lines."""
    return {
        item["name"]
        for line in lines
        for resource in line.get(resources, [])
        for scope in resource[scopes]
        for item in scope[items]
    }


def _one_turn() -> None:
    with voice_otel.conversation("call-1"), voice_otel.turn():
        list(speak(answer("hello there")))


# -- invalid settings ------------------------------------------------------------------------

BAD_SETTINGS = [
    pytest.param({"otlp_endpoint": "localhost:4317"}, "otlp_endpoint", id="url-without-scheme"),
    pytest.param({"otlp_endpoint": "ftp://collector:4317"}, "otlp_endpoint", id="url-scheme"),
    pytest.param({"otlp_endpoint": "http://"}, "otlp_endpoint", id="url-without-host"),
    pytest.param({"otlp_endpoint": "http://collector:99999"}, "port", id="url-port"),
    pytest.param({"otlp_protocol": "http/json"}, "otlp_protocol", id="protocol"),
    pytest.param({"metric_export_interval": 0}, "metric_export_interval", id="interval-zero"),
    pytest.param({"metric_export_interval": -5}, "metric_export_interval", id="interval-neg"),
    pytest.param({"metric_export_interval": "10"}, "metric_export_interval", id="interval-str"),
    pytest.param({"export_timeout": 0}, "export_timeout", id="timeout-zero"),
    pytest.param({"export_timeout": float("nan")}, "export_timeout", id="timeout-nan"),
    pytest.param({"max_queue_size": 0}, "max_queue_size", id="queue"),
    pytest.param({"prometheus_port": 70000}, "prometheus_port", id="port-range"),
    pytest.param({"prometheus_port": True}, "prometheus_port", id="port-true"),
    pytest.param({"content_max_length": 0}, "content_max_length", id="content-length"),
    pytest.param({"redact": "***"}, "redact", id="redact"),
    pytest.param({"latency_objective": -1.0}, "latency_objective", id="objective"),
    pytest.param({"json_path": 3}, "json_path", id="json-path-type"),
    pytest.param({"json_path": ""}, "json_path", id="json-path-empty"),
    pytest.param({"json_path": "  "}, "json_path", id="json-path-blank"),
    pytest.param({"prices": {"gpt-4o": {}}}, "provider/model", id="prices-key"),
    pytest.param(
        {"prices": {"openai/gpt-4o": {"input_per_1m_tokens": -1}}}, ">= 0", id="prices-negative"
    ),
    pytest.param(
        {"prices": {"openai/gpt-4o": {"per_token": 1.0}}}, "input_per_1m_tokens", id="prices-name"
    ),
    pytest.param({"prices": {"openai/gpt-4o": 2.5}}, "mapping", id="prices-entry"),
    pytest.param({"prices": 42}, "prices", id="prices-type"),
    pytest.param({"prices": "/nonexistent/prices.json"}, "cannot read", id="prices-missing"),
    # A string is not a switch: "false" must not turn content capture on.
    pytest.param(
        {"capture_content": "false"}, "capture_content must be True or False", id="capture-str"
    ),
    pytest.param({"capture_content": 0}, "capture_content must be True or False", id="capture-int"),
    pytest.param({"enabled": "no"}, "enabled must be True or False", id="enabled-str"),
    pytest.param({"strict": "false"}, "strict must be True or False", id="strict-str"),
    pytest.param({"handle_sigterm": 1}, "handle_sigterm must be True or False", id="sigterm-int"),
    pytest.param({"service_name": 123}, "service_name must be a non-empty string", id="name-int"),
    pytest.param({"service_name": " "}, "service_name must be a non-empty string", id="name-blank"),
    pytest.param({"service_name": "agent\nx"}, "control character", id="name-newline"),
    pytest.param({"service_name": "a" * 256}, "at most 255", id="name-too-long"),
    pytest.param({"environment": 1}, "environment must be a non-empty string", id="env-int"),
    pytest.param({"service_version": 2}, "service_version must be", id="version-int"),
]


@pytest.mark.parametrize(("kwargs", "hint"), BAD_SETTINGS)
def test_invalid_setting_raises_configuration_error(
    tmp_path: Path, kwargs: dict[str, Any], hint: str
) -> None:
    settings = {"json_path": tmp_path / "t.jsonl", "prometheus_port": False, **kwargs}

    with pytest.raises(voice_otel.ConfigurationError) as caught:
        voice_otel.configure(**settings)

    assert hint in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert _setup.current() is None
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize(
    ("content", "hint"),
    [("{not json", "cannot read"), ("[1, 2]", "JSON object"), ('{"prices": []}', "mapping")],
    ids=["invalid-json", "list", "prices-list"],
)
def test_bad_prices_file_raises_configuration_error(
    tmp_path: Path, content: str, hint: str
) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)

    with pytest.raises(voice_otel.ConfigurationError) as caught:
        voice_otel.configure(prices=path, prometheus_port=False, json_path=False)

    assert hint in str(caught.value)
    assert str(path) in str(caught.value)


BAD_ENV = [
    ("OTEL_METRIC_EXPORT_INTERVAL", "abc"),
    ("OTEL_METRIC_EXPORT_INTERVAL", "-1000"),
    ("OTEL_SDK_DISABLED", "maybe"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ("VOICE_OTEL_PROMETHEUS_PORT", "metrics"),
    ("VOICE_OTEL_CAPTURE_CONTENT", "perhaps"),
    ("VOICE_OTEL_LATENCY_OBJECTIVE", "fast"),
    ("VOICE_OTEL_LATENCY_OBJECTIVE", "-2"),
    ("OTEL_SERVICE_NAME", "agent\tx"),
]


@pytest.mark.parametrize(("name", "value"), BAD_ENV, ids=[f"{n}={v}" for n, v in BAD_ENV])
def test_invalid_environment_value_raises_configuration_error(
    clean_otel_env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    clean_otel_env.setenv(name, value)

    port = None if name == "VOICE_OTEL_PROMETHEUS_PORT" else False  # None: read the variable

    with pytest.raises(voice_otel.ConfigurationError) as caught:
        voice_otel.configure(prometheus_port=port, json_path=False)

    message = str(caught.value)
    assert name in message  # the message names the variable to fix
    assert repr(value) in message or value in message


def test_port_in_use_raises_and_leaves_nothing_running(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        readers_before = _reader_threads()

        with pytest.raises(voice_otel.ConfigurationError) as caught:
            voice_otel.configure(prometheus_port=port, json_path=tmp_path / "t.jsonl", **QUIET)

    assert str(port) in str(caught.value)
    assert "prometheus_port=0" in str(caught.value)
    assert _setup.current() is None
    assert _reader_threads() == readers_before
    assert not (tmp_path / "t.jsonl").exists()  # no empty file left by the failed setup


def test_a_failed_configure_keeps_an_existing_json_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("")  # the user's file, even empty, is not ours to remove
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        with pytest.raises(voice_otel.ConfigurationError):
            voice_otel.configure(prometheus_port=busy.getsockname()[1], json_path=path, **QUIET)
    assert path.exists()


def _reader_threads() -> int:
    return sum(t.name == "OtelPeriodicExportingMetricReader" for t in threading.enumerate())


def test_unwritable_json_path_raises_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    with pytest.raises(voice_otel.ConfigurationError) as caught:
        voice_otel.configure(json_path=blocker / "t.jsonl", prometheus_port=False, **QUIET)

    assert "json_path" in str(caught.value)


# -- the embedded default ------------------------------------------------------------------------


def test_embedded_default_serves_prometheus_text_with_our_metrics(tmp_path: Path) -> None:
    telemetry = voice_otel.configure(prometheus_port=0, json_path=tmp_path / "t.jsonl", **QUIET)

    _one_turn()
    assert telemetry.prometheus_url is not None
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/metrics", telemetry.prometheus_url)
    text = _fetch(telemetry.prometheus_url)

    for metric in (
        Metrics.STAGE_DURATION,
        Metrics.GENAI_DURATION,
        Metrics.GENAI_TOKENS,
        Metrics.TURN_LATENCY,
        Metrics.TURN_LATENCY_COMPONENT,
        Metrics.TURNS,
        Metrics.CONVERSATION_DURATION,
        Metrics.COST,
    ):
        assert f"\n{metric.prometheus_name}" in text, metric.name
    assert 'voice_stage="llm"' in text
    assert "call-1" not in text  # conversation ids stay off metrics

    assert voice_otel.shutdown(timeout=5) is True
    with pytest.raises(OSError):
        _fetch(telemetry.prometheus_url)


def test_embedded_default_writes_otlp_json_lines_after_shutdown(
    clean_otel_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_otel_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=voice")
    path = tmp_path / "nested" / "telemetry.jsonl"
    telemetry = voice_otel.configure(
        service_name="support-agent", prometheus_port=False, json_path=path, **QUIET
    )
    assert telemetry.json_path == path

    _one_turn()
    assert voice_otel.shutdown(timeout=5) is True

    lines = read_lines(path)
    spans = [
        span
        for line in lines
        for rs in line.get("resourceSpans", [])
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]
    names = {s["name"] for s in spans}
    assert {"voice.conversation", "voice.turn", "chat gpt-4o-mini", "text_to_speech sonic-2"} <= (
        names
    )
    for span in spans:
        assert re.fullmatch(r"[0-9a-f]{32}", span["traceId"])
        assert re.fullmatch(r"[0-9a-f]{16}", span["spanId"])
    assert len({s["traceId"] for s in spans}) == 1
    parents = {s.get("parentSpanId") for s in spans} - {None, ""}
    assert parents <= {s["spanId"] for s in spans}

    metric_lines = [line for line in lines if "resourceMetrics" in line]
    assert metric_lines
    metric_names = {
        m["name"]
        for line in metric_lines
        for rm in line["resourceMetrics"]
        for sm in rm["scopeMetrics"]
        for m in sm["metrics"]
    }
    assert {Metrics.STAGE_DURATION.name, Metrics.TURN_LATENCY.name, Metrics.TURNS.name} <= (
        metric_names
    )
    resource = {
        a["key"]: a["value"].get("stringValue")
        for a in lines[0].get("resourceSpans", lines[0].get("resourceMetrics"))[0]["resource"][
            "attributes"
        ]
    }
    assert resource["service.name"] == "support-agent"
    assert resource["team"] == "voice"


def test_json_path_true_writes_the_default_file(
    clean_otel_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_otel_env.chdir(tmp_path)

    telemetry = voice_otel.configure(json_path=True, prometheus_port=False, **QUIET)

    assert telemetry.json_path is not None
    assert telemetry.json_path.resolve() == (tmp_path / _config.DEFAULT_JSON_PATH).resolve()


def test_describe_lists_each_destination(tmp_path: Path) -> None:
    telemetry = voice_otel.configure(prometheus_port=0, json_path=tmp_path / "t.jsonl", **QUIET)

    lines = telemetry.describe()

    assert telemetry.prometheus_url is not None
    assert len(lines) == 2
    assert telemetry.prometheus_url in lines[0]
    assert str(tmp_path / "t.jsonl") in lines[1]


# -- idempotence ---------------------------------------------------------------------------------


def test_configure_twice_with_same_settings_returns_the_same_setup(tmp_path: Path) -> None:
    kwargs = {"prometheus_port": 0, "json_path": tmp_path / "t.jsonl", **QUIET}

    first = voice_otel.configure(**kwargs)
    second = voice_otel.configure(**kwargs)

    assert second is first
    assert _setup.current() is first
    assert first.prometheus_url is not None
    assert _fetch(first.prometheus_url)  # still serving: the second call did not restart it


def test_configure_with_new_settings_replaces_the_old_setup(tmp_path: Path) -> None:
    first = voice_otel.configure(
        service_name="a", prometheus_port=0, json_path=tmp_path / "a.jsonl", **QUIET
    )
    assert first.prometheus_url is not None
    _fetch(first.prometheus_url)

    second = voice_otel.configure(
        service_name="b", prometheus_port=0, json_path=tmp_path / "b.jsonl", **QUIET
    )
    answer("after")

    assert second is not first
    assert _setup.current() is second
    assert second.settings.service_name == "b"
    assert _runtime.tracer_provider() is second.tracer_provider
    with pytest.raises(OSError):
        _fetch(first.prometheus_url)  # the old endpoint was shut down
    assert second.prometheus_url is not None
    assert Metrics.STAGE_DURATION.prometheus_name in _fetch(second.prometheus_url)


def test_new_settings_warn_when_the_old_setup_holds_the_global_providers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    first = voice_otel.configure(
        service_name="a", prometheus_port=False, json_path=tmp_path / "a.jsonl", **QUIET
    )
    # As in a process where the first configure() became the global provider (set only once).
    monkeypatch.setattr(_setup.trace, "get_tracer_provider", lambda: first.tracer_provider)

    with caplog.at_level(logging.INFO, "voice_otel"):
        voice_otel.configure(
            service_name="b", prometheus_port=False, json_path=tmp_path / "b.jsonl", **QUIET
        )

    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "other instrumentations" in warning and "configure() once" in warning


def test_bad_prices_keep_the_running_setup(tmp_path: Path) -> None:
    first = voice_otel.configure(prometheus_port=0, json_path=tmp_path / "t.jsonl", **QUIET)

    with pytest.raises(voice_otel.ConfigurationError):
        voice_otel.configure(
            prometheus_port=0, json_path=tmp_path / "t.jsonl", prices={"bad": {}}, **QUIET
        )

    assert _setup.current() is first
    assert first.prometheus_url is not None
    assert _fetch(first.prometheus_url)


def test_shutdown_without_configure_and_twice_is_safe() -> None:
    assert voice_otel.shutdown() is True
    voice_otel.configure(prometheus_port=False, json_path=False, **QUIET)
    assert voice_otel.shutdown() is True
    assert voice_otel.shutdown() is True


# -- disabled ------------------------------------------------------------------------------------


async def _every_shape() -> list[Any]:
    @voice_otel.stt
    def plain(x: str) -> str:
        return x

    @voice_otel.llm
    async def coroutine(x: str) -> str:
        return x

    @voice_otel.tts
    def generator(x: str) -> Iterator[str]:
        yield x

    @voice_otel.tts
    async def async_generator(x: str) -> AsyncIterator[str]:
        yield x

    with voice_otel.conversation(), voice_otel.turn():
        with voice_otel.stage("llm") as s:
            s.record_usage(input_tokens=1)
        return [
            plain("a"),
            await coroutine("b"),
            list(generator("c")),
            [x async for x in async_generator("d")],
        ]


@pytest.mark.parametrize("how", ["argument", "environment"])
async def test_disabled_decorators_pass_through_without_telemetry(
    otel: Captured, clean_otel_env: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    if how == "environment":
        clean_otel_env.setenv("OTEL_SDK_DISABLED", "true")
        kwargs: dict[str, Any] = {}
    else:
        kwargs = {"enabled": False}
    port = _free_port()

    telemetry = voice_otel.configure(
        prometheus_port=port, json_path=tmp_path / "t.jsonl", **kwargs, **QUIET
    )
    otel.install()  # record whatever would still be emitted

    assert await _every_shape() == ["a", "b", ["c"], ["d"]]
    assert otel.spans() == []
    assert otel.metrics() == {}
    assert telemetry.prometheus_url is None  # nothing served, nothing written
    assert not (tmp_path / "t.jsonl").exists()
    assert any("disabled" in line for line in telemetry.describe())


def test_a_disabled_turn_still_has_a_record_to_read(otel: Captured) -> None:
    voice_otel.configure(enabled=False, **QUIET)
    with voice_otel.conversation("call-1"), voice_otel.turn() as turn:
        turn.user_stopped_speaking()
        list(speak(answer("hi")))

    assert turn.record is not None  # the README prints turn.record.latency after each turn
    assert (turn.record.outcome, turn.record.latency, turn.record.components) == ("ok", None, {})
    assert otel.spans() == []


# -- OTLP export -------------------------------------------------------------------------------


class _Receiver:
    """A tiny OTLP/HTTP receiver: records each POST and answers 200."""

    def __init__(self) -> None:
        received: list[tuple[str, str, bytes]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, self.headers.get("Content-Type", ""), body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(WATCHDOG)

    def span_names(self) -> set[str]:
        names = set()
        for path, _, body in self.received:
            if path == "/v1/traces":
                request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                for rs in request.resource_spans:
                    for ss in rs.scope_spans:
                        names.update(s.name for s in ss.spans)
        return names


def test_otlp_http_endpoint_receives_spans_and_metrics() -> None:
    with _Receiver() as receiver:
        telemetry = voice_otel.configure(
            otlp_endpoint=receiver.url, otlp_protocol="http/protobuf", **QUIET
        )
        assert telemetry.prometheus_url is None and telemetry.json_path is None

        _one_turn()
        assert voice_otel.shutdown(timeout=WATCHDOG) is True

    paths = {path for path, _, _ in receiver.received}
    assert paths == {"/v1/traces", "/v1/metrics"}
    assert all(ctype == "application/x-protobuf" for _, ctype, _ in receiver.received)
    assert {"voice.turn", "chat gpt-4o-mini"} <= receiver.span_names()


def test_otlp_endpoint_from_environment_is_honoured(clean_otel_env: pytest.MonkeyPatch) -> None:
    with _Receiver() as receiver:
        clean_otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        clean_otel_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        voice_otel.configure(**QUIET)

        answer("x")
        assert voice_otel.shutdown(timeout=WATCHDOG) is True

    assert "chat gpt-4o-mini" in receiver.span_names()


class _GrpcReceiver(
    trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer
):
    def __init__(self) -> None:
        self.spans: list[str] = []
        self.metrics: list[str] = []

    def Export(self, request: Any, context: Any) -> Any:
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    self.spans.extend(s.name for s in ss.spans)
            return trace_service_pb2.ExportTraceServiceResponse()
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                self.metrics.extend(m.name for m in sm.metrics)
        return metrics_service_pb2.ExportMetricsServiceResponse()


def test_otlp_grpc_endpoint_receives_spans_and_metrics() -> None:
    receiver = _GrpcReceiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        telemetry = voice_otel.configure(
            otlp_endpoint=f"http://127.0.0.1:{port}", otlp_protocol="grpc", **QUIET
        )
        assert telemetry.settings.otlp_protocol == "grpc"

        _one_turn()
        assert voice_otel.shutdown(timeout=WATCHDOG) is True
    finally:
        server.stop(None).wait(WATCHDOG)

    assert {"voice.turn", "chat gpt-4o-mini"} <= set(receiver.spans)
    assert Metrics.STAGE_DURATION.name in receiver.metrics


def _resolve(**overrides: Any) -> _config.Settings:
    defaults = {
        name: p.default for name, p in inspect.signature(voice_otel.configure).parameters.items()
    }
    return _config.resolve(**{**defaults, **overrides})


def test_protocol_defaults_to_grpc_on_4317_and_http_elsewhere() -> None:
    assert _resolve(otlp_endpoint="http://collector:4317").otlp_protocol == "grpc"
    assert _resolve(otlp_endpoint="http://collector:4318").otlp_protocol == "http/protobuf"
    assert _resolve(otlp_endpoint="https://otel.example").otlp_protocol == "http/protobuf"


def test_endpoint_turns_off_embedded_destinations_unless_asked() -> None:
    remote = _resolve(otlp_endpoint="http://collector:4318/")
    local = _resolve()

    assert remote.otlp_endpoint == "http://collector:4318"
    assert remote.prometheus_port is None and remote.json_path is None
    assert local.embedded
    assert local.prometheus_port == _config.DEFAULT_PROMETHEUS_PORT
    assert local.json_path == Path(_config.DEFAULT_JSON_PATH)


def test_environment_values_are_read(clean_otel_env: pytest.MonkeyPatch) -> None:
    clean_otel_env.setenv("OTEL_SERVICE_NAME", "from-env")
    clean_otel_env.setenv("OTEL_METRIC_EXPORT_INTERVAL", "2500")
    clean_otel_env.setenv("VOICE_OTEL_PROMETHEUS_PORT", "off")
    clean_otel_env.setenv("VOICE_OTEL_JSON_PATH", "off")
    clean_otel_env.setenv("VOICE_OTEL_LATENCY_OBJECTIVE", "0.8")

    settings = _resolve()

    assert settings.service_name == "from-env"
    assert settings.metric_export_interval == pytest.approx(2.5)
    assert settings.prometheus_port is None
    assert settings.json_path is None
    assert settings.latency_objective == pytest.approx(0.8)


# -- bounded shutdown ----------------------------------------------------------------------------


def test_shutdown_returns_when_collector_accepts_but_never_answers() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes connections; nobody ever reads or answers
        port = silent.getsockname()[1]
        voice_otel.configure(
            otlp_endpoint=f"http://127.0.0.1:{port}",
            otlp_protocol="http/protobuf",
            export_timeout=2,
            **QUIET,
        )
        answer("queued")

        flushed = _call_with_watchdog(voice_otel.shutdown, timeout=1)

        assert flushed is False
        assert _setup.current() is None
        _wait_for_background_shutdown()


def test_shutdown_returns_when_nothing_listens() -> None:
    port = _free_port()
    voice_otel.configure(
        otlp_endpoint=f"http://127.0.0.1:{port}",
        otlp_protocol="http/protobuf",
        export_timeout=2,
        **QUIET,
    )
    answer("queued")

    flushed = _call_with_watchdog(voice_otel.shutdown, timeout=1)

    assert flushed is False  # nothing could be delivered: not reported as flushed
    assert _setup.current() is None
    _wait_for_background_shutdown()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_shutdown_writes_the_file_when_the_collector_is_away(protocol: str, tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    voice_otel.configure(
        otlp_endpoint=f"http://127.0.0.1:{_free_port()}",
        otlp_protocol=protocol,
        export_timeout=5,
        json_path=path,
        prometheus_port=False,
        **QUIET,
    )
    _one_turn()

    flushed = _call_with_watchdog(voice_otel.shutdown, timeout=2)

    assert flushed is False  # the collector got nothing ...
    lines = read_lines(path)  # ... and the file everything
    metric_names = _names(lines, "resourceMetrics", "scopeMetrics", "metrics")
    assert {Metrics.STAGE_DURATION.name, Metrics.TURN_LATENCY.name} <= metric_names
    assert {"voice.conversation", "voice.turn"} <= _names(
        lines, "resourceSpans", "scopeSpans", "spans"
    )
    _wait_for_background_shutdown()


def test_calls_do_not_block_while_collector_hangs() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        voice_otel.configure(
            otlp_endpoint=f"http://127.0.0.1:{port}",
            otlp_protocol="http/protobuf",
            export_timeout=2,
            max_queue_size=16,
            **QUIET,
        )

        results = _call_with_watchdog(lambda: [answer(str(i)) for i in range(200)])

        assert results == [str(i) for i in range(200)]
        _call_with_watchdog(voice_otel.shutdown, timeout=1)
        _wait_for_background_shutdown()
