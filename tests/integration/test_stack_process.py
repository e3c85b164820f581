"""voice_otel.stack's own machinery: process control, program lookup, config rendering, OTLP JSON.

These run real processes (a Python HTTP server stands in for a stack program) and need no
collector build, so they run everywhere.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
import yaml

from voice_otel.stack import (
    BinaryNotFound,
    LocalStack,
    ManagedProcess,
    StackStartError,
    find,
    free_port,
    parse_otlp_json,
    render_prometheus_config,
)
from voice_otel.stack._components import COLLECTOR_EXPORTER_JOB


def http_server(tmp_path: Path, port: int) -> ManagedProcess:
    return ManagedProcess(
        "http",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        log_path=tmp_path / "http.log",
        cwd=tmp_path,
        ready_url=f"http://127.0.0.1:{port}/",
        ready_timeout=30,
    )


def test_process_starts_ready_stops_and_restarts_on_the_same_port(tmp_path: Path) -> None:
    port = free_port()
    proc = http_server(tmp_path, port)
    proc.start()
    try:
        assert proc.running
        first_pid = proc.pid
        proc.restart()
        assert proc.running
        assert proc.pid != first_pid
    finally:
        code = proc.stop()
    assert not proc.running
    assert code is not None
    assert "http.server" in proc.log_text()


def test_process_that_exits_early_reports_its_log(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "broken",
        [sys.executable, "-c", "import sys; print('bad flag --nope'); sys.exit(3)"],
        log_path=tmp_path / "broken.log",
        ready_url=f"http://127.0.0.1:{free_port()}/",
        ready_timeout=30,
    )
    with pytest.raises(StackStartError, match="bad flag --nope"):
        proc.start()
    assert proc.returncode == 3


def test_process_that_never_gets_ready_is_stopped(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(60)"],
        log_path=tmp_path / "sleeper.log",
        ready_url=f"http://127.0.0.1:{free_port()}/",
        ready_timeout=1,
    )
    with pytest.raises(StackStartError, match="not ready"):
        proc.start()
    assert not proc.running


def test_find_prefers_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "otelcol"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("VOICE_OTEL_COLLECTOR_BIN", str(fake))
    assert find("collector") == fake


def test_find_explains_how_to_get_a_missing_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICE_OTEL_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("VOICE_OTEL_JAEGER_BIN", raising=False)
    with pytest.raises(BinaryNotFound, match="scripts/build-stack"):
        find("jaeger")
    monkeypatch.setenv("VOICE_OTEL_JAEGER_BIN", str(tmp_path / "missing"))
    with pytest.raises(BinaryNotFound, match="not an executable"):
        find("jaeger")


def test_rendered_prometheus_config_keeps_the_shipped_jobs_with_new_targets(
    tmp_path: Path,
) -> None:
    config = render_prometheus_config(
        collector=None,
        scrape_interval="1s",
        evaluation_interval="2s",
        rule_files=[tmp_path / "a.yml"],
        alertmanager_url="http://127.0.0.1:19093",
        extra_scrape_configs=[{"job_name": "agent", "static_configs": [{"targets": ["x:1"]}]}],
    )
    assert config["global"] == {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "2s",
    }
    assert config["rule_files"] == [str(tmp_path / "a.yml")]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:19093"
    ]
    assert [job["job_name"] for job in config["scrape_configs"]] == ["agent"]


def test_rendered_prometheus_config_resolves_the_shipped_rule_glob() -> None:
    config = render_prometheus_config(
        collector=None,
        scrape_interval="15s",
        evaluation_interval="15s",
        rule_files=None,
        alertmanager_url=None,
    )
    assert config["global"]["scrape_timeout"] == "10s"
    assert "alerting" not in config
    assert all(Path(pattern).is_absolute() for pattern in config["rule_files"])
    assert any(pattern.endswith("rules/*.yml") for pattern in config["rule_files"])


@pytest.mark.parametrize("value", ["abc", "-5s", "0s", "1.5s", "5", " 5s", "1d", ""])
def test_local_stack_refuses_a_bad_interval_before_starting_anything(
    tmp_path: Path, value: str
) -> None:
    workdir = tmp_path / "run"
    with pytest.raises(ValueError, match="unsupported duration"):
        LocalStack(workdir, scrape_interval=value)
    with pytest.raises(ValueError, match="unsupported duration"):
        LocalStack(workdir, scrape_interval="1s", evaluation_interval=value)
    assert not workdir.exists()


def test_render_refuses_a_prometheus_config_without_the_collector_jobs(tmp_path: Path) -> None:
    source = tmp_path / "prometheus.yml"
    source.write_text(yaml.safe_dump({"rule_files": [], "scrape_configs": [{"job_name": "other"}]}))
    with pytest.raises(ValueError, match=COLLECTOR_EXPORTER_JOB):
        render_prometheus_config(
            collector=None,
            scrape_interval="1s",
            evaluation_interval="1s",
            rule_files=(),
            alertmanager_url=None,
            source=source,
        )


def test_otlp_json_spans_are_flattened() -> None:
    payload = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "agent"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "parentSpanId": "",
                                "name": "voice.turn",
                                "status": {"code": 2},
                                "attributes": [
                                    {"key": "voice.turn.index", "value": {"intValue": "3"}},
                                    {"key": "voice.interrupted", "value": {"boolValue": True}},
                                    {"key": "voice.turn.latency", "value": {"doubleValue": 0.5}},
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    (span,) = parse_otlp_json(payload)
    assert span.service == "agent"
    assert span.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert span.status_code == "ERROR"
    assert span.attributes == {
        "voice.turn.index": 3,
        "voice.interrupted": True,
        "voice.turn.latency": 0.5,
    }


def test_otlp_json_accepts_base64_ids() -> None:
    payload = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {"spans": [{"traceId": "Cvdl+RkW", "spanId": "t61rcWkg", "name": "x"}]}
                ]
            }
        ]
    }
    (span,) = parse_otlp_json(payload)
    assert span.trace_id == "0af765f91916"
    assert span.span_id == "b7ad6b716920"
