"""Every dashboard panel returns data from the real Prometheus after a run through the stack.

The real collector, Jaeger and Prometheus are started on loopback (``voice_otel.stack``). Two
processes send telemetry through the collector: the demo (``voice-otel demo --otlp-endpoint``:
real STT and TTS engines, a retried LLM failure, a barge-in) and a probe that exercises what the
demo does not: health checks (one passing, one failing), an instrumented FastAPI app (2xx and 5xx
routes), system metrics, and conversations that are fast, slow, interrupted and failing. A probe
alert rule that always fires gives the alert panels their data.

Then every panel query, with its template variables substituted, is run against Prometheus's
``/api/v1/query`` and must return at least one finite value: first with every label variable
``.*``, then with the probe's concrete ``job`` and ``environment``. Every variable query must
return values, latency panels must find exemplars carrying a trace id, every metric a query names
must come from the contract or a documented source, and a report is rendered from the same
Prometheus and from the demo's JSON lines file.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _stack_support import eventually, require

from voice_otel import dashboards, report
from voice_otel.dashboards._external import KNOWN_SERIES
from voice_otel.dashboards._lint import metric_names, queries
from voice_otel.stack import LocalStack

pytestmark = pytest.mark.integration

PROBE_JOB = "dashboards-live"
PROBE_ENV = "live-test"
DEMO_JOB = "voice-otel-demo"
RATE_WINDOW = "5m"
RANGE_WINDOW = "15m"

# Panels allowed to come back empty, with the reason. Keep this minimal: today none.
EXEMPT: dict[tuple[str, str], str] = {}

PROBE_RULES = """\
# A probe alert for the dashboards' live test: always firing, so ALERTS has a series.
groups:
  - name: dashboards-live-probe
    rules:
      - alert: DashboardsLiveProbe
        expr: vector(1)
        labels:
          severity: info
        annotations:
          summary: Always fires; gives the firing-alerts panels data in the live test.
"""

PROBE = '''\
"""The dashboards' live-test probe: health, HTTP, system metrics and every kind of turn."""

import asyncio
import sys
import time

import httpx
from fastapi import FastAPI, HTTPException
from opentelemetry import metrics

import voice_otel
from voice_otel.health import CheckFailed, HealthMonitor, enable_system_metrics
from voice_otel.integrations.fastapi import instrument_app

endpoint, service, environment = sys.argv[1:4]
PRICES = {
    "probe-stt/probe-stt-model": {"input_audio_per_minute": 0.01},
    "probe-llm/probe-llm-model": {"input_per_1m_tokens": 1.0, "output_per_1m_tokens": 2.0},
    "probe-tts/probe-tts-model": {"per_1m_characters": 10.0},
}
voice_otel.configure(
    service_name=service,
    environment=environment,
    otlp_endpoint=endpoint,
    otlp_protocol="grpc",
    metric_export_interval=1.0,
    latency_objective=0.5,
    prices=PRICES,
    json_path=False,
    prometheus_port=False,
)
enable_system_metrics()

# A framework that records the GenAI token histogram under its own scope through the same
# provider, as LiveKit Agents does; 100 times ours, so counting it would show.
FOREIGN_TOKENS = metrics.get_meter("probe-framework").create_histogram(
    "gen_ai.client.token.usage", unit="{token}"
)


class ProviderDown(RuntimeError):
    pass


@voice_otel.stt(provider="probe-stt", model="probe-stt-model")
def transcribe(audio: bytes) -> str:
    time.sleep(0.05)
    voice_otel.record_usage(input_audio_seconds=len(audio) / 32000)
    return "book a table for two"


@voice_otel.llm(provider="probe-llm", model="probe-llm-model")
async def reply(text: str, delay: float, fail: bool):
    await asyncio.sleep(delay)
    if fail:
        raise ProviderDown("upstream returned 503")
    voice_otel.record_usage(input_tokens=20, output_tokens=8)
    for token_type, count in (("input", 2000), ("output", 800)):
        FOREIGN_TOKENS.record(
            count,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "probe-llm",
                "gen_ai.request.model": "probe-llm-model",
                "gen_ai.token.type": token_type,
            },
        )
    for word in ("A table ", "for two ", "at seven."):
        await asyncio.sleep(0.02)
        yield word


