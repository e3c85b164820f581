"""Monitoring a voice agent: health checks, alert rules, and a provider outage from start to end.

The agent streams LLM replies and TTS audio from a local OpenAI-compatible stand-in
(``local_openai_server.py``, next to this file, with its synthetic engines). A health monitor
probes that provider, watches the agent's event loop and a custom disk check, and reports
them as ``voice.health.*`` gauges; system metrics are on. The alert rules are rendered from
voice_otel's defaults into a directory. Then the provider goes down and comes back:

1. ``--healthy`` seconds of normal turns;
2. the outage: every provider call answers 503, so the probe fails, the turns fail and the
   provider's component goes degraded, then unhealthy. It lasts at least ``--outage`` seconds
   and until the monitor, the ``voice_health_status`` gauge and (with a Prometheus) the
   VoiceComponentUnhealthy alert all show it, for at most ``--max-wait`` seconds more;
3. the recovery: normal turns again, at least ``--recovery`` seconds and until the component
   is healthy everywhere and its alerts are resolved (at most ``--max-wait`` more).

Every second it prints the component states (the monitor), the ``voice_health_status`` values
and the count of failed stage calls (the metrics), and with a Prometheus the alerts (pending,
firing, resolved). Three ways to run it::

    python examples/monitoring_example.py                 # no stack: OTLP-JSON file + /metrics
    python examples/monitoring_example.py --stack         # starts collector, Jaeger, Prometheus
                                                          # (with the rendered rules, `for`
                                                          # scaled down) and Alertmanager
    python examples/monitoring_example.py --otlp-endpoint http://127.0.0.1:4317 \\
        --prometheus-url http://127.0.0.1:9090 \\
        --alertmanager-url http://127.0.0.1:9093          # a running stack (voice-otel stack up)

``--stack`` needs the built collector and Jaeger (``scripts/build-stack``) and Prometheus and
Alertmanager (``scripts/install-system-deps``); it loads the rules rendered here, with every
``for`` scaled down (``--for-scale``, 0.05 by default) so that alerts fire within seconds. A
running stack loads the shipped rules, whose ``for`` durations are minutes: the outage then
lasts until VoiceComponentUnhealthy fires, a minute and a half or so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
from local_openai_server import LocalOpenAIServer
from prometheus_client.parser import text_string_to_metric_families

import voice_otel
from voice_otel.alerts import AlertConfig, alert_names, write_rule_files
from voice_otel.health import HealthMonitor, PipelineHealth, Thresholds, enable_system_metrics

logger = logging.getLogger("monitoring_example")

PROVIDER = "local"
UNHEALTHY_ALERT = "VoiceComponentUnhealthy"


class Agent:
    """The voice agent's LLM and TTS stages against the stand-in provider."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url

    @voice_otel.llm(provider=PROVIDER, model="local-responder")
    async def reply(self, text: str) -> AsyncIterator[str]:
        body = {
            "model": "local-responder",
            "messages": [{"role": "user", "content": text}],
            "stream": True,
        }
        async with self.client.stream("POST", f"{self.base_url}/chat/completions", json=body) as r:
            r.raise_for_status()
            async for line in r.aiter_lines():
                if line.startswith("data: {"):
                    for choice in json.loads(line[6:]).get("choices", []):
                        if piece := choice.get("delta", {}).get("content"):
                            yield piece

    @voice_otel.tts(provider=PROVIDER, model="synthetic", voice="none")
    async def speak(self, text: str) -> AsyncIterator[bytes]:
        voice_otel.record_usage(characters=len(text))
        body = {"model": "synthetic", "input": text, "response_format": "pcm"}
        async with self.client.stream("POST", f"{self.base_url}/audio/speech", json=body) as r:
            r.raise_for_status()
            async for chunk in r.aiter_bytes():
                yield chunk

    async def turn(self, text: str) -> bool:
        """One turn; False when a provider call failed (the spans carry the error)."""
        try:
            async with voice_otel.turn() as turn:
                turn.user_stopped_speaking()
                async for _ in self.reply(text):
                    pass
                async for _ in self.speak("Sure, one moment."):
                    pass
        except httpx.HTTPError:
            return False
        return True


