"""The FastAPI integration over real HTTP: a uvicorn server on a loopback port per test."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry

import voice_otel
from voice_otel import _runtime
from voice_otel._contract import Metrics
from voice_otel.health import HealthMonitor, Thresholds
from voice_otel.integrations.fastapi import instrument_app, is_instrumented, uninstrument_app

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port; yields its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def eventually(predicate: Any, what: str, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.02)


def agent_app() -> FastAPI:
    app = FastAPI(title="agent")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    return app


@pytest.fixture
def monitor() -> Iterator[HealthMonitor]:
    m = HealthMonitor(interval=0.05, timeout=1.0)
    yield m
    m.stop()


@pytest.fixture
def prometheus(otel: Any) -> Iterator[CollectorRegistry]:
    """voice_otel's meters also feed a Prometheus reader with a registry of its own."""
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    _runtime.use_providers(otel.tracer_provider, provider)
    yield registry
    provider.shutdown()


def test_health_is_minimal_and_follows_critical_components(monitor: HealthMonitor) -> None:
    state = {"ok": True}
    monitor.add_check("db", lambda: state["ok"], thresholds=Thresholds(failures_before_unhealthy=1))
    app = agent_app()
    instrument_app(app, monitor=monitor, token=TOKEN)

    with serve(app) as url:
        monitor.refresh()
        response = httpx.get(f"{url}/health")
        assert (response.status_code, response.json()) == (200, {"status": "healthy"})
        assert response.headers["cache-control"] == "no-store"

        state["ok"] = False
        monitor.refresh()
        response = httpx.get(f"{url}/health")
        assert (response.status_code, response.json()) == (503, {"status": "unhealthy"})


