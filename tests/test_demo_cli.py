"""``voice-otel demo`` as a user runs it: a subprocess on the embedded default, no collector."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from voice_otel._contract import Metrics, SpanName
from voice_otel.cli import main

TURNS = 5


def _clean_env() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "220", "PYTHONUNBUFFERED": "1"}
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "VOICE_OTEL_DEMO_LLM_URL", "OTEL_SDK_DISABLED"):
        env.pop(name, None)
    return env


def _no_env() -> dict[str, str | None]:
    """CliRunner env that hides the settings of the shell running the tests."""
    names = ("OTEL_EXPORTER_OTLP_ENDPOINT", "VOICE_OTEL_JSON_PATH", "VOICE_OTEL_PROMETHEUS_PORT")
    return dict.fromkeys(names)


def _scratch_outputs(tmp_path: Path) -> list[str]:
    """Options that keep a demo run off the default port and out of the working directory."""
    return ["--prometheus-port", "0", "--json-path", str(tmp_path / "t.jsonl")]


def _json_lines(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(spans, metrics) of an OTLP-JSON lines file."""
    spans: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        for rs in doc.get("resourceSpans", ()):
            for ss in rs["scopeSpans"]:
                spans += ss["spans"]
        for rm in doc.get("resourceMetrics", ()):
            for sm in rm["scopeMetrics"]:
                metrics += sm["metrics"]
    return spans, metrics


