"""Render ``docs/telemetry.md`` from the telemetry contract.

``voice-otel telemetry-doc > docs/telemetry.md`` regenerates it; a test fails when the file and
the contract disagree, and another checks the Prometheus names against the real exporter.
"""

from __future__ import annotations

import click

from voice_otel._contract import SPANS, Metric, Metrics

_HEADER = """\
# Telemetry reference

Everything voice_otel emits, generated from `voice_otel/_contract.py` (do not edit by hand:
run `voice-otel telemetry-doc > docs/telemetry.md`). Names follow the OpenTelemetry GenAI
semantic conventions where they exist (`gen_ai.*`, development status) and live under `voice.*`
otherwise.

Prometheus names are what the OpenTelemetry Prometheus exporters (the SDK's `/metrics` and the
collector's `prometheus` exporter) produce: dots become underscores, the unit is appended as a
word (`s` -> `_seconds`; braced units such as `{turn}` are dropped), counters end in `_total`,
histograms add `_bucket`, `_sum` and `_count`. Attribute keys become labels the same way
(`gen_ai.provider.name` -> `gen_ai_provider_name`). Through the collector, series also carry
`job` (the service name) and `instance`.

Metric attributes are bounded: never a conversation id, turn id, user id or free text.
"""


def _fmt_buckets(buckets: tuple[float, ...] | None) -> str:
    if not buckets:
        return "-"
    return ", ".join(f"{b:g}" for b in buckets)


def _metric_row(m: Metric) -> str:
    attrs = ", ".join(f"`{a}`" for a in m.attributes) or "-"
    return (
        f"| `{m.name}` | {m.instrument} | `{m.unit}` | `{m.prometheus_name}` | {attrs} "
        f"| {m.description} |"
    )


def render() -> str:
    """The whole of docs/telemetry.md."""
    out = [_HEADER, "## Spans", ""]
    for span in SPANS:
        out.append(f"### `{span.name}`")
        out.append("")
        out.append(span.description)
        out.append("")
        out.append("Attributes: " + ", ".join(f"`{a}`" for a in span.attributes) + ".")
        out.append("")
    for source, title in (
        ("sdk", "Metrics recorded by stages, turns and conversations"),
        ("health", "Health gauges (from the health monitor)"),
    ):
        out.append(f"## {title}")
        out.append("")
        out.append("| name | instrument | unit | Prometheus name | attributes | description |")
        out.append("| --- | --- | --- | --- | --- | --- |")
        out.extend(_metric_row(m) for m in Metrics.all() if m.emitted_by == source)
        out.append("")
    out.append("## Histogram buckets")
    out.append("")
    out.append("| metric | boundaries |")
    out.append("| --- | --- |")
    for m in Metrics.all():
        if m.buckets:
            out.append(f"| `{m.name}` | {_fmt_buckets(m.buckets)} |")
    out.append("")
    return "\n".join(out)


@click.command("telemetry-doc")
def telemetry_doc_command() -> None:
    """Print the telemetry reference (docs/telemetry.md) generated from the contract."""
    click.echo(render(), nl=False)
