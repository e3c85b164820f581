"""The programs of the local stack, each with its ports, config and readiness check.

Every component listens on 127.0.0.1 only. Ports are either the defaults of the shipped configs
(``voice-otel stack up``) or free ports picked at start (tests, several stacks side by side).
The collector and Jaeger read the shipped YAML files as they are, with ports passed through the
``VOICE_OTEL_*`` variables those files declare; Prometheus gets a copy of
``collector/prometheus.yml`` with its targets, intervals and rule files filled in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from voice_otel.alerts._promql import duration_parts, parse_seconds
from voice_otel.stack._binaries import config_dir, find
from voice_otel.stack._otlp_json import StoredSpan, parse_otlp_json
from voice_otel.stack._process import LOOPBACK, ManagedProcess, free_port

__all__ = [
    "AlertmanagerProcess",
    "CollectorProcess",
    "JaegerProcess",
    "PrometheusProcess",
    "render_prometheus_config",
]

logger = logging.getLogger(__name__)

COLLECTOR_DEFAULT_PORTS: Mapping[str, int] = {
    "VOICE_OTEL_OTLP_GRPC_PORT": 4317,
    "VOICE_OTEL_OTLP_HTTP_PORT": 4318,
    "VOICE_OTEL_PROMETHEUS_PORT": 8889,
    "VOICE_OTEL_TELEMETRY_PORT": 8888,
    "VOICE_OTEL_HEALTH_PORT": 13133,
    "VOICE_OTEL_ZPAGES_PORT": 55679,
    "VOICE_OTEL_PPROF_PORT": 1777,
}
JAEGER_DEFAULT_PORTS: Mapping[str, int] = {
    "VOICE_OTEL_JAEGER_OTLP_GRPC_PORT": 14317,
    "VOICE_OTEL_JAEGER_OTLP_HTTP_PORT": 14318,
    "VOICE_OTEL_JAEGER_QUERY_PORT": 16686,
    "VOICE_OTEL_JAEGER_QUERY_GRPC_PORT": 16685,
    "VOICE_OTEL_JAEGER_HEALTH_PORT": 13134,
    "VOICE_OTEL_JAEGER_METRICS_PORT": 14269,
}
PROMETHEUS_DEFAULT_PORT = 9090
WEBHOOK_TOKEN_FILE = "/etc/alertmanager/secrets/webhook-token"  # collector/alertmanager.yml
ALERTMANAGER_DEFAULT_PORT = 9093

# Scrape jobs of collector/prometheus.yml that the stack points at its own collector.
COLLECTOR_EXPORTER_JOB = "voice-otel-collector"
COLLECTOR_TELEMETRY_JOB = "otelcol"


def _ports(defaults: Mapping[str, int], use_defaults: bool) -> dict[str, int]:
    return {name: (port if use_defaults else free_port()) for name, port in defaults.items()}


class CollectorProcess(ManagedProcess):
    """The collector built by ``scripts/build-stack``, running one of the shipped configs.

    Args:
        workdir: where its log goes.
        config: a config file; default ``collector/otelcol.yaml``.
        jaeger_otlp_endpoint: ``host:port`` of Jaeger's OTLP/gRPC receiver.
        env: more ``VOICE_OTEL_*`` settings for the config (e.g. sampling percentage).
        default_ports: use the config's default ports instead of free ones.
        binary: which build to run (``collector`` or ``collector-full``).
        name: label for logs and errors.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        config: Path | None = None,
        jaeger_otlp_endpoint: str | None = None,
        env: Mapping[str, str] | None = None,
        default_ports: bool = False,
        binary: str = "collector",
        name: str = "collector",
    ) -> None:
        self.config = config or config_dir() / "otelcol.yaml"
        self.ports = _ports(COLLECTOR_DEFAULT_PORTS, default_ports)
        settings = {"VOICE_OTEL_BIND_HOST": LOOPBACK, **{k: str(v) for k, v in self.ports.items()}}
        if jaeger_otlp_endpoint:
            settings["VOICE_OTEL_JAEGER_OTLP_ENDPOINT"] = jaeger_otlp_endpoint
        settings.update(env or {})
        super().__init__(
            name,
            [str(find(binary)), f"--config={self.config}"],
            log_path=workdir / f"{name}.log",
            env=settings,
            ready_url=f"http://{LOOPBACK}:{self.ports['VOICE_OTEL_HEALTH_PORT']}/",
        )

    @property
    def otlp_grpc_endpoint(self) -> str:
        """OTLP/gRPC URL for ``voice_otel.configure(otlp_endpoint=...)``."""
        return f"http://{LOOPBACK}:{self.ports['VOICE_OTEL_OTLP_GRPC_PORT']}"

    @property
    def otlp_http_endpoint(self) -> str:
        """OTLP/HTTP base URL (``/v1/traces`` and ``/v1/metrics`` are appended by clients)."""
        return f"http://{LOOPBACK}:{self.ports['VOICE_OTEL_OTLP_HTTP_PORT']}"

    @property
    def metrics_target(self) -> str:
        """``host:port`` of the prometheus exporter (SDK metrics and span metrics)."""
        return f"{LOOPBACK}:{self.ports['VOICE_OTEL_PROMETHEUS_PORT']}"

    @property
    def telemetry_target(self) -> str:
        """``host:port`` of the collector's own metrics."""
        return f"{LOOPBACK}:{self.ports['VOICE_OTEL_TELEMETRY_PORT']}"

    def scrape(self, *, openmetrics: bool = True) -> str:
        """The text of the prometheus exporter's endpoint, as Prometheus would get it."""
        accept = "application/openmetrics-text;version=1.0.0" if openmetrics else "text/plain"
        response = httpx.get(
            f"http://{self.metrics_target}/metrics", headers={"Accept": accept}, timeout=5.0
        )
        response.raise_for_status()
        return response.text