@voice_otel.tts(provider="probe-tts", model="probe-tts-model", voice="probe-voice")
async def speak(text: str):
    voice_otel.record_usage(characters=len(text), output_audio_seconds=1.5)
    for _ in range(4):
        await asyncio.sleep(0.03)
        yield b"\\0" * 3200


async def conversation(kind: str) -> None:
    try:
        async with voice_otel.conversation():
            for _ in range(2):
                async with voice_otel.turn() as turn:
                    turn.user_stopped_speaking()
                    text = transcribe(b"\\0" * 32000)
                    delay = 0.7 if kind == "slow" else 0.05
                    words = [w async for w in reply(text, delay, kind == "error")]
                    stream = speak("".join(words))
                    try:
                        index = 0
                        async for _chunk in stream:
                            turn.bot_started_speaking()
                            if kind == "interrupted" and index == 1:
                                turn.interrupt(played_audio_seconds=0.3)
                                break
                            index += 1
                    finally:
                        await stream.aclose()
    except ProviderDown:
        pass


def cache_check() -> None:
    raise CheckFailed("probe cache is down")


async def main() -> None:
    monitor = HealthMonitor(interval=0.5, timeout=2.0)
    monitor.add_check("probe-database", lambda: True, kind="database")
    monitor.add_check("probe-cache", cache_check, kind="cache", critical=False)
    monitor.start()

    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict:
        return {"item": item_id, "name": "x" * (item_id * 10)}

    @app.get("/boom")
    async def boom() -> dict:
        raise HTTPException(status_code=500, detail="probe failure")

    instrument_app(app, monitor=monitor, start_monitor=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        # Prometheus only sees a counter grow once it has scraped it: create the series, wait
        # for a scrape, then keep the traffic going alongside the conversations.
        await client.get("/items/1")
        await client.get("/boom")
        await asyncio.sleep(3.0)
        for index, kind in enumerate(("fast", "slow", "interrupted", "error") * 3):
            await conversation(kind)
            await client.get(f"/items/{index}")
            if index % 4 == 3:
                await client.get("/boom")

    await asyncio.sleep(3.0)  # a few health rounds and metric exports
    monitor.stop()


asyncio.run(main())
voice_otel.shutdown(timeout=10.0)
print("probe done", flush=True)
'''


@dataclass
class LiveRun:
    stack: LocalStack
    prometheus_url: str
    started: float
    demo_json: Path


def _ci() -> bool:
    return os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRun]:
    require("collector", "jaeger", "prometheus")
    workdir = tmp_path_factory.mktemp("dashboards-live")
    rules = workdir / "probe-rules.yml"
    rules.write_text(PROBE_RULES)
    stack = LocalStack(
        workdir / "stack",
        scrape_interval="1s",
        rule_files=[rules],
        collector_env={"VOICE_OTEL_METRIC_EXPIRATION": "15m"},
    )
    stack.start()
    try:
        assert stack.prometheus is not None
        started = time.time()
        demo_json = workdir / "demo.jsonl"
        demo = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voice_otel.cli",
                "demo",
                "--otlp-endpoint",
                stack.otlp_endpoint,
                "--otlp-protocol",
                "grpc",
                "--json-path",
                str(demo_json),
                "--service-name",
                DEMO_JOB,
                "--quiet",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        probe_file = workdir / "probe.py"
        probe_file.write_text(PROBE)
        probe = subprocess.run(
            [sys.executable, str(probe_file), stack.otlp_endpoint, PROBE_JOB, PROBE_ENV],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            # The FastAPI instrumentation emits the stable HTTP metric names only when asked.
            env={**os.environ, "OTEL_SEMCONV_STABILITY_OPT_IN": "http"},
        )
        demo_out, demo_err = demo.communicate(timeout=400)
        assert probe.returncode == 0, f"probe failed:\n{probe.stderr[-4000:]}"
        assert demo.returncode == 0, f"demo failed:\n{demo_err[-4000:]}{demo_out[-2000:]}"
        yield LiveRun(stack, stack.prometheus.url, started, demo_json)
    finally:
        stack.stop()


# -- substituting variables ----------------------------------------------------------------


def _variables(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in model["templating"]["list"]}


def substitute(expr: str, model: dict[str, Any], concrete: dict[str, str]) -> str:
    """Replace Grafana variables as Grafana would for the given selection."""
    variables = _variables(model)
    text = expr.replace("$__rate_interval", RATE_WINDOW).replace("$__range", RANGE_WINDOW)

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        variable = variables.get(name)
        if variable is None:
            raise AssertionError(f"query uses undefined variable ${name}: {expr}")
        if name in concrete:
            # A regex inside a PromQL string: escape for the regex, then for the string.
            return re.escape(concrete[name]).replace("\\", "\\\\")
        if variable["type"] == "custom":
            return str(variable["current"]["value"])
        return ".*"

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


# -- Prometheus ----------------------------------------------------------------------------


def _api(url: str, path: str, params: dict[str, Any]) -> Any:
    response = httpx.get(f"{url}{path}", params=params, timeout=30.0)
    body = response.json()
    assert body.get("status") == "success", f"{path} {params}: {body}"
    return body["data"]


def _has_data(url: str, expr: str) -> bool:
    result = _api(url, "/api/v1/query", {"query": expr})["result"]
    return any(math.isfinite(float(series["value"][1])) for series in result)


def _variable_values(url: str, model: dict[str, Any], name: str) -> list[str]:
    query = _variables(model)[name]["query"]
    found = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
    assert found, f"{name}: unexpected variable query {query!r}"
    selector = substitute(found.group(1), model, {})
    data = _api(url, f"/api/v1/label/{found.group(2)}/values", {"match[]": selector})
    return sorted(data)


def _failing_panels(url: str, concrete: dict[str, str]) -> list[tuple[str, str, str, str]]:
    failing = []
    for summary in dashboards.list_dashboards():
        model = dashboards.get_dashboard(summary["uid"])
        for panel, target in queries(model):
            if (summary["uid"], panel["title"]) in EXEMPT:
                continue
            expr = substitute(target["expr"], model, concrete)
            if not _has_data(url, expr):
                failing.append((summary["uid"], panel["title"], target["refId"], expr))
    return failing


def _eventually_empty(check: Callable[[], list[Any]], what: str, timeout: float = 90.0) -> None:
    last: list[Any] = []

    def done() -> bool:
        nonlocal last
        last = check()
        return not last

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(2.0)
    pytest.fail(f"{what}:\n" + "\n".join(str(item) for item in last))


# -- tests ---------------------------------------------------------------------------------


def test_every_query_names_only_known_metrics() -> None:
    unknown = {}
    for summary in dashboards.list_dashboards():
        for panel, target in queries(dashboards.get_dashboard(summary["uid"])):
            names = metric_names(target["expr"]) - KNOWN_SERIES
            if names:
                unknown[(summary["uid"], panel["title"])] = sorted(names)
    assert unknown == {}


def test_exempt_panels_exist() -> None:
    titles = {
        (s["uid"], p["title"])
        for s in dashboards.list_dashboards()
        for p, _t in queries(dashboards.get_dashboard(s["uid"]))
    }
    assert set(EXEMPT) <= titles


def test_the_stack_received_both_runs(live: LiveRun) -> None:
    for job in (PROBE_JOB, DEMO_JOB):
        eventually(
            lambda job=job: live.stack.prometheus.query(  # type: ignore[union-attr]
                f'voice_turns_total{{job="{job}"}}'
            ),
            timeout=60,
            what=f"turns of {job} in Prometheus",
        )


def test_every_panel_returns_data_with_all_values(live: LiveRun) -> None:
    _eventually_empty(
        lambda: _failing_panels(live.prometheus_url, {}),
        "panels without data (variables = .*)",
    )


def test_every_panel_returns_data_for_the_probe_service_and_environment(live: LiveRun) -> None:
    _eventually_empty(
        lambda: _failing_panels(live.prometheus_url, {"job": PROBE_JOB, "environment": PROBE_ENV}),
        f"panels without data (job={PROBE_JOB}, environment={PROBE_ENV})",
    )


def test_every_variable_query_returns_values(live: LiveRun) -> None:
    def empty_variables() -> list[tuple[str, str]]:
        missing = []
        for summary in dashboards.list_dashboards():
            model = dashboards.get_dashboard(summary["uid"])
            for name, variable in _variables(model).items():
                query_variable = variable["type"] == "query"
                if query_variable and not _variable_values(live.prometheus_url, model, name):
                    missing.append((summary["uid"], name))
        return missing

    _eventually_empty(empty_variables, "variables without values")
    overview = dashboards.get_dashboard("voice-overview")
    assert PROBE_JOB in _variable_values(live.prometheus_url, overview, "job")
    assert PROBE_ENV in _variable_values(live.prometheus_url, overview, "environment")


def test_latency_panels_find_exemplars_with_trace_ids(live: LiveRun) -> None:
    def without_exemplars() -> list[tuple[str, str, str]]:
        missing = []
        for summary in dashboards.list_dashboards():
            model = dashboards.get_dashboard(summary["uid"])
            for panel, target in queries(model):
                if not target.get("exemplar"):
                    continue
                data = _api(
                    live.prometheus_url,
                    "/api/v1/query_exemplars",
                    {
                        "query": substitute(target["expr"], model, {}),
                        "start": live.started - 60,
                        "end": time.time(),
                    },
                )
                labels = [e["labels"] for s in data for e in s.get("exemplars", [])]
                if not any(re.fullmatch(r"[0-9a-f]{32}", x.get("trace_id", "")) for x in labels):
                    missing.append((summary["uid"], panel["title"], target["refId"]))
        return missing

    _eventually_empty(without_exemplars, "exemplar-enabled queries without trace-id exemplars")


def test_report_renders_from_the_real_prometheus_and_the_demo_file(
    live: LiveRun, tmp_path: Path
) -> None:
    data = eventually(
        lambda: _report_or_none(live),
        timeout=60,
        what="report data in Prometheus",
    )
    assert data.turns and all(t.latency > 0 for t in data.turns)
    assert {"voice-to-voice", "stt", "llm", "tts"} <= set(data.percentiles)
    html, _ = report.write_report(data, tmp_path / "prometheus.html")
    assert '<svg class="chart waterfall"' in html.read_text()

    demo = report.load_json_lines(live.demo_json)
    assert len(demo.turns) >= 5
    assert any(t.outcome == "interrupted" for t in demo.turns)
    for turn in demo.turns:
        assert sum(turn.components.values()) == pytest.approx(turn.latency, rel=1e-3)


def test_genai_panels_count_only_voice_otel_series(live: LiveRun) -> None:
    """Another scope's gen_ai.client.token.usage (100x ours) stays out of the token panel."""
    model = dashboards.get_dashboard("voice-ai-services")
    (expr,) = [
        substitute(t["expr"], model, {"job": PROBE_JOB, "environment": PROBE_ENV})
        for panel, t in queries(model)
        if panel["title"] == "LLM tokens per second"
    ]
    series = f'gen_ai_client_token_usage_sum{{job="{PROBE_JOB}",otel_scope_name="%s"}}'
    eventually(
        lambda: live.stack.prometheus.query(series % "probe-framework"),  # type: ignore[union-attr]
        timeout=60,
        what="the probe framework's token series in Prometheus",
    )
    at = time.time()

    def total(query: str) -> float:
        result = _api(live.prometheus_url, "/api/v1/query", {"query": query, "time": at})["result"]
        return sum(float(s["value"][1]) for s in result)

    panel = total(expr)
    ours = total(f"sum(rate({series % 'voice_otel'}[{RATE_WINDOW}]))")
    foreign = total(f"sum(rate({series % 'probe-framework'}[{RATE_WINDOW}]))")
    assert ours > 0
    assert foreign > 50 * ours
    assert panel == pytest.approx(ours, rel=1e-6)


def test_report_from_prometheus_counts_every_turn_whatever_the_step(live: LiveRun) -> None:
    """Steps at and far above the 1 s scrape interval see the same turns: none fall between."""
    eventually(lambda: _report_or_none(live), timeout=60, what="report data in Prometheus")
    end = time.time()

    def load(step: float) -> report.ReportData:
        return report.load_prometheus(
            live.prometheus_url,
            start=live.started - 30,
            end=end,
            step=step,
            job=PROBE_JOB,
            objective=0.5,
        )

    fine, coarse = load(1), load(60)
    assert fine.percentiles.keys() == coarse.percentiles.keys()
    for part, quantiles in fine.percentiles.items():
        assert quantiles == pytest.approx(coarse.percentiles[part]), part
    assert fine.objective_share == pytest.approx(coarse.objective_share)


def _report_or_none(live: LiveRun) -> report.ReportData | None:
    try:
        return report.load_prometheus(
            live.prometheus_url,
            start=live.started - 30,
            end=time.time(),
            step=5,
            job=PROBE_JOB,
            objective=0.5,
        )
    except report.ReportSourceError:
        return None
