"""Alerts fire for real: SDK -> collector -> Prometheus (shipped rules) -> Alertmanager -> webhook.

An instrumented agent runs in its own process (this module, run as a script): turns through
decorated STT, LLM and TTS stages, and a health monitor checking its TTS provider. Faults are
switched by files the test creates: ``unhealthy`` fails the provider's health check, ``slow-tts``
delays the TTS's first audio byte. The agent exports through the real collector (when built;
otherwise, outside CI, Prometheus scrapes the SDK's own endpoint). A real Prometheus evaluates
the rules rendered by the generator with the shipped thresholds but short ``for`` values, and
sends to a real Alertmanager running the shipped ``collector/alertmanager.yml`` with the test's
webhook, token file and 1-2 s timers.

Run as a script, this module is the agent:
    python tests/integration/test_alerts_live.py agent --faults DIR (--endpoint URL | --port N)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from _stack_support import ROOT, require
from fastapi import FastAPI

from voice_otel._alertmanager import AlertmanagerClient, lifecycle_state
from voice_otel.alerts import AlertConfig, write_rule_files
from voice_otel.integrations.fastapi import instrument_app, uninstrument_app
from voice_otel.stack import (
    AlertmanagerProcess,
    BinaryNotFound,
    LocalStack,
    ManagedProcess,
    PrometheusProcess,
    find,
    free_port,
)

SERVICE = "voice-otel-alerts-it"
PROVIDER = "test-tts"
MODEL = "test-tts-model"
TOKEN = "live-token-51c2"
# Shipped thresholds; `for` 20x shorter (1m -> 3s, 10m -> 30s), a 20s stage window.
LIVE_RULES = AlertConfig(for_scale=0.05, stage_window_s=20, stage_min_calls=5)
SLOW_TTS_SECONDS = 0.8


# -- the agent (its own process) --------------------------------------------------------------


def _agent_main(argv: list[str]) -> int:
    import voice_otel
    from voice_otel.health import HealthMonitor

    parser = argparse.ArgumentParser()
    parser.add_argument("--faults", type=Path, required=True)
    parser.add_argument("--endpoint", default=None)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    faults: Path = args.faults

    voice_otel.configure(
        service_name=SERVICE,
        otlp_endpoint=args.endpoint,
        otlp_protocol="grpc" if args.endpoint else None,  # the collector's OTLP/gRPC port
        prometheus_port=args.port if args.port else False,
        metric_export_interval=0.5,
        json_path=False,
    )
    monitor = HealthMonitor(interval=0.25, timeout=2.0, pipeline=None)
    monitor.add_check(f"tts:{PROVIDER}", lambda: not (faults / "unhealthy").exists(), kind="tts")
    monitor.start()

    @voice_otel.stt(provider="test-stt", model="test-stt-model")
    def transcribe(audio: bytes) -> str:
        return "what is the weather like"

    @voice_otel.llm(provider="test-llm", model="test-llm-model")
    def reply(text: str) -> Iterator[str]:
        yield "It is "
        yield "sunny."

    @voice_otel.tts(provider=PROVIDER, model=MODEL)
    def speak(text: str) -> Iterator[bytes]:
        if (faults / "slow-tts").exists():
            time.sleep(SLOW_TTS_SECONDS)
        for _ in range(3):
            yield b"\0" * 320

    while not (faults / "stop").exists():
        with voice_otel.conversation(), voice_otel.turn() as turn:
            turn.user_stopped_speaking()
            for _chunk in speak("".join(reply(transcribe(b"\0" * 3200)))):
                pass
        time.sleep(0.2)

    monitor.stop()
    voice_otel.shutdown(timeout=10.0)
    return 0


# -- the webhook receiver and the Alertmanager config -----------------------------------------


class Webhook:
    """A webhook receiver on loopback that keeps every notification it gets."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with webhook._lock:
                    webhook.received.append(
                        {
                            "path": self.path,
                            "authorization": self.headers.get("Authorization"),
                            "body": json.loads(body),
                        }
                    )
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def notifications(self, alertname: str, status: str | None = None) -> list[dict[str, Any]]:
        """This service's notifications of ``alertname``: receiver path, auth, alert."""
        with self._lock:
            received = list(self.received)
        return [
            {"path": r["path"], "auth": r["authorization"], **alert}
            for r in received
            for alert in r["body"]["alerts"]
            if alert["labels"].get("alertname") == alertname
            and alert["labels"].get("job") == SERVICE
            and (status is None or alert["status"] == status)
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _alertmanager_config(webhook_url: str, token_file: Path) -> dict[str, Any]:
    """The shipped config with the test's webhook, token file and 1s/2s timers."""
    config: dict[str, Any] = yaml.safe_load((ROOT / "collector" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"{webhook_url}/{receiver['name']}"
            hook["http_config"]["authorization"]["credentials_file"] = str(token_file)

    def fast(route: dict[str, Any]) -> None:
        timers = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "2s"}
        for key, value in timers.items():
            if key in route or route is config["route"]:
                route[key] = value
        for child in route.get("routes", []):
            fast(child)

    fast(config["route"])
    return config


# -- the running system -----------------------------------------------------------------------


@dataclass
class Live:
    """Everything the tests talk to."""

    prometheus: PrometheusProcess
    alertmanager_url: str
    webhook: Webhook
    faults: Path
    via: str
    processes: list[ManagedProcess]
    agent_log: Path

    def diagnostics(self) -> str:
        """Recent logs and Prometheus' view of the alerts, for failure messages."""
        try:
            alerts = httpx.get(f"{self.prometheus.url}/api/v1/alerts", timeout=5).json()
        except httpx.HTTPError as exc:
            alerts = repr(exc)
        logs = "\n".join(f"--- {p.name} ---\n{p.log_tail(15)}" for p in self.processes)
        agent = self.agent_log.read_text()[-2000:] if self.agent_log.exists() else ""
        return f"via {self.via}\nprometheus alerts: {alerts}\n{logs}\n--- agent ---\n{agent}"

    def eventually(self, check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(0.5)
        pytest.fail(f"timed out waiting for {what}: {last!r}\n{self.diagnostics()}")

    def fault(self, name: str, on: bool) -> None:
        path = self.faults / name
        if on:
            path.touch()
        else:
            path.unlink(missing_ok=True)

    def alertmanager_alerts(self, alertname: str) -> list[dict[str, Any]]:
        alerts = _run(AlertmanagerClient(self.alertmanager_url).alerts())
        return [
            a
            for a in alerts
            if a["labels"].get("alertname") == alertname and a["labels"].get("job") == SERVICE
        ]


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def _collector_built() -> bool:
    try:
        find("collector")
        find("jaeger")
    except BinaryNotFound as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"required program missing under CI: {exc}")
        return False
    return True


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    require("prometheus", "alertmanager")
    workdir = tmp_path_factory.mktemp("alerts-live")
    rules = sorted(write_rule_files(workdir / "rules", LIVE_RULES))
    token_file = workdir / "webhook-token"
    token_file.write_text(TOKEN)
    webhook = Webhook()
    am_config = workdir / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(_alertmanager_config(webhook.url, token_file)))
    faults = workdir / "faults"
    faults.mkdir()

    processes: list[ManagedProcess] = []
    if _collector_built():
        via = "collector"
        stack = LocalStack(
            workdir,
            scrape_interval="1s",
            rule_files=rules,
            alertmanager=True,
            alertmanager_config=am_config,
        )
        assert stack.prometheus is not None and stack.alertmanager is not None
        prometheus, alertmanager_url = stack.prometheus, stack.alertmanager.url
        agent_args = ["--endpoint", stack.otlp_endpoint]
        starters: list[Any] = [stack]
        processes = stack.processes
    else:
        via = "sdk"
        port = free_port()
        alertmanager = AlertmanagerProcess(workdir, config=am_config)
        prometheus = PrometheusProcess(
            workdir,
            collector=None,
            scrape_interval="1s",
            rule_files=rules,
            alertmanager_url=alertmanager.url,
            extra_scrape_configs=[
                {"job_name": SERVICE, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            ],
        )
        alertmanager_url = alertmanager.url
        agent_args = ["--port", str(port)]
        starters = [alertmanager, prometheus]
        processes = [alertmanager, prometheus]

    agent_log = workdir / "agent.log"
    started: list[Any] = []
    agent: subprocess.Popen[bytes] | None = None
    try:
        for starter in starters:
            starter.start()
            started.append(starter)
        with agent_log.open("wb") as log:
            agent = subprocess.Popen(
                [sys.executable, __file__, "agent", "--faults", str(faults), *agent_args],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        live = Live(prometheus, alertmanager_url, webhook, faults, via, processes, agent_log)
        live.eventually(
            lambda: prometheus.query(
                f'voice_health_status{{job="{SERVICE}", voice_component="tts:{PROVIDER}"}} == 2'
            ),
            "the agent's healthy TTS provider in Prometheus",
        )
        yield live
    finally:
        (faults / "stop").touch()
        if agent is not None:
            try:
                agent.wait(timeout=20)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait(timeout=5)
        for starter in reversed(started):
            starter.stop()
        webhook.close()


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_failing_health_check_pages_then_resolves(live: Live) -> None:
    name = "VoiceComponentUnhealthy"
    fired_before = len(live.webhook.notifications(name, "firing"))
    resolved_before = len(live.webhook.notifications(name, "resolved"))
    live.eventually(lambda: not live.alertmanager_alerts(name), f"no {name} before the fault")

    live.fault("unhealthy", True)
    try:
        firing = live.eventually(
            lambda: live.webhook.notifications(name, "firing")[fired_before:],
            f"{name} at the webhook",
        )
        alerts_endpoint = _alerts_endpoint(live)
    finally:
        live.fault("unhealthy", False)

    first = firing[0]
    assert first["path"] == "/voice-pager"
    assert first["auth"] == f"Bearer {TOKEN}"
    assert {k: first["labels"][k] for k in ("severity", "component", "stage")} == {
        "severity": "critical",
        "component": PROVIDER,
        "stage": "tts",
    }
    assert first["labels"]["voice_component"] == f"tts:{PROVIDER}"
    assert first["labels"]["voice_component_kind"] == "tts"
    assert first["annotations"]["runbook_url"] == "docs/runbooks/VoiceComponentUnhealthy.md"
    assert f"tts:{PROVIDER} (tts) seen from {SERVICE}" in first["annotations"]["description"]
    shown = [
        a
        for a in alerts_endpoint["alerts"]
        if a["labels"]["alertname"] == name and a["labels"].get("job") == SERVICE
    ]
    assert [a["state"] for a in shown] == ["active"]
    assert alerts_endpoint["summary"]["by_severity"]["critical"] >= 1

    resolved = live.eventually(
        lambda: live.webhook.notifications(name, "resolved")[resolved_before:],
        f"{name} resolved at the webhook",
    )
    assert resolved[0]["path"] == "/voice-pager"
    live.eventually(lambda: not live.alertmanager_alerts(name), f"{name} gone from Alertmanager")


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_slow_tts_warns_is_muted_by_its_unhealthy_provider_and_by_a_silence(live: Live) -> None:
    name = "VoiceTTSTimeToFirstByteHigh"
    client = AlertmanagerClient(live.alertmanager_url)
    silence_id: str | None = None

    live.fault("slow-tts", True)
    try:
        firing = live.eventually(
            lambda: live.webhook.notifications(name, "firing"), f"{name} at the webhook", 180
        )
        labels = firing[0]["labels"]
        assert firing[0]["path"] == "/voice-tickets"
        assert {
            k: labels[k]
            for k in (
                "severity",
                "component",
                "stage",
                "gen_ai_provider_name",
                "gen_ai_request_model",
            )
        } == {
            "severity": "warning",
            "component": PROVIDER,
            "stage": "tts",
            "gen_ai_provider_name": PROVIDER,
            "gen_ai_request_model": MODEL,
        }
        assert "(threshold 0.5s for 30s)" in firing[0]["annotations"]["description"]

        # The provider turns unhealthy: its latency alert is inhibited, then comes back.
        live.fault("unhealthy", True)
        live.eventually(
            lambda: _state_of(live, name) == "suppressed", f"{name} inhibited by the provider"
        )
        (muted,) = live.alertmanager_alerts(name)
        assert muted["status"]["inhibitedBy"]
        # Its link opens the Prometheus that fired it, on loopback, not a host name.
        assert muted["generatorURL"].startswith("http://127.0.0.1:"), muted["generatorURL"]
        live.fault("unhealthy", False)
        live.eventually(lambda: _state_of(live, name) == "active", f"{name} active again")

        # Open alerts are repeated (2s in this config) until acknowledged with a silence.
        seen = len(live.webhook.notifications(name, "firing"))
        live.eventually(
            lambda: len(live.webhook.notifications(name, "firing")) > seen, f"{name} repeated"
        )
        silence_id = _run(
            client.silence(
                {"alertname": name, "job": SERVICE}, "provider ticket opened", "oncall", 600
            )
        )
        live.eventually(lambda: _state_of(live, name) == "acknowledged", f"{name} acknowledged")
        time.sleep(3)  # let a notification already in flight land
        before = len(live.webhook.notifications(name, "firing"))
        time.sleep(8)  # four repeat intervals
        assert len(live.webhook.notifications(name, "firing")) == before
    finally:
        live.fault("slow-tts", False)
        live.fault("unhealthy", False)

    try:
        live.eventually(
            lambda: not live.prometheus.query(f'ALERTS{{alertname="{name}", job="{SERVICE}"}}'),
            f"{name} resolved in Prometheus",
        )
        live.eventually(lambda: not live.alertmanager_alerts(name), f"{name} gone")
    finally:
        if silence_id is not None:
            _run(client.expire_silence(silence_id))


def _state_of(live: Live, alertname: str) -> str | None:
    alerts = live.alertmanager_alerts(alertname)
    return lifecycle_state(alerts[0]) if len(alerts) == 1 else None


def _alerts_endpoint(live: Live) -> dict[str, Any]:
    """GET /alerts of an app instrumented with the FastAPI integration."""
    app = FastAPI()
    instrument_app(app, alertmanager_url=live.alertmanager_url, start_monitor=False)
    try:

        async def get() -> dict[str, Any]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                response = await client.get("/alerts")
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

        return live.eventually(
            lambda: _shows(_run(get()), "VoiceComponentUnhealthy"), "the alert in /alerts", 30
        )
    finally:
        uninstrument_app(app)


def _shows(report: dict[str, Any], alertname: str) -> dict[str, Any] | None:
    names = {a["labels"].get("alertname") for a in report["alerts"]}
    return report if alertname in names else None


if __name__ == "__main__":
    if sys.argv[1:2] != ["agent"]:
        sys.exit(f"usage: {sys.argv[0]} agent --faults DIR (--endpoint URL | --port N)")
    sys.exit(_agent_main(sys.argv[2:]))
