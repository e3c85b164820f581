"""/alerts against a real Alertmanager, and schemathesis against the running app's schema."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from test_fastapi import AUTH, TOKEN, agent_app, eventually, serve

from voice_otel.health import HealthMonitor
from voice_otel.integrations.fastapi import instrument_app
from voice_otel.stack import free_port

ALERTMANAGER_CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: blackhole
"""


def need(program: str) -> str:
    """The path of ``program``; a missing one skips locally and fails in CI."""
    path = shutil.which(program)
    if path is None:
        message = f"{program} is not installed (scripts/install-system-deps)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager on a loopback port, without a cluster port."""
    binary = shutil.which("prometheus-alertmanager") or need("alertmanager")
    home = tmp_path_factory.mktemp("alertmanager")
    config = home / "alertmanager.yml"
    config.write_text(ALERTMANAGER_CONFIG)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stderr = (home / "stderr.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log = (home / "stderr.log").read_text()
                pytest.fail(f"Alertmanager did not start: {log[-2000:]}")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(15)
        stderr.close()


def post_alert(alertmanager: str, name: str, severity: str) -> None:
    now = datetime.now(UTC)
    alert = {
        "labels": {"alertname": name, "severity": severity, "component": "redis"},
        "annotations": {"summary": f"{name} is firing"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }
    httpx.post(f"{alertmanager}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()


def silence(alertmanager: str, name: str) -> None:
    now = datetime.now(UTC)
    body = {
        "matchers": [{"name": "alertname", "value": name, "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "tests",
        "comment": "acknowledged in a test",
    }
    httpx.post(f"{alertmanager}/api/v2/silences", json=body, timeout=5).raise_for_status()


def test_alerts_without_alertmanager_is_a_clear_503() -> None:
    app = agent_app()
    instrument_app(app, token=TOKEN)
    with serve(app) as url:
        response = httpx.get(f"{url}/alerts", headers=AUTH)
    assert response.status_code == 503
    assert response.json()["error"] == "alertmanager_not_configured"


def test_unreachable_alertmanager_is_a_503_without_its_address() -> None:
    port = free_port()
    app = agent_app()
    instrument_app(app, alertmanager_url=f"http://admin:am-secret@127.0.0.1:{port}")
    with serve(app) as url:
        response = httpx.get(f"{url}/alerts")
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "alertmanager_unavailable"
    assert "am-secret" not in response.text and str(port) not in response.text


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"<!DOCTYPE html><html><body>Grafana</body></html>", "text/html", "not JSON"),
        (b"[1]", "application/json", "not a list of alerts"),
    ],
)
def test_a_url_that_is_not_alertmanager_is_a_502_that_says_so(
    body: bytes, content_type: str, reason: str
) -> None:
    class NotAlertmanager(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotAlertmanager)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        app = agent_app()
        instrument_app(app, alertmanager_url=f"http://admin:am-secret@127.0.0.1:{port}")
        with serve(app) as url:
            response = httpx.get(f"{url}/alerts")
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 502
    detail = response.json()
    assert detail["error"] == "alertmanager_error"
    assert "does not answer as Alertmanager" in response.text and reason in response.text
    assert "am-secret" not in response.text and str(port) not in response.text


@pytest.mark.integration
def test_alerts_posted_to_alertmanager_show_up_with_a_summary(alertmanager: str) -> None:
    post_alert(alertmanager, "VoiceTestFiring", "critical")
    post_alert(alertmanager, "VoiceTestAcked", "warning")
    silence(alertmanager, "VoiceTestAcked")
    app = agent_app()
    instrument_app(app, alertmanager_url=alertmanager, token=TOKEN)

    with serve(app) as url:
        found: dict[str, Any] = {}

        def both_settled() -> bool:
            body = httpx.get(f"{url}/alerts", headers=AUTH).json()
            found.update(body)
            states = {a["labels"]["alertname"]: a["state"] for a in body.get("alerts", [])}
            return states == {"VoiceTestFiring": "active", "VoiceTestAcked": "acknowledged"}

        eventually(both_settled, "both alerts listed with their lifecycle state")

    summary = found["summary"]
    assert summary["total"] == 2
    assert summary["by_state"]["active"] == 1 and summary["by_state"]["acknowledged"] == 1
    assert summary["by_severity"] == {"critical": 1, "warning": 1}
    firing = next(a for a in found["alerts"] if a["labels"]["alertname"] == "VoiceTestFiring")
    assert firing["annotations"]["summary"] == "VoiceTestFiring is firing"


@pytest.fixture
def api_schema(alertmanager: str) -> Iterator[Any]:
    """The OpenAPI schema of a running app with every endpoint wired to real components."""
    monitor = HealthMonitor(interval=0.2)
    monitor.add_check("db", lambda: None)
    monitor.add_orchestrator()
    app = agent_app()
    instrument_app(app, monitor=monitor, alertmanager_url=alertmanager, token=TOKEN)
    with serve(app) as url:
        monitor.refresh()
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")


@pytest.mark.integration
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_never_get_a_server_error(api_schema: Any, mode: GenerationMode) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/health", "/alerts", "/dashboard/{dashboard_id}"}
    if mode is GenerationMode.NEGATIVE:
        # Only operations with parameters can receive invalid input.
        operations = [op for op in operations if len(op.path_parameters) or len(op.query)]
        assert {op.path for op in operations} >= {"/dashboard/{dashboard_id}"}
    answered: set[int] = set()

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def no_server_error(case: Any) -> None:
            response = case.call(headers={**(case.headers or {}), **AUTH}, timeout=10)
            answered.add(response.status_code)
            label = (case.method, case.formatted_path, response.status_code)
            assert response.status_code < 500, (*label, response.text[:300])
            assert "Traceback" not in response.text, label
            if response.status_code >= 400:
                content_type = response.headers.get("content-type", [""])[0]
                assert content_type.startswith("application/json"), label

        no_server_error()

    expected = {200} if mode is GenerationMode.POSITIVE else {422}
    assert expected <= answered, answered
