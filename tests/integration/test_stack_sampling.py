"""Tail sampling on a real gateway (gateway.yaml): keep what matters, sample the rest.

200 conversations (one turn each) go straight to the gateway; slow, interrupted and failed turns
must all reach Jaeger, ordinary ones near the configured percentage. Classification uses what the
SDK itself recorded for each turn (``TurnRecord.slow`` etc.), not what the workload intended.
"""

from __future__ import annotations

import math
import time

import pytest
from _stack_support import GatewayStack, WorkloadRun, eventually, run_workload

pytestmark = pytest.mark.integration

CONVERSATIONS = 200


@pytest.fixture(scope="module")
def sampled_run(gateway_stack: GatewayStack) -> WorkloadRun:
    # 20 blocks of 10: 7 ordinary, 1 slow, 1 interrupted, 1 failed.
    kinds = ",".join(["fast"] * 7 + ["slow", "interrupted", "error"])
    run = run_workload(
        gateway_stack.gateway.otlp_grpc_endpoint,
        "--kinds",
        kinds,
        "--repeat",
        str(CONVERSATIONS // 10),
        "--objective",
        "0.25",
        timeout=240,
    )
    assert len(run.conversations) == CONVERSATIONS
    return run


def must_keep(conversation: dict[str, object]) -> bool:
    return bool(
        conversation["slow"] or conversation["interrupted"] or conversation["outcome"] == "error"
    )


def stored(gateway_stack: GatewayStack, trace_ids: list[str]) -> set[str]:
    return {t for t in trace_ids if gateway_stack.jaeger.get_trace(t) is not None}


def test_slow_interrupted_and_failed_turns_are_always_kept(
    gateway_stack: GatewayStack, sampled_run: WorkloadRun
) -> None:
    important = [c for c in sampled_run.conversations if must_keep(c)]
    assert len(important) >= 3 * CONVERSATIONS // 10
    ids = [str(c["trace_id"]) for c in important]
    missing: set[str] = set()

    def all_kept() -> bool:
        missing.clear()
        missing.update(set(ids) - stored(gateway_stack, ids))
        return not missing

    eventually(all_kept, timeout=90, what="every slow, interrupted and failed trace in Jaeger")

    kinds = {str(c["kind"]) for c in important}
    assert {"slow", "interrupted", "error"} <= kinds


def test_ordinary_turns_are_kept_near_the_configured_rate(
    gateway_stack: GatewayStack, sampled_run: WorkloadRun
) -> None:
    ordinary = [str(c["trace_id"]) for c in sampled_run.conversations if not must_keep(c)]
    n = len(ordinary)
    assert n >= CONVERSATIONS // 2

    # Decisions are final a few seconds (decision_wait) after a trace's last span; count until
    # two readings agree, within a bound.
    previous = -1
    kept = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kept = len(stored(gateway_stack, ordinary))
        if kept == previous and kept > 0:
            break
        previous = kept
        time.sleep(4)

    rate = gateway_stack.sampling_percent / 100
    expected = n * rate
    sigma = math.sqrt(n * rate * (1 - rate))
    # Binomial: 5 standard deviations is a false failure about once in 3.5 million runs.
    assert abs(kept - expected) <= 5 * sigma, (
        f"kept {kept} of {n} ordinary traces; expected about {expected:.0f} "
        f"({gateway_stack.sampling_percent}%)"
    )
    assert 0 < kept < n


def test_kept_traces_are_complete(gateway_stack: GatewayStack, sampled_run: WorkloadRun) -> None:
    failed = next(c for c in sampled_run.conversations if c["outcome"] == "error")
    interrupted = next(c for c in sampled_run.conversations if c["interrupted"])
    for conversation, spans_expected in ((failed, 4), (interrupted, 5)):
        trace_id = str(conversation["trace_id"])
        spans = eventually(
            lambda t=trace_id: gateway_stack.jaeger.get_trace(t), timeout=60, what=trace_id
        )
        assert len(spans) == spans_expected, [s.name for s in spans]
