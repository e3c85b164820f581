"""SDK -> collector -> Prometheus: every SDK metric of the contract, span metrics, exemplars.

Names come from ``voice_otel._contract`` (``Metric.prometheus_name``) and are looked up in the
real Prometheus after it scraped the real collector, so a drift in either the contract or the
collector's name translation fails here.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from _stack_support import WorkloadRun, eventually

from voice_otel._contract import Attr, Metric, Metrics
from voice_otel.stack import LocalStack, PrometheusProcess

pytestmark = pytest.mark.integration

SERVICE = "voice-otel-it"
SDK_METRICS = [m for m in Metrics.all() if m.emitted_by == "sdk"]
# Labels Prometheus or the collector's exporter add to every series.
COMMON_LABELS = {"__name__", "job", "instance", "otel_scope_name", "otel_scope_version"}
COMMON_LABELS |= {"otel_scope_schema_url"}


def label(attribute: str) -> str:
    return attribute.replace(".", "_")


def series_names(metric: Metric) -> list[str]:
    base = metric.prometheus_name
    if metric.instrument == "histogram":
        return [f"{base}_bucket", f"{base}_count", f"{base}_sum"]
    return [base]


def series(prometheus: PrometheusProcess, name: str) -> list[dict[str, Any]]:
    return prometheus.query(f'{name}{{job="{SERVICE}"}}')


@pytest.fixture(scope="module")
def prometheus(stack: LocalStack, pipeline_run: WorkloadRun) -> PrometheusProcess:
    """Prometheus once it holds the run's last export (turn counts equal the conversations)."""
    assert stack.prometheus is not None
    prom = stack.prometheus
    turns = len(pipeline_run.conversations)
    name = Metrics.TURNS.prometheus_name

    def all_turns_scraped() -> float:
        total = sum(float(s["value"][1]) for s in series(prom, name))
        return total if total >= turns else 0.0

    eventually(all_turns_scraped, timeout=60, what=f"{name} to reach {turns}")
    return prom


@pytest.mark.parametrize("metric", SDK_METRICS, ids=lambda m: m.name)
def test_sdk_metric_is_in_prometheus_under_its_contract_name(
    prometheus: PrometheusProcess, metric: Metric
) -> None:
    for name in series_names(metric):
        found = eventually(
            lambda name=name: series(prometheus, name), timeout=30, what=f"series {name}"
        )
        labels = set().union(*(s["metric"].keys() for s in found))
        expected = {label(a) for a in metric.attributes}
        if name.endswith("_bucket"):
            expected.add("le")
        missing = expected - labels
        assert not missing, f"{name} lacks labels {missing}; has {sorted(labels)}"
        unexpected = labels - expected - COMMON_LABELS
        assert not unexpected, f"{name} has labels outside the contract: {unexpected}"
        for sample in found:
            assert sample["metric"]["job"] == SERVICE
            assert sample["metric"].get("instance"), f"{name} has no instance label"


def test_metric_labels_never_carry_conversation_or_turn_ids(
    prometheus: PrometheusProcess,
) -> None:
    forbidden = {label(a) for a in ("gen_ai.conversation.id", Attr.TURN_ID, Attr.TURN_INDEX)}
    for metric in SDK_METRICS:
        for name in series_names(metric):
            for sample in series(prometheus, name):
                assert not forbidden & set(sample["metric"]), f"{name}: {sample['metric']}"


def test_turn_counts_by_outcome_match_the_run(
    prometheus: PrometheusProcess, pipeline_run: WorkloadRun
) -> None:
    expected: dict[str, int] = {}
    for conversation in pipeline_run.conversations:
        expected[conversation["outcome"]] = expected.get(conversation["outcome"], 0) + 1
    got = {
        s["metric"][label(Attr.OUTCOME)]: round(float(s["value"][1]))
        for s in series(prometheus, Metrics.TURNS.prometheus_name)
    }
    assert got == expected


def test_span_metrics_series_carry_voice_dimensions(prometheus: PrometheusProcess) -> None:
    def llm_calls() -> list[dict[str, Any]]:
        return prometheus.query(
            f'traces_span_metrics_calls_total{{job="{SERVICE}", voice_stage="llm"}}'
        )

    calls = eventually(llm_calls, timeout=60, what="span metrics calls for the LLM stage")
    span_names = {s["metric"]["span_name"] for s in calls}
    assert span_names == {"chat test-llm-model"}
    assert {s["metric"]["status_code"] for s in calls} == {"STATUS_CODE_UNSET", "STATUS_CODE_ERROR"}
    assert {s["metric"]["gen_ai_provider_name"] for s in calls} == {"test-llm"}

    buckets = prometheus.query(
        f'traces_span_metrics_duration_seconds_bucket{{job="{SERVICE}", span_name="voice.turn"}}'
    )
    assert buckets, "no span-metrics duration histogram for voice.turn"
    # OpenMetrics spells bounds as floats ("1.0"); compare numerically.
    bounds = {float(s["metric"]["le"]) for s in buckets}
    assert {0.025, 0.5, 1.0, 3.0, 30.0} <= bounds, f"voice buckets not applied: {sorted(bounds)}"


def test_turn_latency_exemplars_point_at_traces_in_jaeger(
    stack: LocalStack, prometheus: PrometheusProcess, pipeline_run: WorkloadRun
) -> None:
    name = f"{Metrics.TURN_LATENCY.prometheus_name}_bucket"
    run_ids = {c["trace_id"] for c in pipeline_run.conversations}

    def exemplar_trace_ids() -> set[str]:
        now = time.time()
        found = prometheus.query_exemplars(f'{name}{{job="{SERVICE}"}}', now - 3600, now + 60)
        return {
            e["labels"]["trace_id"]
            for group in found
            for e in group["exemplars"]
            if "trace_id" in e["labels"]
        }

    trace_ids = eventually(exemplar_trace_ids, timeout=60, what=f"exemplars on {name}")
    assert trace_ids <= run_ids, "exemplar trace ids do not belong to the run"
    for trace_id in trace_ids:
        spans = eventually(
            lambda t=trace_id: stack.jaeger.get_trace(t), timeout=30, what=f"trace {trace_id}"
        )
        assert any(span.name == "voice.turn" for span in spans)


def test_span_metrics_carry_exemplars(stack: LocalStack, prometheus: PrometheusProcess) -> None:
    def exemplars() -> list[dict[str, Any]]:
        now = time.time()
        return prometheus.query_exemplars(
            f'traces_span_metrics_duration_seconds_bucket{{job="{SERVICE}"}}', now - 3600, now + 60
        )

    groups = eventually(exemplars, timeout=60, what="span-metrics exemplars")
    trace_id = groups[0]["exemplars"][0]["labels"]["trace_id"]
    assert stack.jaeger.get_trace(trace_id) is not None


def test_collector_own_telemetry_is_scraped(prometheus: PrometheusProcess) -> None:
    def sent() -> list[dict[str, Any]]:
        # Counters of the collector's own telemetry carry no _total suffix in this release.
        return prometheus.query('{__name__=~"otelcol_exporter_sent_spans(_total)?", job="otelcol"}')

    found = eventually(sent, timeout=60, what="collector telemetry in Prometheus")
    assert any(float(s["value"][1]) > 0 for s in found)
    names = prometheus.series_names()
    for needed in ("otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity"):
        assert needed in names, f"{needed} missing; alerts rely on it"
    up = prometheus.query('up{job="voice-otel-collector"}')
    assert up and up[0]["value"][1] == "1"
