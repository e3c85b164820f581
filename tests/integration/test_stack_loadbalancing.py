"""Scaled out: agent (agent-loadbalancing.yaml) -> two tail-sampling gateways -> Jaeger.

The gateways keep only slow, interrupted and failed traces (ordinary ones at 0 %). A flagged
trace reaches Jaeger whole only if every one of its spans went to the same gateway: a span
routed to the other gateway would sit in a trace without the flag there and be dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from _stack_support import ROOT, WorkloadRun, eventually, require, run_workload

from voice_otel.stack import CollectorProcess, JaegerProcess

pytestmark = pytest.mark.integration


@dataclass
class Tier:
    jaeger: JaegerProcess
    gateways: list[CollectorProcess]
    agent: CollectorProcess


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    require("collector", "collector-full", "jaeger")
    workdir = tmp_path_factory.mktemp("loadbalancing")
    jaeger = JaegerProcess(workdir)
    gateways = [
        CollectorProcess(
            workdir,
            config=ROOT / "collector" / "gateway.yaml",
            jaeger_otlp_endpoint=jaeger.otlp_grpc_endpoint,
            env={
                "VOICE_OTEL_SAMPLING_PERCENT": "0",
                "VOICE_OTEL_DECISION_WAIT": "3s",
                "VOICE_OTEL_DECISION_WAIT_ROOT": "1s",
            },
            name=f"gateway-{i}",
        )
        for i in (1, 2)
    ]
    endpoints = ", ".join(g.otlp_grpc_endpoint.removeprefix("http://") for g in gateways)
    agent = CollectorProcess(
        workdir,
        config=ROOT / "collector" / "agent-loadbalancing.yaml",
        env={"VOICE_OTEL_GATEWAYS": f"[{endpoints}]", "VOICE_OTEL_SPANMETRICS_INTERVAL": "1s"},
        binary="collector-full",
        name="agent",
    )
    started: list[CollectorProcess | JaegerProcess] = []
    try:
        for proc in (jaeger, *gateways, agent):
            proc.start()
            started.append(proc)
        yield Tier(jaeger, gateways, agent)
    finally:
        for proc in reversed(started):
            proc.stop()


@pytest.fixture(scope="module")
def run(tier: Tier) -> WorkloadRun:
    return run_workload(
        tier.agent.otlp_grpc_endpoint,
        "--kinds",
        "fast,interrupted,error,fast",
        "--repeat",
        "15",
        "--objective",
        "0.5",
    )


def accepted_spans(gateway: CollectorProcess) -> float:
    text = httpx.get(f"http://{gateway.telemetry_target}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[-1])
        for line in text.splitlines()
        if line.startswith("otelcol_receiver_accepted_spans")
    )


def test_flagged_traces_arrive_whole_through_either_gateway(tier: Tier, run: WorkloadRun) -> None:
    flagged = [c for c in run.conversations if c["interrupted"] or c["outcome"] == "error"]
    assert len(flagged) == 30
    expected = {c["trace_id"]: (4 if c["outcome"] == "error" else 5) for c in flagged}
    incomplete: dict[str, int] = {}

    def all_whole() -> bool:
        incomplete.clear()
        for trace_id, count in expected.items():
            spans = tier.jaeger.get_trace(trace_id)
            got = len(spans) if spans else 0
            if got != count:
                incomplete[trace_id] = got
        return not incomplete

    eventually(all_whole, timeout=90, what="every flagged trace whole in Jaeger")


def test_both_gateways_share_the_traces(tier: Tier, run: WorkloadRun) -> None:
    assert run.conversations
    counts = eventually(
        lambda: (
            [accepted_spans(g) for g in tier.gateways]
            if all(accepted_spans(g) for g in tier.gateways)
            else None
        ),
        timeout=60,
        what="spans accepted by both gateways",
    )
    assert all(count > 0 for count in counts)


def test_ordinary_traces_are_dropped_at_zero_percent(tier: Tier, run: WorkloadRun) -> None:
    ordinary = [
        c
        for c in run.conversations
        if not (c["interrupted"] or c["outcome"] == "error" or c["slow"])
    ]
    assert ordinary
    # Once every flagged trace is in, the decisions on the ordinary ones (made at the same
    # time) are final too.
    flagged = [c for c in run.conversations if c["interrupted"]]
    eventually(
        lambda: all(tier.jaeger.get_trace(c["trace_id"]) for c in flagged),
        timeout=90,
        what="flagged traces",
    )
    stored = [c["trace_id"] for c in ordinary if tier.jaeger.get_trace(c["trace_id"])]
    assert stored == []


def test_agent_serves_span_metrics_computed_before_sampling(tier: Tier, run: WorkloadRun) -> None:
    turns = len(run.conversations)

    def turn_calls() -> float:
        total = 0.0
        for line in tier.agent.scrape(openmetrics=False).splitlines():
            if (
                line.startswith("traces_span_metrics_calls_total{")
                and 'span_name="voice.turn"' in line
            ):
                total += float(line.rsplit(" ", 1)[-1])
        return total if total >= turns else 0.0

    # Every turn is counted, including the ones the gateways dropped.
    assert eventually(turn_calls, timeout=60, what="span metrics on the agent") == turns
