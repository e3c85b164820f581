"""The Helm values in deploy/helm/ fit the collector configs they run.

The values files configure the official OpenTelemetry Collector chart around our configs
(mounted unchanged from a ConfigMap): every variable they set must be one the config reads,
every port they open must be one the config listens on, and the config must validate with
exactly those variables, checked by the built collector. Helm itself is not run here.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from voice_otel.stack import BinaryNotFound, find

ROOT = Path(__file__).resolve().parents[1]
HELM = ROOT / "deploy" / "helm"
COLLECTOR = ROOT / "collector"

# values file -> the configs it may run, with the collector build that has their components
RUNS = {
    "values-agent.yaml": {
        "agent-loadbalancing.yaml": "collector-full",
        "otelcol.yaml": "collector",
    },
    "values-gateway.yaml": {"gateway.yaml": "collector"},
}


def values(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((HELM / name).read_text()))


def env_of(name: str) -> dict[str, str]:
    return {e["name"]: str(e["value"]) for e in values(name)["extraEnvs"]}


def variables_read(config: str) -> set[str]:
    return set(re.findall(r"\$\{env:([A-Z0-9_]+)", (COLLECTOR / config).read_text()))


def default_port(config: str, variable: str) -> int:
    match = re.search(rf"\$\{{env:{variable}:-(\d+)\}}", (COLLECTOR / config).read_text())
    assert match, f"{config} has no default for {variable}"
    return int(match.group(1))


def test_values_files_are_the_ones_described() -> None:
    assert {p.name for p in HELM.glob("*.yaml")} == set(RUNS)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_image_is_the_release_the_build_manifest_pins(name: str) -> None:
    manifest = yaml.safe_load((COLLECTOR / "builder-config.yaml").read_text())
    image = values(name)["image"]
    assert image["repository"] == "otel/opentelemetry-collector-contrib"
    assert image["tag"] == manifest["dist"]["version"]
    assert values(name)["command"]["name"] == "otelcol-contrib"


@pytest.mark.parametrize("name", sorted(RUNS))
def test_config_comes_from_an_existing_configmap(name: str) -> None:
    config_map = values(name)["configMap"]
    assert config_map["create"] is False
    assert config_map["existingName"]
    header = (HELM / name).read_text().split("\n\n", 1)[0]
    assert f"create configmap {config_map['existingName']}" in header
    assert "--from-file=relay=collector/" in header


@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_variable_set_is_read_by_a_config_it_runs(name: str) -> None:
    read = set().union(*(variables_read(c) for c in RUNS[name]))
    assert set(env_of(name)) <= read


@pytest.mark.parametrize("name", sorted(RUNS))
def test_open_ports_are_the_ports_the_configs_listen_on(name: str) -> None:
    listens = set()
    for config in RUNS[name]:
        for variable in variables_read(config):
            if variable.endswith("_PORT"):
                listens.add(default_port(config, variable))
    ports = {k: p for k, p in values(name)["ports"].items() if p.get("enabled")}
    assert {p["containerPort"] for p in ports.values()} <= listens
    assert {4317, 4318, 8888} <= {p["containerPort"] for p in ports.values()}
    for probe in ("livenessProbe", "readinessProbe"):
        assert values(name)[probe]["httpGet"]["port"] in listens


def test_agent_serves_the_metrics_prometheus_scrapes() -> None:
    ports = values("values-agent.yaml")["ports"]
    assert ports["voice-metrics"]["containerPort"] == default_port(
        "otelcol.yaml", "VOICE_OTEL_PROMETHEUS_PORT"
    )
    endpoints = {
        e["port"]: e for e in values("values-agent.yaml")["podMonitor"]["metricsEndpoints"]
    }
    assert endpoints["voice-metrics"]["honorLabels"] is True
    assert set(endpoints) <= {k for k, p in ports.items() if p.get("enabled")}


def test_agents_route_to_every_gateway_replica() -> None:
    gateway = values("values-gateway.yaml")
    assert gateway["mode"] == "statefulset"
    assert gateway["service"]["clusterIP"] == "None"
    name = gateway["fullnameOverride"]
    listed = yaml.safe_load(env_of("values-agent.yaml")["VOICE_OTEL_GATEWAYS"])
    assert listed == [f"{name}-{i}.{name}:4317" for i in range(gateway["replicaCount"])]


def mebibytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_memory_limiter_stays_below_the_container_limit(name: str) -> None:
    limit = mebibytes(values(name)["resources"]["limits"]["memory"])
    hard = int(env_of(name)["VOICE_OTEL_MEMORY_LIMIT_MIB"])
    assert 0.7 * limit <= hard <= 0.85 * limit


def program(key: str) -> Path:
    try:
        return find(key)
    except BinaryNotFound as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"required program missing under CI: {exc}")
        pytest.skip(str(exc))


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "config"), [(n, c) for n, configs in sorted(RUNS.items()) for c in sorted(configs)]
)
def test_config_validates_with_the_values_environment(name: str, config: str) -> None:
    binary = program(RUNS[name][config])
    result = subprocess.run(
        [str(binary), "validate", f"--config={COLLECTOR / config}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env_of(name)},
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