class MetricsView:
    """What the metrics say: from Prometheus when there is one, else the embedded /metrics."""

    def __init__(
        self,
        client: httpx.Client,
        metrics_url: str | None,
        prometheus: str | None,
        alertmanager: str | None = None,
    ) -> None:
        self.client = client
        self.metrics_url = metrics_url
        self.prometheus = prometheus
        self.alertmanager = alertmanager

    def health(self) -> dict[str, float]:
        """``voice_health_status`` by component."""
        if self.prometheus:
            rows = self._query('voice_health_status{job="monitoring-example"}')
            return {r["metric"]["voice_component"]: float(r["value"][1]) for r in rows}
        return {
            s.labels["voice_component"]: s.value
            for s in self._scrape("voice_health_status")
            if s.name == "voice_health_status"
        }

    def failed_calls(self) -> float:
        """Stage calls that ended in an error, so far."""
        if self.prometheus:
            rows = self._query(
                'sum(voice_stage_duration_seconds_count{job="monitoring-example",'
                'voice_outcome="error"})'
            )
            return float(rows[0]["value"][1]) if rows else 0.0
        return sum(
            s.value
            for s in self._scrape("voice_stage_duration_seconds")
            if s.name.endswith("_count") and s.labels.get("voice_outcome") == "error"
        )

    def alerts(self) -> dict[str, str]:
        """Prometheus alerts of this agent (name -> pending/firing); empty without Prometheus."""
        if not self.prometheus:
            return {}
        response = self.client.get(f"{self.prometheus}/api/v1/alerts", timeout=5)
        response.raise_for_status()
        return {
            a["labels"]["alertname"]: a["state"]
            for a in response.json()["data"]["alerts"]
            if a["labels"].get("job") in ("monitoring-example", None)
        }

    def routed(self) -> set[str]:
        """Alerts that reached Alertmanager (to be grouped, routed and sent to receivers)."""
        if not self.alertmanager:
            return set()
        response = self.client.get(f"{self.alertmanager}/api/v2/alerts", timeout=5)
        response.raise_for_status()
        return {a["labels"]["alertname"] for a in response.json()}

    def _query(self, promql: str) -> list[dict[str, object]]:
        response = self.client.get(
            f"{self.prometheus}/api/v1/query", params={"query": promql}, timeout=5
        )
        response.raise_for_status()
        return list(response.json()["data"]["result"])

    def _scrape(self, family: str) -> list[object]:
        assert self.metrics_url is not None
        text = self.client.get(self.metrics_url, timeout=5).text
        return [
            s for f in text_string_to_metric_families(text) if f.name == family for s in f.samples
        ]


@dataclass(frozen=True)
class Phase:
    """A stretch of the run: at least ``seconds`` long, then until ``done`` (or a deadline)."""

    name: str
    seconds: float
    done: Callable[[Reporter], bool]


async def drive(
    agent: Agent,
    server: LocalOpenAIServer,
    phases: Sequence[Phase],
    report: Reporter,
    max_wait: float,
) -> None:
    """Run a turn about every half second through the phases, reporting every second."""
    async with voice_otel.conversation():
        for phase in phases:
            if phase.name == "outage":
                server.state.start_outage(3600)
            else:
                server.state.end_outage()
            start = time.monotonic()
            next_report = start
            while True:
                elapsed = time.monotonic() - start
                if elapsed >= phase.seconds and (
                    phase.done(report) or elapsed >= phase.seconds + max_wait
                ):
                    break
                report.count(await agent.turn("what time do you open tomorrow"))
                if time.monotonic() >= next_report:
                    await asyncio.to_thread(report.line, phase.name)
                    next_report += 1.0
                await asyncio.sleep(0.5)


def provider_down(report: Reporter) -> bool:
    """The monitor, the gauge and (with Prometheus) the alert all say the provider is down."""
    name = f"llm:{PROVIDER}"
    alert_ok = report.view.prometheus is None or report.alerts.get(UNHEALTHY_ALERT) == "firing"
    return report.states.get(name) == "unhealthy" and report.gauges.get(name) == 0 and alert_ok


def provider_back(report: Reporter) -> bool:
    """The provider is healthy again everywhere and its health alerts are gone."""
    name = f"llm:{PROVIDER}"
    quiet = not any(alert.startswith("VoiceComponent") for alert in report.alerts)
    return report.states.get(name) == "healthy" and report.gauges.get(name) == 2 and quiet