class JaegerProcess(ManagedProcess):
    """Jaeger v2 (in-memory storage) from ``tools/jaeger``, running ``collector/jaeger.yaml``."""

    def __init__(
        self, workdir: Path, *, default_ports: bool = False, config: Path | None = None
    ) -> None:
        self.config = config or config_dir() / "jaeger.yaml"
        self.ports = _ports(JAEGER_DEFAULT_PORTS, default_ports)
        settings = {"VOICE_OTEL_BIND_HOST": LOOPBACK, **{k: str(v) for k, v in self.ports.items()}}
        super().__init__(
            "jaeger",
            [str(find("jaeger")), f"--config={self.config}"],
            log_path=workdir / "jaeger.log",
            env=settings,
            ready_url=f"{self._query_url()}/api/services",
        )

    def _query_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['VOICE_OTEL_JAEGER_QUERY_PORT']}"

    @property
    def query_url(self) -> str:
        """Base URL of the query API and UI."""
        return self._query_url()

    @property
    def otlp_grpc_endpoint(self) -> str:
        """``host:port`` of Jaeger's OTLP/gRPC receiver (what the collector exports to)."""
        return f"{LOOPBACK}:{self.ports['VOICE_OTEL_JAEGER_OTLP_GRPC_PORT']}"

    def get_trace(self, trace_id: str) -> list[StoredSpan] | None:
        """The spans of one trace from the query API (``/api/v3/traces/{id}``).

        Returns ``None`` when Jaeger does not have the trace (yet).
        """
        response = httpx.get(f"{self.query_url}/api/v3/traces/{trace_id}", timeout=10.0)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        spans = parse_otlp_json(response.json().get("result") or {})
        return spans or None

    def services(self) -> list[str]:
        """Service names Jaeger has seen (``/api/v3/services``)."""
        response = httpx.get(f"{self.query_url}/api/v3/services", timeout=10.0)
        response.raise_for_status()
        return list(response.json().get("services") or [])


