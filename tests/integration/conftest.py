"""Fixtures that start the real stack (collector, Jaeger, Prometheus) through voice_otel.stack.

A missing program skips the test locally and fails it under CI=true (``require``). Programs run
on 127.0.0.1 with free ports, each logging to a file in the fixture's temporary directory.
Helpers for test modules (``require``, ``run_workload``, ``eventually``) are in
``_stack_support.py`` beside this file.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _stack_support import ROOT, GatewayStack, WorkloadRun, require, run_workload

from voice_otel.stack import CollectorProcess, JaegerProcess, LocalStack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Collector (otelcol.yaml) -> Jaeger, scraped by Prometheus every second."""
    require("collector", "jaeger", "prometheus")
    local = LocalStack(
        tmp_path_factory.mktemp("stack"),
        scrape_interval="1s",
        collector_env={"VOICE_OTEL_METRIC_EXPIRATION": "10m"},
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def pipeline_run(stack: LocalStack) -> WorkloadRun:
    """One run of every kind of conversation through the stack's collector (gRPC)."""
    return run_workload(
        stack.otlp_endpoint, "--kinds", "fast,slow,interrupted,error", "--repeat", "2"
    )


@pytest.fixture(scope="session")
def gateway_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    """The tail-sampling gateway (gateway.yaml) -> its own Jaeger."""
    require("collector", "jaeger")
    workdir = tmp_path_factory.mktemp("gateway")
    jaeger = JaegerProcess(workdir)
    percent = 25.0
    gateway = CollectorProcess(
        workdir,
        config=ROOT / "collector" / "gateway.yaml",
        jaeger_otlp_endpoint=jaeger.otlp_grpc_endpoint,
        env={
            "VOICE_OTEL_SAMPLING_PERCENT": str(percent),
            "VOICE_OTEL_DECISION_WAIT": "3s",
            "VOICE_OTEL_DECISION_WAIT_ROOT": "1s",
        },
        name="gateway",
    )
    jaeger.start()
    try:
        gateway.start()
    except BaseException:
        jaeger.stop()
        raise
    try:
        yield GatewayStack(jaeger, gateway, percent)
    finally:
        gateway.stop()
        jaeger.stop()