class Reporter:
    """Prints one line a second and remembers what it saw, for the summary."""

    def __init__(self, monitor: HealthMonitor, view: MetricsView) -> None:
        self.monitor = monitor
        self.view = view
        self.start = time.monotonic()
        self.turns_ok = 0
        self.turns_failed = 0
        self.states_seen: dict[str, set[str]] = {}
        self.gauge_values_seen: dict[str, set[float]] = {}
        self.alert_states_seen: dict[str, set[str]] = {}
        self.states: dict[str, str] = {}
        self.gauges: dict[str, float] = {}
        self.alerts: dict[str, str] = {}
        self.routed: set[str] = set()

    def count(self, ok: bool) -> None:
        if ok:
            self.turns_ok += 1
        else:
            self.turns_failed += 1

    def line(self, phase: str) -> None:
        states = {c.name: c.state.value for c in self.monitor.components() if c.state}
        try:
            gauges = self.view.health()
            failed = self.view.failed_calls()
            alerts = self.view.alerts()
            self.routed |= self.view.routed()
        except httpx.HTTPError as exc:
            logger.warning("could not read metrics: %s", exc)
            gauges, failed, alerts = {}, 0.0, {}
        for name, state in states.items():
            self.states_seen.setdefault(name, set()).add(state)
        for name, value in gauges.items():
            self.gauge_values_seen.setdefault(name, set()).add(value)
        for name, state in alerts.items():
            self.alert_states_seen.setdefault(name, set()).add(state)
        for name in set(self.alerts) - set(alerts):
            self.alert_states_seen[name].add("resolved")
        self.states, self.gauges, self.alerts = states, gauges, alerts

        provider = f"llm:{PROVIDER}"
        print(
            f"t={time.monotonic() - self.start:5.1f}s {phase:8} "
            f"overall={self.monitor.status().value:9} "
            f"{provider}={states.get(provider, 'pending'):9} "
            f"gauge={_fmt(gauges.get(provider))} "
            f"failed_calls={failed:4.0f} turns ok/failed={self.turns_ok}/{self.turns_failed}"
            + (
                f" alerts: {', '.join(f'{k}({v})' for k, v in sorted(alerts.items()))}"
                if alerts
                else ""
            ),
            flush=True,
        )

    def summary(self) -> None:
        print("\nwhat was seen")
        for name in sorted(self.states_seen):
            values = sorted(self.gauge_values_seen.get(name, ()))
            print(f"  {name:14} states {sorted(self.states_seen[name])}, gauge values {values}")
        for name in sorted(self.alert_states_seen):
            print(f"  alert {name}: {sorted(self.alert_states_seen[name])}")
        if self.view.alertmanager:
            print(f"  received by Alertmanager: {', '.join(sorted(self.routed)) or 'nothing'}")
        print(f"  turns ok {self.turns_ok}, failed {self.turns_failed}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def build_monitor(base_url: str, scratch: Path) -> HealthMonitor:
    """Probe the provider every second; two failures in a row make it unhealthy.

    The pipeline's own calls count too: a provider is degraded while half of its last six calls
    failed (the defaults, twenty calls over five minutes, suit production traffic better).
    """
    monitor = HealthMonitor(
        interval=1.0,
        timeout=2.0,
        thresholds=Thresholds(failures_before_unhealthy=2, successes_before_healthy=2),
        pipeline=PipelineHealth(window=6, min_calls=3, error_ratio=0.5, max_age=60),
    )
    # A 401 would mean "reachable" by default; here only a 2xx is healthy.
    monitor.add_llm_provider(PROVIDER, f"{base_url}/models", healthy_status=range(200, 300))
    monitor.add_tts_provider(PROVIDER, f"{base_url}/models", healthy_status=range(200, 300))
    monitor.add_orchestrator()
    monitor.add_check("disk", lambda: shutil.disk_usage(scratch).free > 100e6, kind="disk")
    return monitor


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--healthy", type=float, default=5, help="seconds before the outage [5]")
    parser.add_argument("--outage", type=float, default=10, help="seconds of outage [10]")
    parser.add_argument("--recovery", type=float, default=10, help="seconds after it [10]")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=120,
        help="how much longer the outage and the recovery may last waiting for the states and "
        "alerts to follow [120]",
    )
    parser.add_argument("--stack", action="store_true", help="start the local stack for the run")
    parser.add_argument("--otlp-endpoint", help="a running collector (OTLP)")
    parser.add_argument("--prometheus-url", help="the Prometheus that scrapes that collector")
    parser.add_argument("--alertmanager-url", help="the Alertmanager that Prometheus alerts")
    parser.add_argument(
        "--json-path", default="monitoring-example.jsonl", help="OTLP-JSON lines without a stack"
    )
    parser.add_argument(
        "--rules-dir",
        type=Path,
        default=Path("monitoring-example-rules"),
        help="where the alert rules are rendered [monitoring-example-rules]",
    )
    parser.add_argument(
        "--for-scale",
        type=float,
        default=None,
        help="multiply every rule's `for` (default: 0.05 with --stack, else 1)",
    )
    args = parser.parse_args(argv)
    if args.stack and args.otlp_endpoint:
        parser.error("--stack starts its own collector; leave out --otlp-endpoint")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

    # Alert rules, rendered from the defaults; with --stack the `for` windows shrink so that
    # the alerts fire within the run.
    for_scale = args.for_scale if args.for_scale else (0.05 if args.stack else 1.0)
    config = AlertConfig(for_scale=for_scale)
    rule_files = write_rule_files(args.rules_dir, config)
    print(
        f"alert rules: {len(alert_names(config))} alerts in {len(rule_files)} files "
        f"under {args.rules_dir}/ (for x{for_scale:g})"
    )

    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        server = stack.enter_context(LocalOpenAIServer(engines="synthetic"))
        print(f"provider: OpenAI-compatible stand-in at {server.base_url}")

        otlp_endpoint, prometheus_url = args.otlp_endpoint, args.prometheus_url
        alertmanager_url = args.alertmanager_url
        otlp_protocol = None  # the SDK's default: gRPC on port 4317, else HTTP
        if args.stack:
            from voice_otel.stack import LocalStack

            local = LocalStack(
                Path(scratch) / "stack",
                scrape_interval="1s",
                evaluation_interval="1s",
                rule_files=[path.resolve() for path in rule_files],
                alertmanager=True,
            )
            stack.enter_context(local)
            # The local stack's OTLP port is a free one, so say that it speaks gRPC.
            otlp_endpoint, otlp_protocol = local.otlp_endpoint, "grpc"
            prometheus_url = local.prometheus.url if local.prometheus else None
            alertmanager_url = local.alertmanager.url if local.alertmanager else None
            print(
                f"stack: collector {otlp_endpoint}, Prometheus {prometheus_url}, "
                f"Jaeger {local.jaeger.query_url}"
            )

        if otlp_endpoint:
            telemetry = voice_otel.configure(
                service_name="monitoring-example",
                otlp_endpoint=otlp_endpoint,
                otlp_protocol=otlp_protocol,
                metric_export_interval=1.0,
                prometheus_port=0,
            )
        else:
            telemetry = voice_otel.configure(
                service_name="monitoring-example",
                json_path=args.json_path,
                prometheus_port=0,
                metric_export_interval=1.0,
            )
        for line in telemetry.describe():
            print(f"telemetry -> {line}")

        monitor = stack.enter_context(build_monitor(server.base_url, Path(scratch)))
        # Registered after the monitor, so it runs before the monitor stops: the last export
        # carries the gauges as they are at the end, not as they were one interval earlier.
        stack.callback(voice_otel.shutdown, 10)
        monitor.refresh()
        enable_system_metrics()

        client = stack.enter_context(httpx.Client())
        view = MetricsView(client, telemetry.prometheus_url, prometheus_url, alertmanager_url)
        report = Reporter(monitor, view)
        phases = [
            Phase("healthy", args.healthy, lambda _: True),
            Phase("outage", args.outage, provider_down),
            Phase("recovery", args.recovery, provider_back),
        ]

        async def run() -> None:
            async with httpx.AsyncClient(timeout=10) as http:
                monitor.watch_loop(asyncio.get_running_loop())
                await drive(Agent(http, server.base_url), server, phases, report, args.max_wait)

        asyncio.run(run())
        report.line("end")
        report.summary()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