class PrometheusProcess(ManagedProcess):
    """Prometheus (Debian package) with a copy of ``collector/prometheus.yml``.

    Args:
        workdir: for the rendered config, the TSDB and the log.
        collector: the collector whose endpoints the shipped scrape jobs point at.
        scrape_interval: e.g. ``"1s"`` in tests.
        evaluation_interval: rule evaluation interval; defaults to ``scrape_interval``.
        rule_files: rule files to load; ``None`` loads the shipped ``collector/rules/*.yml``.
        alertmanager_url: where alerts go (``http://host:port``), or ``None`` for nowhere.
        extra_scrape_configs: more scrape jobs, as Prometheus config mappings.
        default_ports: listen on 9090 instead of a free port.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        collector: CollectorProcess | None,
        scrape_interval: str = "15s",
        evaluation_interval: str | None = None,
        rule_files: Sequence[Path] | None = None,
        alertmanager_url: str | None = None,
        extra_scrape_configs: Sequence[Mapping[str, Any]] = (),
        default_ports: bool = False,
    ) -> None:
        self.port = PROMETHEUS_DEFAULT_PORT if default_ports else free_port()
        self.config_path = workdir / "prometheus.yml"
        config = render_prometheus_config(
            collector=collector,
            scrape_interval=scrape_interval,
            evaluation_interval=evaluation_interval or scrape_interval,
            rule_files=rule_files,
            alertmanager_url=alertmanager_url,
            extra_scrape_configs=extra_scrape_configs,
        )
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        super().__init__(
            "prometheus",
            [
                str(find("prometheus")),
                f"--config.file={self.config_path}",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                # Links in alerts (generatorURL) point where Prometheus listens, not at the host.
                f"--web.external-url=http://{LOOPBACK}:{self.port}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                "--enable-feature=exemplar-storage",
                "--web.enable-lifecycle",
                "--web.enable-admin-api",
            ],
            log_path=workdir / "prometheus.log",
            ready_url=f"http://{LOOPBACK}:{self.port}/-/ready",
        )

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://{LOOPBACK}:{self.port}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; returns the result vector (``[]`` when empty)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10.0)
        response.raise_for_status()
        return list(response.json()["data"]["result"])

    def series_names(self) -> set[str]:
        """Every metric name Prometheus has stored."""
        response = httpx.get(f"{self.url}/api/v1/label/__name__/values", timeout=10.0)
        response.raise_for_status()
        return set(response.json()["data"])

    def query_exemplars(self, promql: str, start: float, end: float) -> list[dict[str, Any]]:
        """Exemplars of the series selected by ``promql`` between two UNIX times."""
        response = httpx.get(
            f"{self.url}/api/v1/query_exemplars",
            params={"query": promql, "start": start, "end": end},
            timeout=10.0,
        )
        response.raise_for_status()
        return list(response.json()["data"])

    def reload(self) -> None:
        """Re-read the config and rule files (``POST /-/reload``)."""
        httpx.post(f"{self.url}/-/reload", timeout=10.0).raise_for_status()


def render_prometheus_config(
    *,
    collector: CollectorProcess | None,
    scrape_interval: str,
    evaluation_interval: str,
    rule_files: Sequence[Path] | None,
    alertmanager_url: str | None,
    extra_scrape_configs: Sequence[Mapping[str, Any]] = (),
    source: Path | None = None,
) -> dict[str, Any]:
    """Fill the shipped ``prometheus.yml`` in with this stack's endpoints and intervals.

    Raises:
        ValueError: the shipped file lacks a scrape job the stack relies on.
    """
    source = source or config_dir() / "prometheus.yml"
    config: dict[str, Any] = yaml.safe_load(source.read_text())

    glob = config.setdefault("global", {})
    glob["scrape_interval"] = scrape_interval
    glob["scrape_timeout"] = scrape_interval if duration_seconds(scrape_interval) < 10 else "10s"
    glob["evaluation_interval"] = evaluation_interval

    if rule_files is None:
        config["rule_files"] = [str(source.parent / pattern) for pattern in config["rule_files"]]
    else:
        config["rule_files"] = [str(Path(path).resolve()) for path in rule_files]

    if alertmanager_url is None:
        config.pop("alerting", None)
    else:
        target = alertmanager_url.split("://", 1)[-1].rstrip("/")
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [target]}]}]}

    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for required in (COLLECTOR_EXPORTER_JOB, COLLECTOR_TELEMETRY_JOB):
        if required not in jobs:
            raise ValueError(f"{source} has no scrape job {required!r}")
    if collector is None:
        config["scrape_configs"] = []
    else:
        jobs[COLLECTOR_EXPORTER_JOB]["static_configs"] = [{"targets": [collector.metrics_target]}]
        jobs[COLLECTOR_TELEMETRY_JOB]["static_configs"] = [
            {"targets": [collector.telemetry_target]}
        ]
    config["scrape_configs"].extend(dict(job) for job in extra_scrape_configs)
    return config


def duration_seconds(duration: str) -> float:
    """Seconds in a duration both Prometheus and the collector read: ``500ms``, ``5m``, ``1m30s``.

    A Prometheus duration greater than zero, without ``d``, which the collector (Go's
    ``time.ParseDuration``) does not know.

    Raises:
        ValueError: anything else (``abc``, ``-5s``, ``0s``, ``1.5s``, ``1d``).
    """
    try:
        parts = duration_parts(duration)
    except ValueError:
        parts = {}
    if not parts or "d" in parts:
        raise ValueError(
            f"unsupported duration {duration!r}: use whole numbers greater than 0 with units "
            "h, m, s or ms, e.g. 1s, 500ms, 1m30s"
        )
    return parse_seconds(duration)


class AlertmanagerProcess(ManagedProcess):
    """Alertmanager (Debian package) on loopback, without a cluster (gossip) port.

    Args:
        workdir: for its data and log.
        config: an ``alertmanager.yml``; default ``collector/alertmanager.yml`` when it exists,
            else a minimal one that routes everything to a receiver with no integration.
        default_ports: listen on 9093 instead of a free port.
    """

    def __init__(
        self, workdir: Path, *, config: Path | None = None, default_ports: bool = False
    ) -> None:
        self.port = ALERTMANAGER_DEFAULT_PORT if default_ports else free_port()
        self.config = config or _default_alertmanager_config(workdir)
        super().__init__(
            "alertmanager",
            [
                str(find("alertmanager")),
                f"--config.file={self.config}",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                f"--web.external-url=http://{LOOPBACK}:{self.port}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                "--cluster.listen-address=",
            ],
            log_path=workdir / "alertmanager.log",
            ready_url=f"http://{LOOPBACK}:{self.port}/-/ready",
        )

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://{LOOPBACK}:{self.port}"


def _default_alertmanager_config(workdir: Path) -> Path:
    shipped = config_dir() / "alertmanager.yml"
    workdir.mkdir(parents=True, exist_ok=True)
    if shipped.is_file():
        # The shipped config reads its webhook token from /etc/alertmanager/secrets (the compose
        # secret); here it reads a placeholder token in the workdir, so notifications fail only
        # when nothing listens at the receivers' URLs.
        token = workdir / "webhook-token"
        if not token.exists():
            example = config_dir() / "secrets" / "webhook-token.example"
            token.write_text(example.read_text() if example.is_file() else "local-stack\n")
        text = shipped.read_text().replace(
            f"credentials_file: {WEBHOOK_TOKEN_FILE}", f"credentials_file: {token}"
        )
        path = workdir / "alertmanager.yml"
        path.write_text(text)
        return path
    path = workdir / "alertmanager.yml"
    path.write_text(
        yaml.safe_dump({"route": {"receiver": "default"}, "receivers": [{"name": "default"}]})
    )
    logger.info("no %s: using a minimal Alertmanager config", shipped)
    return path
