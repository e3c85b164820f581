"""The overlays in collector/overlays/ merge with the shipped configs into valid configs.

Each collector overlay is merged with collector/otelcol.yaml the way users run it (several
--config flags) and checked by the built collector's own ``validate`` command; a live run then
sends a span through the agent plus the generic OTLP/HTTP overlay to a stand-in backend on
loopback and checks what arrives, API key header included. The Jaeger overlays (``jaeger-*``)
are merged with collector/jaeger.yaml and checked by the built Jaeger, and the Badger one must
keep a trace across a restart. A missing build skips locally and fails under CI=true.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from voice_otel.stack import BinaryNotFound, find, free_port

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR_DIR = ROOT / "collector"
ALL_OVERLAYS = sorted((COLLECTOR_DIR / "overlays").glob("*.yaml"))
OVERLAYS = [p for p in ALL_OVERLAYS if not p.name.startswith("jaeger-")]
JAEGER_OVERLAYS = [p for p in ALL_OVERLAYS if p.name.startswith("jaeger-")]
SECRET = "Bearer vendor-key-0b7d2c"

# What each overlay needs set to be complete (the variables its header marks as required).
REQUIRED = {
    "otlp-http.yaml": {
        "VOICE_OTEL_EXPORT_ENDPOINT": "https://otlp.example.com",
        "VOICE_OTEL_EXPORT_AUTHORIZATION": "Bearer example",
    },
    "honeycomb.yaml": {"HONEYCOMB_API_KEY": "example"},
    "grafana-cloud.yaml": {
        "GRAFANA_CLOUD_OTLP_ENDPOINT": "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp",
        "GRAFANA_CLOUD_OTLP_AUTH": "ZXhhbXBsZTpleGFtcGxl",
    },
    "prometheus-remote-write.yaml": {
        "VOICE_OTEL_REMOTE_WRITE_URL": "http://prometheus.internal:9090/api/v1/write"
    },
    "debug.yaml": {},
    "no-jaeger.yaml": {},
    "jaeger-badger.yaml": {},
}

pytestmark = pytest.mark.integration


def program(key: str) -> Path:
    try:
        return find(key)
    except BinaryNotFound as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"required program missing under CI: {exc}")
        pytest.skip(str(exc))


def validate(
    binary: Path, configs: list[Path], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), "validate", *(f"--config={c}" for c in configs)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def collector(key: str = "collector") -> Path:
    return program(key)


def test_every_overlay_is_listed_with_its_required_variables() -> None:
    assert {p.name for p in ALL_OVERLAYS} == set(REQUIRED)


@pytest.mark.parametrize("overlay", ALL_OVERLAYS, ids=lambda p: p.name)
def test_overlay_says_what_it_is(overlay: Path) -> None:
    header = overlay.read_text().split("\n\n", 1)[0]
    kind = "Jaeger" if overlay.name.startswith("jaeger-") else "collector"
    assert header.startswith(f"# voice-otel {kind} overlay:")
    assert "Loaded by:" in header
    assert "Variables" in header
    for name in REQUIRED[overlay.name]:
        assert name in header


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_merged_with_the_agent_config_validates(overlay: Path) -> None:
    result = validate(
        collector(), [COLLECTOR_DIR / "otelcol.yaml", overlay], REQUIRED[overlay.name]
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "deprecated" not in (result.stderr + result.stdout).lower()


def test_all_overlays_together_validate() -> None:
    env = {k: v for values in REQUIRED.values() for k, v in values.items()}
    result = validate(collector(), [COLLECTOR_DIR / "otelcol.yaml", *OVERLAYS], env)
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.parametrize(
    "overlay", [p for p in OVERLAYS if p.name != "no-jaeger.yaml"], ids=lambda p: p.name
)
def test_overlay_also_fits_the_load_balancing_agent(overlay: Path) -> None:
    env = {"VOICE_OTEL_GATEWAYS": "[gw-1.internal:4317]", **REQUIRED[overlay.name]}
    configs = [COLLECTOR_DIR / "agent-loadbalancing.yaml", overlay]
    result = validate(collector("collector-full"), configs, env)
    assert result.returncode == 0, result.stderr + result.stdout


# Overlays whose endpoint has no default: the collector refuses to start without it.
NEEDS_ENDPOINT = {
    "otlp-http.yaml": "VOICE_OTEL_EXPORT_ENDPOINT",
    "grafana-cloud.yaml": "GRAFANA_CLOUD_OTLP_ENDPOINT",
    "prometheus-remote-write.yaml": "VOICE_OTEL_REMOTE_WRITE_URL",
}


@pytest.mark.parametrize("name", sorted(NEEDS_ENDPOINT))
def test_overlay_without_its_endpoint_is_rejected(name: str) -> None:
    env = {**REQUIRED[name], NEEDS_ENDPOINT[name]: ""}
    result = validate(
        collector(), [COLLECTOR_DIR / "otelcol.yaml", COLLECTOR_DIR / "overlays" / name], env
    )
    assert result.returncode != 0
    assert "endpoint" in result.stderr + result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_keeps_memory_limiter_first_and_adds_no_secret(overlay: Path) -> None:
    config = yaml.safe_load(overlay.read_text())
    for pipeline in config["service"]["pipelines"].values():
        if "processors" in pipeline:
            assert pipeline["processors"][0] == "memory_limiter"
    for exporter in (config.get("exporters") or {}).values():
        for value in ((exporter or {}).get("headers") or {}).values():
            assert "${env:" in str(value), f"{overlay.name}: a header value is written in the file"


class Received:
    """What the stand-in backend was sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    def of(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for p, h, b in self.requests if p == path]