def _sample(text: str, name: str) -> float:
    """Sum of the samples of ``name`` (any labels) in Prometheus text."""
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name} ", f"{name}{{"))
    ]
    assert values, f"no {name} in /metrics"
    return sum(values)


def test_demo_runs_serves_metrics_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    json_path = tmp_path / "telemetry.jsonl"
    command = [
        sys.executable, "-m", "voice_otel.cli", "demo",
        "--turns", str(TURNS),
        "--json-path", str(json_path),
        "--prometheus-port", "0",
        "--service-name", "demo-under-test",
        "--keep-serving", "120",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_clean_env()
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("serving http://"):
                break
        url = lines[-1].split()[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics"), lines
        scraped = httpx.get(url, timeout=10).text
        proc.send_signal(signal.SIGINT)  # ends --keep-serving early, like Ctrl-C
        rest, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    output = "".join(lines) + rest

    # The per-turn table and where the telemetry went.
    for header in ("transcript (pocketsphinx)", "LLM first token s", "voice-to-voice s"):
        assert header in output
    assert "ProviderUnavailable" in output and "barge-in" in output
    assert f"OTLP-JSON lines in {json_path}" in output
    assert f"Prometheus text at {url}" in output

    # /metrics, scraped while the demo kept serving.
    assert _sample(scraped, f"{Metrics.TURN_LATENCY.prometheus_name}_count") == TURNS
    assert _sample(scraped, Metrics.TURNS.prometheus_name) == TURNS
    assert _sample(scraped, Metrics.INTERRUPTIONS.prometheus_name) == 1
    assert 'service_name="demo-under-test"' in scraped

    # The JSON lines file holds the spans and the metrics.
    spans, metrics = _json_lines(json_path)
    names = [s["name"] for s in spans]
    assert names.count(SpanName.CONVERSATION) == 1
    assert names.count(SpanName.TURN) == TURNS
    assert {m["name"] for m in metrics} >= {
        Metrics.TURN_LATENCY.name,
        Metrics.STAGE_DURATION.name,
        Metrics.TURNS.name,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--llm-url", "ftp://127.0.0.1/v1", "--llm-model", "m"], "http:// or https://"),
        (["--llm-url", "http://127.0.0.1:9/v1"], "needs --llm-model"),
        (["--llm-model", "gpt-4o-mini"], "needs --llm-url"),
    ],
)
def test_demo_rejects_bad_llm_settings_before_running(args: list[str], message: str) -> None:
    env = {"VOICE_OTEL_DEMO_LLM_MODEL": None, "VOICE_OTEL_DEMO_LLM_URL": None}
    result = CliRunner().invoke(main, ["demo", *args], env=env)
    assert result.exit_code == 1
    assert message in result.output


def test_demo_says_which_option_to_change_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["demo", "--turns", "1", "--prometheus-port", str(port),
                "--json-path", str(tmp_path / "t.jsonl")]  # fmt: skip
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert str(port) in result.output
    assert "--prometheus-port 0" in result.output and "--no-prometheus" in result.output
    assert "prometheus_port" not in result.output  # the Python spelling has no place here
    assert "Traceback" not in result.output


@pytest.fixture
def no_conversation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo CLI without its engines: what it prints around an empty conversation."""
    from voice_otel.demo import _cli

    monkeypatch.setattr(_cli, "build_pipeline", lambda *args: None)
    monkeypatch.setattr(_cli, "run_demo", lambda *args: [])


@pytest.mark.usefixtures("no_conversation")
def test_demo_says_which_option_to_change_when_its_file_cannot_be_written() -> None:
    args = ["demo", "--json-path", "/proc/x.jsonl", "--prometheus-port", "0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "--json-path '/proc/x.jsonl' cannot be written" in result.output
    assert "--no-json" in result.output
    assert "json_path" not in result.output
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("no_conversation")
def test_demo_no_json_and_no_prometheus_switch_the_embedded_default_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--no-json", "--no-prometheus"], env=_no_env())
    assert result.exit_code == 0, result.output
    assert "OTLP-JSON" not in result.output and "Prometheus text" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [["--no-json", "--json-path", "t.jsonl"], ["--no-prometheus", "--prometheus-port", "0"]],
)
@pytest.mark.usefixtures("no_conversation")
def test_demo_refuses_an_output_switched_off_and_on(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["demo", *args])
    assert result.exit_code == 2
    assert "exclude each other" in result.output


@pytest.mark.usefixtures("no_conversation")
def test_demo_says_where_the_json_file_is_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # scripts/demo runs in the checkout, not where it was started
    args = ["demo", "--json-path", "t.jsonl", "--prometheus-port", "0"]
    result = CliRunner().invoke(main, args, env=_no_env())
    assert result.exit_code == 0, result.output
    assert f"OTLP-JSON lines in {tmp_path / 't.jsonl'}" in result.output.replace("\n", "")


@pytest.mark.parametrize(
    "value",
    ["agent\nsecond line", "agent\tx", "agent\x1b[31m", "a" * 256, "", "   "],
    ids=["newline", "tab", "escape", "too-long", "empty", "blank"],
)
@pytest.mark.usefixtures("no_conversation")
def test_demo_rejects_a_service_name_no_backend_would_show_right(
    tmp_path: Path, value: str
) -> None:
    args = ["demo", "--service-name", value, *_scratch_outputs(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--service-name'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
@pytest.mark.usefixtures("no_conversation")
def test_demo_keep_serving_takes_a_finite_number_of_seconds(tmp_path: Path, value: str) -> None:
    args = ["demo", "--keep-serving", value, *_scratch_outputs(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--keep-serving'" in result.output


def test_demo_fails_when_every_turn_fails(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
    args = ["demo", "--turns", "1", "--llm-url", url, "--llm-model", "m",
            "--prometheus-port", "0", "--json-path", str(tmp_path / "t.jsonl")]  # fmt: skip
    result = CliRunner().invoke(main, args, env={"VOICE_OTEL_DEMO_LLM_URL": None})
    assert result.exit_code == 1, result.output
    assert "every turn failed" in result.output
    assert "Traceback" not in result.output
    assert (tmp_path / "t.jsonl").stat().st_size > 0  # the failures' telemetry is written


class _NotOpenAI(BaseHTTPRequestHandler):
    """Answers every request 200 with a body that is not an OpenAI event stream."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"garbage")

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_demo_fails_when_the_llm_endpoint_does_not_speak_openai_streaming(
    tmp_path: Path,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    args = ["demo", "--turns", "1", "-q", "--llm-url", url, "--llm-model", "m",
            "--prometheus-port", "0", "--json-path", str(tmp_path / "t.jsonl")]  # fmt: skip
    try:
        result = CliRunner().invoke(main, args, env={"VOICE_OTEL_DEMO_LLM_URL": None})
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert result.exit_code == 1, result.output
    assert "every turn failed (ProviderError: " in result.output
    assert "not a stream of server-sent events" in result.output
    assert "Traceback" not in result.output


def test_demo_stopped_by_ctrl_c_says_where_the_telemetry_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voice_otel.demo import _cli

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(_cli, "run_demo", interrupted)
    json_path = tmp_path / "t.jsonl"
    args = ["demo", "--prometheus-port", "0", "--json-path", str(json_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 130, result.output
    output = result.output.replace("\n", "")
    assert "stopped (Ctrl-C)" in output
    assert f"written to {json_path}" in output
    # /metrics ends with the process: it is not where the telemetry can be found afterwards.
    assert "/metrics was served only while the demo ran" in output
    assert "Prometheus text at" not in output
    assert "Aborted" not in output


def test_demo_help_lists_its_options() -> None:
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 0
    for flag in ("--turns", "--json-path", "--prometheus-port", "--otlp-endpoint",
                 "--service-name", "--keep-serving", "--quiet", "--llm-url", "--no-json",
                 "--no-prometheus"):  # fmt: skip
        assert flag in result.output


class _OtlpReceiver(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP protobuf exports and keeps their paths and bodies on the server."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OtlpReceiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_demo_with_otlp_endpoint_ships_there_instead_of_the_embedded_default(
    tmp_path: Path, otlp_receiver: tuple[str, list[tuple[str, bytes]]]
) -> None:
    endpoint, received = otlp_receiver
    command = [sys.executable, "-m", "voice_otel.cli", "demo", "--turns", "1",
               "--otlp-endpoint", endpoint]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, env=_clean_env(), cwd=tmp_path, timeout=240
    )
    assert done.returncode == 0, done.stderr
    assert f"OTLP http/protobuf to {endpoint}" in done.stdout
    assert "Prometheus text" not in done.stdout and "OTLP-JSON" not in done.stdout
    assert list(tmp_path.iterdir()) == []  # no default JSON file

    span_names: list[str] = []
    metric_names: set[str] = set()
    for path, body in received:
        if path == "/v1/traces":
            for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
                span_names += [s.name for ss in rs.scope_spans for s in ss.spans]
        elif path == "/v1/metrics":
            for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics:
                metric_names |= {m.name for sm in rm.scope_metrics for m in sm.metrics}
    assert span_names.count(SpanName.CONVERSATION) == 1
    assert span_names.count(SpanName.TURN) == 1
    assert Metrics.TURN_LATENCY.name in metric_names
