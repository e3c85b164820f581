"""The bundled stack on one machine: collector, Jaeger, Prometheus and Alertmanager.

Finds the programs (the collector and Jaeger built by ``scripts/build-stack``, Prometheus and
Alertmanager from the system), starts each on 127.0.0.1 with the shipped configs, waits until
it is ready and stops it again. Used by ``voice-otel stack up|down|status`` and by the
integration tests.

Example::

    from voice_otel.stack import LocalStack

    with LocalStack(workdir=Path("/tmp/stack"), scrape_interval="1s") as stack:
        print(stack.otlp_endpoint, stack.jaeger.query_url, stack.prometheus.url)
"""

from __future__ import annotations

from voice_otel.stack._binaries import PROGRAMS, BinaryNotFound, cache_dir, config_dir, find
from voice_otel.stack._components import (
    AlertmanagerProcess,
    CollectorProcess,
    JaegerProcess,
    PrometheusProcess,
    render_prometheus_config,
)
from voice_otel.stack._local import LocalStack
from voice_otel.stack._otlp_json import StoredSpan, parse_otlp_json
from voice_otel.stack._process import ManagedProcess, StackStartError, free_port, wait_for_http

__all__ = [
    "PROGRAMS",
    "AlertmanagerProcess",
    "BinaryNotFound",
    "CollectorProcess",
    "JaegerProcess",
    "LocalStack",
    "ManagedProcess",
    "PrometheusProcess",
    "StackStartError",
    "StoredSpan",
    "cache_dir",
    "config_dir",
    "find",
    "free_port",
    "parse_otlp_json",
    "render_prometheus_config",
    "wait_for_http",
]