@pytest.fixture
def backend() -> Iterator[tuple[str, Received]]:
    """An OTLP/HTTP endpoint on loopback that accepts everything and remembers it."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            with received.lock:
                received.requests.append(
                    (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_spans_and_span_metrics_reach_an_otlp_backend_with_its_key(
    backend: tuple[str, Received], tmp_path: Path
) -> None:
    binary = collector()
    url, received = backend
    ports = {
        name: str(free_port())
        for name in (
            "VOICE_OTEL_OTLP_GRPC_PORT",
            "VOICE_OTEL_OTLP_HTTP_PORT",
            "VOICE_OTEL_PROMETHEUS_PORT",
            "VOICE_OTEL_TELEMETRY_PORT",
            "VOICE_OTEL_HEALTH_PORT",
            "VOICE_OTEL_ZPAGES_PORT",
            "VOICE_OTEL_PPROF_PORT",
        )
    }
    env = {
        **os.environ,
        **ports,
        "VOICE_OTEL_BIND_HOST": "127.0.0.1",
        "VOICE_OTEL_SPANMETRICS_INTERVAL": "1s",
        "VOICE_OTEL_EXPORT_ENDPOINT": url,
        "VOICE_OTEL_EXPORT_AUTHORIZATION": SECRET,
    }
    configs = [
        COLLECTOR_DIR / "otelcol.yaml",
        *(COLLECTOR_DIR / "overlays" / n for n in ("otlp-http.yaml", "no-jaeger.yaml")),
    ]
    log_path = tmp_path / "collector.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(binary), *(f"--config={c}" for c in configs)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    provider = TracerProvider(resource=Resource.create({"service.name": "overlay-test"}))
    try:
        health = f"http://127.0.0.1:{ports['VOICE_OTEL_HEALTH_PORT']}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(health, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the collector did not start: {log_path.read_text()}")
            time.sleep(0.2)

        endpoint = f"http://127.0.0.1:{ports['VOICE_OTEL_OTLP_GRPC_PORT']}"
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint, insecure=True)))
        with provider.get_tracer("overlay-test").start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attribute("voice.stage", "llm")

        deadline = time.monotonic() + 60
        while not (received.of("/v1/traces") and received.of("/v1/metrics")):
            if time.monotonic() > deadline:
                pytest.fail(f"nothing reached the backend: {log_path.read_text()}")
            time.sleep(0.2)
    finally:
        provider.shutdown()
        process.terminate()
        process.wait(30)

    headers, body = received.of("/v1/traces")[0]
    assert headers["authorization"] == SECRET
    traces = ExportTraceServiceRequest.FromString(body)
    names = {s.name for rs in traces.resource_spans for ss in rs.scope_spans for s in ss.spans}
    assert names == {"chat gpt-4o-mini"}

    metric_names = set()
    for headers, body in received.of("/v1/metrics"):
        assert headers["authorization"] == SECRET
        request = ExportMetricsServiceRequest.FromString(body)
        metric_names |= {
            m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        }
    assert "traces.span.metrics.calls" in metric_names
    assert SECRET.split()[1] not in log_path.read_text()


@pytest.mark.parametrize("overlay", JAEGER_OVERLAYS, ids=lambda p: p.name)
def test_jaeger_overlay_merged_with_the_jaeger_config_validates(overlay: Path) -> None:
    result = validate(program("jaeger"), [COLLECTOR_DIR / "jaeger.yaml", overlay], {})
    assert result.returncode == 0, result.stderr + result.stdout


def start_jaeger(tmp_path: Path, env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
    configs = [COLLECTOR_DIR / "jaeger.yaml", COLLECTOR_DIR / "overlays" / "jaeger-badger.yaml"]
    with (tmp_path / log_name).open("w") as log:
        process = subprocess.Popen(
            [str(program("jaeger")), *(f"--config={c}" for c in configs)],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    query = f"http://127.0.0.1:{env['VOICE_OTEL_JAEGER_QUERY_PORT']}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{query}/api/services", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"Jaeger did not start: {(tmp_path / log_name).read_text()}")
        time.sleep(0.2)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_badger_overlay_keeps_traces_across_a_restart(tmp_path: Path) -> None:
    program("jaeger")
    env = {
        name: str(free_port())
        for name in (
            "VOICE_OTEL_JAEGER_OTLP_GRPC_PORT",
            "VOICE_OTEL_JAEGER_OTLP_HTTP_PORT",
            "VOICE_OTEL_JAEGER_QUERY_PORT",
            "VOICE_OTEL_JAEGER_QUERY_GRPC_PORT",
            "VOICE_OTEL_JAEGER_HEALTH_PORT",
            "VOICE_OTEL_JAEGER_METRICS_PORT",
        )
    }
    env.update(
        VOICE_OTEL_BIND_HOST="127.0.0.1",
        VOICE_OTEL_JAEGER_BADGER_DIR=str(tmp_path / "badger"),
        VOICE_OTEL_JAEGER_RETENTION="24h",
    )
    query = f"http://127.0.0.1:{env['VOICE_OTEL_JAEGER_QUERY_PORT']}"

    jaeger = start_jaeger(tmp_path, env, "jaeger-1.log")
    provider = TracerProvider(resource=Resource.create({"service.name": "badger-test"}))
    try:
        endpoint = f"http://127.0.0.1:{env['VOICE_OTEL_JAEGER_OTLP_GRPC_PORT']}"
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint, insecure=True)))
        with provider.get_tracer("badger-test").start_as_current_span("voice.turn") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
        deadline = time.monotonic() + 60
        while httpx.get(f"{query}/api/traces/{trace_id}", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the span never reached Jaeger"
            time.sleep(0.2)
    finally:
        provider.shutdown()
        stop_process(jaeger)

    assert (tmp_path / "badger" / "keys").is_dir()
    jaeger = start_jaeger(tmp_path, env, "jaeger-2.log")
    try:
        found = httpx.get(f"{query}/api/traces/{trace_id}", timeout=10)
    finally:
        stop_process(jaeger)
    assert found.status_code == 200
    assert [s["operationName"] for s in found.json()["data"][0]["spans"]] == ["voice.turn"]
