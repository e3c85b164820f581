"""Every script in examples/ runs as its docstring says: each is started as a real process.

The OpenAI-compatible pipeline runs against the local stand-in server (a real HTTP server on
loopback, with a required API key); the monitoring example runs once on its own (OTLP-JSON file
and /metrics) and once against the real local stack, where its alert must fire and resolve.
Every run has a time bound; nothing here asserts how long anything took.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from voice_otel.alerts import AlertConfig, render_rule_files
from voice_otel.stack import BinaryNotFound, find, free_port, parse_otlp_json

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
API_KEY = "sk-local-test-5f1c9b7e"

# Every example and the test that runs it; a new example needs a test here.
SMOKE_TESTED = {
    "fastapi_app.py": "test_fastapi_app_starts_and_answers_health",
    "local_openai_server.py": "test_local_server_speaks_the_openai_api",
    "openai_compatible_pipeline.py": "test_openai_compatible_pipeline_against_the_local_server",
    "monitoring_example.py": "test_monitoring_example_shows_the_outage_in_health_and_metrics",
}
# Examples that need a framework installed in the adapters' own environment
# (scripts/adapters-venv) are run by that environment's checks.
TESTED_ELSEWHERE = {
    "pipecat_pipeline.py": "tests/adapters/pipecat_checks.py",
    "livekit_agent.py": "tests/adapters/livekit_checks.py",
}


def test_every_example_has_a_smoke_test() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(SMOKE_TESTED) | set(TESTED_ELSEWHERE)
    for test_name in SMOKE_TESTED.values():
        assert callable(globals().get(test_name)), test_name
    for example, checks in TESTED_ELSEWHERE.items():
        assert example.removesuffix(".py") in (EXAMPLES.parent / checks).read_text(), checks


def example_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.pop("OPENAI_API_KEY", None)
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def run_example(
    name: str, *args: str, cwd: Path, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env or example_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[str]:
    """examples/local_openai_server.py on a free port, requiring API_KEY; yields its base URL."""
    out = tmp_path / "server.out"
    log = tmp_path / "server.log"
    with out.open("w") as stdout, log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "local_openai_server.py"), "--port", "0"],
            cwd=tmp_path,
            env=example_env(LOCAL_OPENAI_SERVER_API_KEY=API_KEY),
            stdout=stdout,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 60
        while "serving" not in out.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the stand-in server did not start: {log.read_text()}")
            time.sleep(0.1)
        yield out.read_text().split(" at ", 1)[1].strip()
    finally:
        stop(process)


def spans_of(path: Path) -> list[Any]:
    spans = []
    for line in path.read_text().splitlines():
        spans.extend(parse_otlp_json(json.loads(line)))
    return spans


def gauge_points(path: Path, metric: str) -> list[tuple[dict[str, Any], float]]:
    """(attributes, value) of every exported point of one gauge in an OTLP-JSON lines file."""
    points = []
    for line in path.read_text().splitlines():
        for rm in json.loads(line).get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    if m["name"] != metric:
                        continue
                    for p in m.get("gauge", {}).get("dataPoints", []):
                        attrs = {a["key"]: next(iter(a["value"].values())) for a in p["attributes"]}
                        value = p.get("asDouble", p.get("asInt"))
                        points.append((attrs, float(value)))
    return points


def test_local_server_speaks_the_openai_api(local_server: str) -> None:
    auth = {"Authorization": f"Bearer {API_KEY}"}
    assert httpx.get(f"{local_server}/models", timeout=10).status_code == 401

    models = httpx.get(f"{local_server}/models", headers=auth, timeout=10).json()
    assert "whisper-1" in {m["id"] for m in models["data"]}

    wav = (EXAMPLES.parent / "voice_otel" / "demo" / "audio" / "03_hours.wav").read_bytes()
    transcript = httpx.post(
        f"{local_server}/audio/transcriptions",
        headers=auth,
        files={"file": ("a.wav", wav, "audio/wav")},
        data={"model": "whisper-1"},
        timeout=60,
    ).json()
    assert transcript["text"].strip()
    assert transcript["usage"]["type"] == "duration"

    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "a pizza please"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream(
        "POST", f"{local_server}/chat/completions", headers=auth, json=body, timeout=30
    ) as response:
        assert response.headers["content-type"] == "text/event-stream"
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert "pizza" in text
    assert chunks[-1]["usage"]["completion_tokens"] > 0

    with httpx.stream(
        "POST",
        f"{local_server}/audio/speech",
        headers=auth,
        json={"model": "tts-1", "input": "Hello there.", "response_format": "pcm"},
        timeout=60,
    ) as response:
        rate = int(response.headers["x-sample-rate"])
        audio = b"".join(response.iter_bytes())
    assert rate > 0
    assert len(audio) > rate // 10  # at least 50 ms of 16-bit audio

    refused = httpx.post(
        f"{local_server}/audio/speech",
        headers=auth,
        json={"model": "tts-1", "input": "Hello.", "response_format": "mp3"},
        timeout=10,
    )
    assert refused.status_code == 400
    assert "error" in refused.json()

    control = local_server.removesuffix("/v1") + "/control/outage"
    httpx.post(control, json={"seconds": 60}, timeout=10).raise_for_status()
    assert httpx.get(f"{local_server}/models", headers=auth, timeout=10).status_code == 503
    httpx.delete(control, timeout=10).raise_for_status()
    assert httpx.get(f"{local_server}/models", headers=auth, timeout=10).status_code == 200


def test_openai_compatible_pipeline_against_the_local_server(
    local_server: str, tmp_path: Path
) -> None:
    telemetry = tmp_path / "telemetry.jsonl"
    result = run_example(
        "openai_compatible_pipeline.py",
        "--base-url",
        local_server,
        "--turns",
        "2",
        "--json-path",
        str(telemetry),
        cwd=tmp_path,
        timeout=300,
        env=example_env(OPENAI_API_KEY=API_KEY),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "2 of 2 turns ok" in result.stdout
    assert result.stdout.count("voice-to-voice") == 2
    assert API_KEY not in output
    assert API_KEY not in telemetry.read_text()

    spans = spans_of(telemetry)
    names = {s.name for s in spans}
    assert {
        "voice.conversation",
        "voice.turn",
        "speech_to_text whisper-1",
        "chat gpt-4o-mini",
        "text_to_speech gpt-4o-mini-tts",
    } <= names
    turns = [s for s in spans if s.name == "voice.turn"]
    assert len(turns) == 2
    for turn in turns:
        parts = [turn.attributes[f"voice.turn.latency.{p}"] for p in ("stt", "llm", "tts", "other")]
        assert turn.attributes["voice.turn.latency"] == pytest.approx(sum(parts), abs=1e-6)
    stt = [s for s in spans if s.name == "speech_to_text whisper-1"]
    assert all(s.attributes["voice.stage.time_to_first_output"] > 0 for s in stt)
    assert all(s.attributes["gen_ai.provider.name"] == "openai_compatible" for s in stt)
    llm = [s for s in spans if s.name == "chat gpt-4o-mini"]
    assert all(s.attributes["gen_ai.usage.output_tokens"] > 0 for s in llm)


def test_openai_compatible_pipeline_reports_a_rejected_key(
    local_server: str, tmp_path: Path
) -> None:
    result = run_example(
        "openai_compatible_pipeline.py",
        "--base-url",
        local_server,
        "--turns",
        "1",
        "--json-path",
        str(tmp_path / "telemetry.jsonl"),
        cwd=tmp_path,
        timeout=120,
        env=example_env(OPENAI_API_KEY="sk-wrong-key"),
    )
    assert result.returncode == 1
    assert "401" in result.stdout
    assert "sk-wrong-key" not in result.stdout + result.stderr
    errors = [s for s in spans_of(tmp_path / "telemetry.jsonl") if s.status_code == "ERROR"]
    assert "speech_to_text whisper-1" in {s.name for s in errors}


def test_monitoring_example_shows_the_outage_in_health_and_metrics(tmp_path: Path) -> None:
    telemetry = tmp_path / "monitoring.jsonl"
    rules = tmp_path / "rules"
    result = run_example(
        "monitoring_example.py",
        "--healthy",
        "2",
        "--outage",
        "2",
        "--recovery",
        "2",
        "--max-wait",
        "90",
        "--json-path",
        str(telemetry),
        "--rules-dir",
        str(rules),
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.split("what was seen", 1)[1]
    llm_line = next(line for line in summary.splitlines() if "llm:local" in line)
    assert "['degraded', 'healthy', 'unhealthy']" in llm_line
    assert "[0.0, 1.0, 2.0]" in llm_line
    # The last line before the summary: the provider is back.
    last = result.stdout.split("what was seen", 1)[0].strip().splitlines()[-1]
    assert "llm:local=healthy" in last
    assert "gauge=2" in last

    assert {p.name for p in rules.iterdir()} == set(render_rule_files(AlertConfig()))
    values = [
        v
        for attrs, v in gauge_points(telemetry, "voice.health.status")
        if attrs["voice.component"] == "llm:local"
    ]
    assert 0.0 in values
    assert values[-1] == 2.0
    failed = [s for s in spans_of(telemetry) if s.status_code == "ERROR" and s.name != "voice.turn"]
    assert failed, "the outage left no failed stage span"


def stack_program(key: str) -> Path:
    try:
        return find(key)
    except BinaryNotFound as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"required program missing under CI: {exc}")
        pytest.skip(str(exc))


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_monitoring_example_fires_and_resolves_the_alert_on_the_stack(tmp_path: Path) -> None:
    for key in ("collector", "jaeger", "prometheus", "alertmanager"):
        stack_program(key)
    result = run_example(
        "monitoring_example.py",
        "--stack",
        "--healthy",
        "2",
        "--outage",
        "2",
        "--recovery",
        "2",
        "--max-wait",
        "150",
        "--rules-dir",
        str(tmp_path / "rules"),
        cwd=tmp_path,
        timeout=540,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.split("what was seen", 1)[1]
    alert = next(line for line in summary.splitlines() if "alert VoiceComponentUnhealthy" in line)
    assert "firing" in alert
    assert "resolved" in alert
    routed = next(line for line in summary.splitlines() if "received by Alertmanager" in line)
    assert "VoiceComponentUnhealthy" in routed


def test_fastapi_app_starts_and_answers_health(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "app.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "fastapi_app.py")],
            cwd=tmp_path,
            env=example_env(HOST="127.0.0.1", PORT=str(port)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the FastAPI example did not start: {log_path.read_text()}")
            time.sleep(0.2)
        assert health.status_code == 200
        assert health.json()["status"] in ("healthy", "degraded")
    finally:
        stop(process)
    assert process.returncode is not None
