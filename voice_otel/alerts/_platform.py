"""Alerts on what carries the telemetry and runs the agent: the collector and the host.

The collector's own metrics (``otelcol_*``) are named by the collector, not by voice_otel. Its
telemetry endpoint writes counters without ``_total`` (v0.161: ``otelcol_exporter_sent_spans``);
other releases and exporters add it, so both spellings match. System metrics come from
``opentelemetry-instrumentation-system-metrics``: the SDK's Prometheus endpoint names them
``system_cpu_utilization``, the collector's exporter adds ``_ratio`` for unit ``1``.

Each exporter counts what it sent and what it failed to send per signal, in one metric per
signal; PromQL cannot ``rate()`` several metric names with equal labels at once, so the
recording rules rate each and tag it with a ``signal`` label.
"""

from __future__ import annotations

from voice_otel._contract import prometheus_name
from voice_otel.alerts._config import AlertConfig
from voice_otel.alerts._model import AlertRule, RecordingRule, RuleGroup
from voice_otel.alerts._promql import duration, number, string

_SIGNALS = ("spans", "metric_points", "log_records")
_QUEUE_SIZE = "otelcol_exporter_queue_size"
_QUEUE_CAPACITY = "otelcol_exporter_queue_capacity"

CPU_UTILIZATION = prometheus_name("system.cpu.utilization", "1", "observable_gauge")
MEMORY_UTILIZATION = prometheus_name("system.memory.utilization", "1", "observable_gauge")


def _ratio_metric(base: str) -> str:
    return f'__name__=~"{base}(_ratio)?"'


def _per_signal(outcome: str, window: str, by: str) -> RecordingRule:
    parts = [
        f"label_replace(\n"
        f'  sum by ({by}) (rate({{__name__=~"otelcol_exporter_{outcome}_{signal}(_total)?"}}'
        f"[{window}])),\n"
        f'  "signal", "{signal}", "", ""\n'
        f")\n"
        for signal in _SIGNALS
    ]
    return RecordingRule(
        record=f"exporter_signal:otelcol_exporter_{outcome}:rate{window}",
        expr="or\n".join(parts),
    )


def pipeline_group(config: AlertConfig) -> RuleGroup:
    """Collector down or gone, exporters failing to send, exporter queues filling up."""
    job = f"job=~{string(config.collector_job)}"
    labels = {"component": "otel-collector"}
    down_for = config.for_(120)
    absent_for = config.for_(300)
    failing_for = config.for_(300)
    queue_for = config.for_(300)
    by = "job, instance, exporter"
    sent = _per_signal("sent", "5m", by)
    failed = _per_signal("send_failed", "5m", by)

    return RuleGroup(
        name="voice-telemetry-pipeline",
        file="telemetry-pipeline",
        title="the telemetry pipeline: collector scrape target, exporters and their queues",
        rules=(
            sent,
            failed,
            AlertRule(
                name="VoiceCollectorDown",
                expr=f"up{{{job}}} == 0\n",
                for_s=down_for,
                severity="critical",
                summary="Prometheus cannot scrape the OpenTelemetry Collector.",
                description=(
                    "Collector target {{ $labels.instance }} of job {{ $labels.job }} is down "
                    f"(up = {{{{ $value }}}}) for {duration(down_for)}: voice telemetry is not "
                    "reaching Prometheus or Jaeger."
                ),
                labels=labels,
            ),
            AlertRule(
                name="VoiceCollectorAbsent",
                expr=f"absent(up{{{job}}})\n",
                for_s=absent_for,
                severity="critical",
                summary="No OpenTelemetry Collector target is known to Prometheus.",
                description=(
                    f"No scrape target matches {job} "
                    f"(absent = {{{{ $value }}}}) for {duration(absent_for)}: the collector "
                    "vanished from service discovery or the scrape configuration."
                ),
                labels=labels,
            ),
            AlertRule(
                name="VoiceCollectorExportFailing",
                expr=(
                    f"{failed.record}\n"
                    f"/\n"
                    f"clamp_min({failed.record} + ({sent.record} or {failed.record} * 0), 1e-9)\n"
                    f"> {number(config.exporter_failure_ratio)}\n"
                ),
                for_s=failing_for,
                severity="warning",
                summary="A collector exporter fails to send telemetry; data is being lost.",
                description=(
                    "Exporter {{ $labels.exporter }} of collector {{ $labels.instance }} failed "
                    "to send {{ $value | humanizePercentage }} of its {{ $labels.signal }} over "
                    f"the last 5m (for {duration(failing_for)})."
                ),
                labels=labels,
            ),
            AlertRule(
                name="VoiceCollectorQueueNearlyFull",
                expr=(
                    f"max by ({by}) ({_QUEUE_SIZE})\n"
                    f"/\n"
                    f"clamp_min(max by ({by}) ({_QUEUE_CAPACITY}), 1)\n"
                    f"> {number(config.exporter_queue_fill_ratio)}\n"
                ),
                for_s=queue_for,
                severity="warning",
                summary="A collector exporter's sending queue is nearly full.",
                description=(
                    "The sending queue of exporter {{ $labels.exporter }} on collector "
                    "{{ $labels.instance }} is {{ $value | humanizePercentage }} full for "
                    f"{duration(queue_for)}: the backend is slow or down and data will be "
                    "dropped when the queue is full."
                ),
                labels=labels,
            ),
        ),
    )


def host_group(config: AlertConfig) -> RuleGroup:
    """CPU and memory of the hosts running the voice agent."""
    labels = {"component": "host"}
    cpu_for = config.for_(900)
    memory_for = config.for_(900)

    return RuleGroup(
        name="voice-host",
        file="host",
        title="CPU and memory of the hosts running the voice agent (system metrics)",
        rules=(
            AlertRule(
                name="VoiceHostCpuHigh",
                expr=(
                    "1 - avg by (job, instance) "
                    f'({{{_ratio_metric(CPU_UTILIZATION)}, state="idle"}})\n'
                    f"> {number(config.host_cpu_ratio)}\n"
                ),
                for_s=cpu_for,
                severity="warning",
                summary="The voice agent's host is short of CPU.",
                description=(
                    "CPU of {{ $labels.instance }} ({{ $labels.job }}) is "
                    f"{{{{ $value | humanizePercentage }}}} busy for {duration(cpu_for)}: "
                    "audio and stage calls queue behind each other, latency grows."
                ),
                labels=labels,
            ),
            AlertRule(
                name="VoiceHostMemoryHigh",
                expr=(
                    "max by (job, instance) "
                    f'({{{_ratio_metric(MEMORY_UTILIZATION)}, state="used"}})\n'
                    f"> {number(config.host_memory_ratio)}\n"
                ),
                for_s=memory_for,
                severity="warning",
                summary="The voice agent's host is running out of memory.",
                description=(
                    "Memory of {{ $labels.instance }} ({{ $labels.job }}) is "
                    f"{{{{ $value | humanizePercentage }}}} used for {duration(memory_for)}."
                ),
                labels=labels,
            ),
        ),
    )
