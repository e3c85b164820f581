"""examples/fastapi_app.py runs as documented: a real process serving the pipeline and health."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from voice_otel.stack import free_port

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fastapi_app.py"


def test_the_example_app_serves_its_pipeline_and_health(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "VOICE_AGENT_TOKEN": "example-token-123456",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.pop("OTEL_SEMCONV_STABILITY_OPT_IN", None)  # the integration's own choice, not ours
    log = (tmp_path / "example.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the example did not start: {(tmp_path / 'example.log').read_text()}")
            time.sleep(0.1)

        reply = httpx.post(f"{base}/respond", json={"audio_text": "Hello there"}, timeout=30)
        assert reply.status_code == 200
        body = reply.json()
        assert body["transcript"] == "hello there"
        assert body["reply"].startswith("You said: hello there")
        assert body["audio_bytes"] > 0

        for _ in range(5):
            httpx.post(f"{base}/respond", json={"audio_text": "flaky"}, timeout=30)
        detailed = httpx.get(
            f"{base}/health/detailed",
            headers={"Authorization": "Bearer example-token-123456"},
            timeout=10,
        ).json()
        states = {c["name"]: c["state"] for c in detailed["components"]}
        assert states["llm:example-llm"] == "degraded"
        assert states["orchestrator"] == "healthy"

        metrics = httpx.get(f"{base}/metrics", timeout=10).text
        assert 'voice_component="llm:example-llm"' in metrics
        assert "voice_turn_latency_seconds_bucket" in metrics
        assert "process_cpu_utilization" in metrics
        # The stable HTTP names the API dashboard reads, though system metrics started first.
        assert "http_server_request_duration_seconds_count{" in metrics
        assert "http_server_duration_milliseconds" not in metrics
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()
    assert process.returncode == 0, (tmp_path / "example.log").read_text()[-3000:]