def test_detailed_health_requires_the_token(monitor: HealthMonitor) -> None:
    monitor.add_check("db", lambda: None)
    app = agent_app()
    instrument_app(app, monitor=monitor, token=TOKEN)

    with serve(app) as url:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": f"Bearer {TOKEN}x"},
        ):
            response = httpx.get(f"{url}/health/detailed", headers=headers)
            assert response.status_code == 401, headers
            assert response.json()["error"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
            assert httpx.get(f"{url}/alerts", headers=headers).status_code == 401

        monitor.refresh()
        response = httpx.get(f"{url}/health/detailed", headers=AUTH)
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "healthy"
        (db,) = [c for c in body["components"] if c["name"] == "db"]
        assert db["state"] == "healthy" and db["trend"]["success_rate"] == 1.0
        assert {c["name"] for c in body["components"]} == {"db"}


def test_detailed_health_shows_reasons_without_secrets(monitor: HealthMonitor) -> None:
    def db() -> None:
        raise OSError("connect to postgresql://agent:hunter2-pw@10.0.0.5/agent failed")

    monitor.add_check("db", db, thresholds=Thresholds(failures_before_unhealthy=1))
    app = agent_app()
    instrument_app(app, monitor=monitor)  # no token: open

    with serve(app) as url:
        monitor.refresh()
        response = httpx.get(f"{url}/health/detailed")
        assert response.status_code == 503
        assert "hunter2-pw" not in response.text and "Traceback" not in response.text
        (component,) = response.json()["components"]
        assert component["state"] == "unhealthy"
        assert component["last_error"].startswith("OSError: connect to postgresql://***@10.0.0.5")


def test_metrics_serves_the_prometheus_registry(
    monitor: HealthMonitor, prometheus: CollectorRegistry
) -> None:
    monitor.add_check("db", lambda: None, kind="postgres")
    app = agent_app()
    instrument_app(app, monitor=monitor, registry=prometheus)

    with serve(app) as url:
        monitor.refresh()
        httpx.get(f"{url}/items/7")
        response = httpx.get(f"{url}/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = response.text
        status = Metrics.HEALTH_STATUS.prometheus_name
        assert any(
            line.startswith(f"{status}{{")
            and 'voice_component="db"' in line
            and 'voice_component_kind="postgres"' in line
            and line.endswith(" 2.0")
            for line in text.splitlines()
        ), text
        for metric in (Metrics.HEALTH_CHECK_DURATION, Metrics.HEALTH_LAST_SUCCESS_AGE):
            assert f"\n{metric.prometheus_name}{{" in text
        # Stable HTTP conventions: seconds, by route template.
        assert any(
            line.startswith("http_server_request_duration_seconds_count{")
            and 'http_route="/items/{item_id}"' in line
            for line in text.splitlines()
        ), text

        openmetrics = httpx.get(
            f"{url}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.rstrip().endswith("# EOF")


def test_traces_use_route_templates_and_skip_health_and_metrics(
    otel: Any, monitor: HealthMonitor
) -> None:
    app = agent_app()
    instrument_app(app, monitor=monitor, token=TOKEN)

    with serve(app) as url:
        for path in ("/items/42", "/items/43", "/health", "/health/detailed", "/metrics", "/nope"):
            httpx.get(f"{url}{path}", headers=AUTH)
        httpx.get(f"{url}/health?probe=1")

    names = {s.name for s in otel.spans() if s.parent is None}
    assert "GET /items/{item_id}" in names
    assert not any("42" in n or "health" in n or "metrics" in n or "nope" in n for n in names)
    routes = {
        p.attributes.get("http.route")
        for p in otel.metrics()["http.server.request.duration"].data.data_points
    }
    assert "/items/{item_id}" in routes
    assert not {r for r in routes if r and ("42" in r or "health" in r or "metrics" in r)}


def test_instrumenting_twice_warns_and_uninstrument_restores_the_app(
    otel: Any, monitor: HealthMonitor, caplog: pytest.LogCaptureFixture
) -> None:
    app = agent_app()
    routes_before = len(app.routes)
    assert instrument_app(app, monitor=monitor) is monitor
    routes_after = len(app.routes)

    with caplog.at_level(logging.WARNING, logger="voice_otel"):
        assert instrument_app(app, monitor=HealthMonitor()) is monitor
    assert "already instrumented" in caplog.text
    assert len(app.routes) == routes_after > routes_before

    uninstrument_app(app)
    assert not is_instrumented(app)
    assert len(app.routes) == routes_before
    with serve(app) as url:
        assert httpx.get(f"{url}/health").status_code == 404
        assert httpx.get(f"{url}/items/1").status_code == 200
    assert otel.spans() == []
    assert not monitor.running  # the lifespan hook is gone too

    instrument_app(app, monitor=monitor)
    with serve(app) as url:
        assert httpx.get(f"{url}/health").status_code == 200


def test_the_monitor_runs_with_the_app_and_watches_its_loop(monitor: HealthMonitor) -> None:
    monitor.add_orchestrator()
    app = agent_app()
    instrument_app(app, monitor=monitor)
    with serve(app):
        assert monitor.running
        eventually(lambda: monitor.component("orchestrator").checks >= 2, "orchestrator checked")
        assert monitor.component("orchestrator").state is not None
    assert not monitor.running


def test_a_default_monitor_has_the_orchestrator_check() -> None:
    app = agent_app()
    monitor = instrument_app(app)
    with serve(app) as url:
        eventually(lambda: monitor.component("orchestrator").checks >= 1, "first check")
        assert httpx.get(f"{url}/health").json() == {"status": "healthy"}


def test_health_answers_while_a_check_hangs(monitor: HealthMonitor) -> None:
    release = threading.Event()
    calls = {"fast": 0}

    def hangs() -> None:
        release.wait(600)

    def fast() -> None:
        calls["fast"] += 1

    monitor.add_check("hangs", hangs, timeout=0.2, critical=False)
    monitor.add_check("fast", fast)
    app = agent_app()
    instrument_app(app, monitor=monitor)
    try:
        with serve(app) as url:
            eventually(lambda: monitor.component("hangs").checks >= 2, "the hung check failed")
            seen = calls["fast"]
            for _ in range(5):
                response = httpx.get(f"{url}/health", timeout=10)
                assert response.json() == {"status": "degraded"}
            eventually(lambda: calls["fast"] >= seen + 3, "the fast check kept running")
            assert monitor.component("fast").state is not None
    finally:
        release.set()


def test_dashboards_are_listed_and_served() -> None:
    app = agent_app()
    instrument_app(app)
    with serve(app) as url:
        listed = httpx.get(f"{url}/dashboards").json()["dashboards"]
        assert listed and all(d["uid"] and d["title"] for d in listed)
        first = listed[0]["uid"]
        model = httpx.get(f"{url}/dashboard/{first}").json()
        assert model["uid"] == first and model["panels"]

        unknown = httpx.get(f"{url}/dashboard/no-such-dashboard")
        assert unknown.status_code == 404
        assert unknown.json() == {"error": "not_found", "detail": "no dashboard has this id"}


@pytest.mark.parametrize(
    "raw_id",
    [
        "UPPER",
        "-leading-dash",
        "a" * 65,
        "..",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
        "a.json",
        "x%00",
    ],
)
def test_bad_dashboard_ids_are_client_errors(raw_id: str) -> None:
    app = agent_app()
    instrument_app(app)
    with serve(app) as url:
        response = httpx.get(f"{url}/dashboard/{raw_id}")
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/json"
    assert "Traceback" not in response.text


def test_dashboards_from_a_directory_cannot_escape_it(tmp_path: Path) -> None:
    (tmp_path / "agent-latency.json").write_text(json.dumps({"title": "Latency", "panels": []}))
    (tmp_path / "Not_An_Id.json").write_text("{}")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path.parent / "secret.json").write_text(json.dumps({"title": "outside"}))
    app = agent_app()
    instrument_app(app, dashboards_dir=tmp_path)
    with serve(app) as url:
        listed = httpx.get(f"{url}/dashboards").json()["dashboards"]
        assert listed == [{"uid": "agent-latency", "title": "Latency", "description": ""}]
        assert httpx.get(f"{url}/dashboard/agent-latency").json()["title"] == "Latency"
        assert httpx.get(f"{url}/dashboard/broken").status_code == 404
        assert httpx.get(f"{url}/dashboard/..%2Fsecret").status_code == 404


def test_a_bad_dashboard_file_is_reported_once_per_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    app = agent_app()
    instrument_app(app, dashboards_dir=tmp_path)

    def reports() -> int:
        return sum("skipping dashboard file broken.json" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.WARNING, logger="voice_otel"), serve(app) as url:
        for _ in range(5):
            assert httpx.get(f"{url}/dashboards").json() == {"dashboards": []}
        assert httpx.get(f"{url}/dashboard/broken").status_code == 404
        assert reports() == 1

        broken.write_text("{still not json")  # another version of the file: worth a new line
        for _ in range(3):
            httpx.get(f"{url}/dashboards")
        assert reports() == 2

        broken.write_text(json.dumps({"title": "Fixed"}))
        assert httpx.get(f"{url}/dashboards").json()["dashboards"][0]["title"] == "Fixed"
        assert reports() == 2


def test_every_endpoint_answers_head_like_get(monitor: HealthMonitor, tmp_path: Path) -> None:
    (tmp_path / "agent-latency.json").write_text(json.dumps({"title": "Latency"}))
    app = agent_app()
    instrument_app(app, monitor=monitor, token=TOKEN, dashboards_dir=tmp_path)
    paths = [
        "/health",
        "/health/detailed",
        "/metrics",
        "/alerts",  # 503: no Alertmanager configured
        "/dashboards",
        "/dashboard/agent-latency",
        "/dashboard/unknown",  # 404
        "/dashboard/UPPER",  # 422
    ]

    with serve(app) as url:
        monitor.refresh()
        for path in paths:
            get = httpx.get(f"{url}{path}", headers=AUTH)
            head = httpx.head(f"{url}{path}", headers=AUTH)
            assert head.status_code == get.status_code != 405, path
            assert head.content == b"", path
            for header in ("content-type", "cache-control"):
                assert head.headers.get(header) == get.headers.get(header), (path, header)
            if path not in ("/health/detailed", "/metrics"):  # their bodies change every time
                assert head.headers["content-length"] == get.headers["content-length"], path

        for path in ("/health/detailed", "/alerts"):  # the token applies to HEAD too
            head = httpx.head(f"{url}{path}")
            assert head.status_code == 401, path
            assert head.headers["www-authenticate"] == "Bearer"
        assert httpx.head(f"{url}/health").status_code == 200

        # The app's own routes keep FastAPI's behaviour.
        assert httpx.head(f"{url}/items/1").status_code == 405


def test_head_on_a_path_the_app_serves_itself_is_left_to_the_app(
    monitor: HealthMonitor, caplog: pytest.LogCaptureFixture
) -> None:
    app = agent_app()

    @app.get("/health")
    async def own_health() -> dict[str, str]:
        return {"own": "yes"}

    with caplog.at_level(logging.WARNING, logger="voice_otel"):
        instrument_app(app, monitor=monitor)
    assert "the app already serves /health" in caplog.text
    with serve(app) as url:
        assert httpx.get(f"{url}/health").json() == {"own": "yes"}
        # HEAD must not reach our endpoint while GET reaches the app's: the app decides.
        assert httpx.head(f"{url}/health").status_code == 405
        assert httpx.head(f"{url}/metrics").status_code == 200


def test_a_conversation_in_a_request_is_a_child_of_the_server_span(otel: Any) -> None:
    app = agent_app()

    @app.post("/calls")
    async def call() -> dict[str, bool]:
        async with voice_otel.conversation("call-1"), voice_otel.turn():
            pass
        return {"ok": True}

    instrument_app(app, start_monitor=False)
    with serve(app) as url:
        assert httpx.post(f"{url}/calls").status_code == 200

    spans = {s.name: s for s in otel.spans()}
    server, conversation = spans["POST /calls"], spans["voice.conversation"]
    assert server.parent is None
    assert conversation.parent is not None
    assert conversation.parent.span_id == server.context.span_id
    assert conversation.context.trace_id == server.context.trace_id
    assert spans["voice.turn"].parent.span_id == conversation.context.span_id


def test_a_missing_dashboards_dir_fails_at_instrumentation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        instrument_app(agent_app(), dashboards_dir=tmp_path / "missing")


def test_openapi_schema_documents_the_endpoints_and_the_token(monitor: HealthMonitor) -> None:
    app = agent_app()
    instrument_app(app, monitor=monitor, token=TOKEN)
    with serve(app) as url:
        schema = httpx.get(f"{url}/openapi.json").json()
    paths = schema["paths"]
    for path in ("/health", "/health/detailed", "/metrics", "/alerts", "/dashboards"):
        assert "get" in paths[path], path
    assert paths["/dashboard/{dashboard_id}"]["get"]["parameters"][0]["schema"]["pattern"]
    assert "security" in paths["/health/detailed"]["get"]
    assert "security" not in paths["/health"]["get"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    # HEAD is answered but not listed: one operation (and operation id) per path.
    assert all(set(ops) == {"get"} for path, ops in paths.items() if path != "/items/{item_id}")


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="token"):
        instrument_app(agent_app(), token=" ")


def test_a_blocked_server_loop_fails_the_orchestrator_check(monitor: HealthMonitor) -> None:
    app = agent_app()
    release = threading.Event()

    @app.get("/block")
    async def block() -> dict[str, bool]:
        release.wait(30)  # synchronous code on the event loop, the bug this check exists for
        return {"ok": True}

    instrument_app(app, monitor=monitor)
    monitor.add_orchestrator(timeout=0.3, thresholds=Thresholds(failures_before_unhealthy=1))
    with serve(app) as url:
        eventually(lambda: monitor.component("orchestrator").state is not None, "first check")
        blocked = threading.Thread(target=lambda: httpx.get(f"{url}/block", timeout=60))
        blocked.start()
        try:
            eventually(
                lambda: monitor.component("orchestrator").last_error == "timed out after 0.3s",
                "the blocked loop detected",
            )
        finally:
            release.set()
            blocked.join(60)
        eventually(lambda: httpx.get(f"{url}/health").status_code == 200, "recovered")


def test_old_http_conventions_chosen_before_the_integration_are_reported() -> None:
    # OpenTelemetry reads its HTTP conventions once per process; here something initialises them
    # before the integration is imported, so the metric names are the old ones: say so.
    script = """
import logging, os
os.environ.pop("OTEL_SEMCONV_STABILITY_OPT_IN", None)
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from opentelemetry.instrumentation._semconv import _OpenTelemetrySemanticConventionStability
_OpenTelemetrySemanticConventionStability._initialize()
from fastapi import FastAPI
from voice_otel.integrations.fastapi import instrument_app
instrument_app(FastAPI(), start_monitor=False)
"""
    env = {k: v for k, v in os.environ.items() if k != "OTEL_SEMCONV_STABILITY_OPT_IN"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "HTTP server metrics will use the old names" in done.stderr
    assert "OTEL_SEMCONV_STABILITY_OPT_IN=http" in done.stderr
