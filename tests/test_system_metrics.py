"""System metrics: the maintained instrumentation, primed CPU, idempotent, documented names."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from prometheus_client import CollectorRegistry, generate_latest

from voice_otel._system_metrics import system_metrics_enabled
from voice_otel.health import (
    DEFAULT_SYSTEM_METRICS,
    disable_system_metrics,
    enable_system_metrics,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "health.md"
SCOPE = "opentelemetry.instrumentation.system_metrics"


@pytest.fixture(autouse=True)
def _reset_system_metrics() -> Iterator[None]:
    disable_system_metrics()
    yield
    disable_system_metrics()


@pytest.fixture
def provider() -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield provider, reader
    provider.shutdown()


def collect_in_new_thread(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Collect the way an exporter or a scrape handler does: from a thread of its own."""
    out: dict[str, MetricsData | None] = {}
    thread = threading.Thread(target=lambda: out.update(data=reader.get_metrics_data()))
    thread.start()
    thread.join(30)
    data = out["data"]
    assert data is not None
    return {
        m.name: list(m.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }


def burn_cpu(seconds: float) -> None:
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass


def test_first_cpu_utilization_is_not_a_bogus_zero(
    provider: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    meter_provider, reader = provider
    assert enable_system_metrics(meter_provider=meter_provider)
    burn_cpu(0.3)

    metrics = collect_in_new_thread(reader)

    (process_cpu,) = metrics["process.cpu.utilization"]
    assert process_cpu.value > 0
    by_cpu: dict[Any, float] = {}
    for point in metrics["system.cpu.utilization"]:
        by_cpu[point.attributes["cpu"]] = by_cpu.get(point.attributes["cpu"], 0.0) + point.value
    assert by_cpu, "no system.cpu.utilization points"
    # Without a baseline every state reads exactly 0.0 (a delta over microseconds); with one,
    # user + system + idle + iowait cover most of each CPU's time (steal, nice, irq aside).
    assert all(total > 0.05 for total in by_cpu.values()), by_cpu


def test_default_set_is_exported(provider: tuple[MeterProvider, InMemoryMetricReader]) -> None:
    meter_provider, reader = provider
    enable_system_metrics(meter_provider=meter_provider)
    names = set(collect_in_new_thread(reader))
    # Disk and network may have no devices in a container; everything else is always there.
    always = {n for n in DEFAULT_SYSTEM_METRICS if not n.startswith(("system.disk", "system.net"))}
    assert always <= names
    assert not any(n.startswith("process.runtime") for n in names)
    assert "system.swap.usage" not in names


def test_enabling_twice_is_a_no_op(
    provider: tuple[MeterProvider, InMemoryMetricReader], caplog: pytest.LogCaptureFixture
) -> None:
    meter_provider, reader = provider
    assert enable_system_metrics(meter_provider=meter_provider)
    assert not enable_system_metrics(meter_provider=meter_provider)
    assert system_metrics_enabled()
    assert caplog.records == []

    with caplog.at_level(logging.WARNING, logger="voice_otel"):
        assert not enable_system_metrics(
            {"system.cpu.time": ["idle"]}, meter_provider=meter_provider
        )
    assert "already enabled" in caplog.text

    points = collect_in_new_thread(reader)["process.memory.usage"]
    assert len(points) == 1


def test_enable_follows_voice_otels_meter_provider(otel: Any) -> None:
    assert enable_system_metrics()
    assert "process.memory.usage" in otel.metrics()


def test_a_new_provider_gets_the_metrics(
    provider: tuple[MeterProvider, InMemoryMetricReader],
) -> None:
    first, _ = provider
    enable_system_metrics(meter_provider=first)
    reader = InMemoryMetricReader()
    second = MeterProvider(metric_readers=[reader])
    try:
        assert enable_system_metrics(meter_provider=second)
        assert "process.memory.usage" in collect_in_new_thread(reader)
    finally:
        second.shutdown()


def test_environment_exclusions_apply_to_the_default_set(
    provider: tuple[MeterProvider, InMemoryMetricReader], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS", "system.network.*, process.context_switches"
    )
    meter_provider, reader = provider
    enable_system_metrics(meter_provider=meter_provider)
    names = set(collect_in_new_thread(reader))
    assert "process.memory.usage" in names
    assert not {n for n in names if n.startswith("system.network")}
    assert "process.context_switches" not in names


def test_a_string_instead_of_a_list_of_states_fails() -> None:
    with pytest.raises(TypeError, match="list of states"):
        enable_system_metrics({"system.cpu.time": "idle"}, meter_provider=MeterProvider())  # type: ignore[dict-item]


def documented_names() -> dict[str, tuple[str, str]]:
    """OpenTelemetry name -> (Prometheus name from the SDK, through the collector), from docs."""
    rows = re.findall(
        r"^\| `((?:system|process|cpython)\.[a-z_.]+)` \|[^|]*\| `([a-z_]+)` \| `([a-z_]+)` \|",
        DOCS.read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    return {otel: (sdk, collector) for otel, sdk, collector in rows}


def test_documented_prometheus_names_are_what_the_exporter_writes() -> None:
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    meter_provider = MeterProvider(metric_readers=[reader])
    try:
        enable_system_metrics(meter_provider=meter_provider)
        text = generate_latest(registry).decode()
    finally:
        meter_provider.shutdown()

    exported = {
        line.split("{")[0]
        for line in text.splitlines()
        if not line.startswith("#") and f'otel_scope_name="{SCOPE}"' in line
    }
    docs = documented_names()
    assert set(docs) == set(DEFAULT_SYSTEM_METRICS)
    always = {
        sdk for otel, (sdk, _) in docs.items() if not otel.startswith(("system.disk", "system.net"))
    }
    assert always <= exported
    assert exported <= {sdk for sdk, _ in docs.values()}
    for otel, (sdk, collector) in docs.items():
        # Through the collector only gauges of unit "1" differ: they gain "_ratio".
        assert collector in (sdk, f"{sdk}_ratio"), otel
