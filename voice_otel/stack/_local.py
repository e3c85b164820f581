"""``LocalStack``: collector, Jaeger and Prometheus (and Alertmanager) on loopback, together.

Example::

    from voice_otel.stack import LocalStack

    with LocalStack(workdir=tmp_path, scrape_interval="1s") as stack:
        voice_otel.configure(service_name="my-agent", otlp_endpoint=stack.otlp_endpoint,
                             otlp_protocol="grpc", metric_export_interval=1.0)
        ...  # run the pipeline
        stack.prometheus.query("voice_turn_latency_seconds_count")
        stack.jaeger.trace(trace_id)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from voice_otel.stack._components import (
    AlertmanagerProcess,
    CollectorProcess,
    JaegerProcess,
    PrometheusProcess,
    duration_seconds,
)
from voice_otel.stack._process import ManagedProcess

__all__ = ["LocalStack"]

logger = logging.getLogger(__name__)


class LocalStack:
    """Start the bundled stack's real programs on 127.0.0.1 and stop them again.

    The collector runs ``collector/otelcol.yaml`` (or ``collector_config``) and exports traces to
    Jaeger; Prometheus scrapes the collector with a copy of ``collector/prometheus.yml``.

    Args:
        workdir: logs, Prometheus TSDB, rendered configs.
        scrape_interval: Prometheus scrape (and default rule evaluation) interval.
        evaluation_interval: rule evaluation interval, if different.
        rule_files: rule files for Prometheus; ``None`` loads the shipped
            ``collector/rules/*.yml``, ``()`` loads none.
        alertmanager: also start Alertmanager and send alerts to it.
        alertmanager_config: config for Alertmanager (default: the shipped one if present).
        collector_config: the collector config to run.
        collector_env: more ``VOICE_OTEL_*`` settings for the collector config.
        extra_scrape_configs: more Prometheus scrape jobs.
        prometheus: start Prometheus at all.
        default_ports: use the configs' default ports (4317, 16686, 9090...) instead of free ones.
        detach: leave the programs running when this Python process exits (CLI ``stack up``).

    Raises:
        ValueError: an interval is not a positive duration such as ``500ms``, ``1s``, ``5m``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        scrape_interval: str = "15s",
        evaluation_interval: str | None = None,
        rule_files: Sequence[Path] | None = None,
        alertmanager: bool = False,
        alertmanager_config: Path | None = None,
        collector_config: Path | None = None,
        collector_env: Mapping[str, str] | None = None,
        extra_scrape_configs: Sequence[Mapping[str, Any]] = (),
        prometheus: bool = True,
        default_ports: bool = False,
        detach: bool = False,
    ) -> None:
        # A bad interval fails here, not in Prometheus after the other programs have started.
        duration_seconds(scrape_interval)
        if evaluation_interval is not None:
            duration_seconds(evaluation_interval)
        self.workdir = workdir
        self.detach = detach
        workdir.mkdir(parents=True, exist_ok=True)

        self.jaeger = JaegerProcess(workdir, default_ports=default_ports)
        self.collector = CollectorProcess(
            workdir,
            config=collector_config,
            jaeger_otlp_endpoint=self.jaeger.otlp_grpc_endpoint,
            env={
                "VOICE_OTEL_SPANMETRICS_INTERVAL": _spanmetrics_interval(scrape_interval),
                **(collector_env or {}),
            },
            default_ports=default_ports,
        )
        self.alertmanager: AlertmanagerProcess | None = None
        if alertmanager:
            self.alertmanager = AlertmanagerProcess(
                workdir, config=alertmanager_config, default_ports=default_ports
            )
        self.prometheus: PrometheusProcess | None = None
        if prometheus:
            self.prometheus = PrometheusProcess(
                workdir,
                collector=self.collector,
                scrape_interval=scrape_interval,
                evaluation_interval=evaluation_interval,
                rule_files=rule_files,
                alertmanager_url=self.alertmanager.url if self.alertmanager else None,
                extra_scrape_configs=extra_scrape_configs,
                default_ports=default_ports,
            )

    @property
    def processes(self) -> list[ManagedProcess]:
        """The stack's programs in start order (a backend starts before what feeds it)."""
        procs: list[ManagedProcess] = [self.jaeger, self.collector]
        if self.alertmanager is not None:
            procs.append(self.alertmanager)
        if self.prometheus is not None:
            procs.append(self.prometheus)
        return procs

    @property
    def otlp_endpoint(self) -> str:
        """OTLP/gRPC URL of the collector: ``configure(otlp_endpoint=..., otlp_protocol="grpc")``.

        Free ports are not 4317, so say ``grpc`` explicitly (the SDK guesses gRPC only for 4317).
        """
        return self.collector.otlp_grpc_endpoint

    def start(self) -> LocalStack:
        """Start every program and wait until each is ready; on failure stop what started.

        Raises:
            StackStartError: a program exited or did not become ready.
            BinaryNotFound: a program is not installed or built.
        """
        started: list[ManagedProcess] = []
        try:
            for proc in self.processes:
                proc.start(detach=self.detach)
                started.append(proc)
        except BaseException:
            for proc in reversed(started):
                proc.stop()
            raise
        logger.info("local stack up in %s", self.workdir)
        return self

    def stop(self) -> None:
        """Stop every program (the collector first, so it can flush to Jaeger)."""
        order = [self.collector, self.jaeger]
        order += [p for p in (self.prometheus, self.alertmanager) if p is not None]
        for proc in order:
            proc.stop()

    def describe(self) -> dict[str, dict[str, Any]]:
        """Pids, URLs, logs and command lines of every program (``stack up``'s state.json).

        ``argv`` and ``env`` (the program's own ``VOICE_OTEL_*`` settings, ports among them) are
        what ``stack up`` needs to restart a program that died on the same ports.
        """
        info: dict[str, dict[str, Any]] = {
            "jaeger": {"url": self.jaeger.query_url, "otlp_grpc": self.jaeger.otlp_grpc_endpoint},
            "collector": {
                "otlp_grpc": self.collector.otlp_grpc_endpoint,
                "otlp_http": self.collector.otlp_http_endpoint,
                "metrics": f"http://{self.collector.metrics_target}/metrics",
                "telemetry": f"http://{self.collector.telemetry_target}/metrics",
                "health": self.collector.ready_url,
            },
        }
        if self.prometheus is not None:
            info["prometheus"] = {"url": self.prometheus.url}
        if self.alertmanager is not None:
            info["alertmanager"] = {"url": self.alertmanager.url}
        for proc in self.processes:
            entry = info[proc.name]
            entry.update(
                pid=proc.pid,
                ready_url=proc.ready_url,
                log=str(proc.log_path),
                argv=proc.argv,
                env=proc.env,
            )
        return info

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _spanmetrics_interval(scrape_interval: str) -> str:
    """How often span metrics are flushed, given Prometheus' scrape interval.

    The span_metrics connector clears its exemplars at every flush, so the exemplars of one
    flush are on the collector's endpoint for one flush interval only: at least 5 s (several
    short scrapes) or the scrape interval, whichever is longer, so Prometheus sees them.
    """
    return scrape_interval if duration_seconds(scrape_interval) >= 5 else "5s"
