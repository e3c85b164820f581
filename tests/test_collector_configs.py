"""Every shipped stack config is accepted by the real program that loads it.

Collector configs go through the built collector's ``validate`` command (with the variables they
read set), Jaeger's through the built Jaeger's, Prometheus' through ``promtool check config``
(which also checks the rule files it loads), and the compose file's structure is checked
offline (no Docker engine here). A missing program skips locally and fails under CI=true.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from voice_otel.stack import BinaryNotFound, find, render_prometheus_config

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR_DIR = ROOT / "collector"

pytestmark = pytest.mark.integration


def program(key: str) -> Path:
    try:
        return find(key)
    except BinaryNotFound as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"required program missing under CI: {exc}")
        pytest.skip(str(exc))


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


# config file -> (collector build, variables to set for validation)
COLLECTOR_CONFIGS = {
    "otelcol.yaml": ("collector", {}),
    "gateway.yaml": ("collector", {"VOICE_OTEL_SAMPLING_PERCENT": "12.5"}),
    "agent-loadbalancing.yaml": (
        "collector-full",
        {"VOICE_OTEL_GATEWAYS": "[gw-1.internal:4317, gw-2.internal:4317]"},
    ),
}


@pytest.mark.parametrize("name", sorted(COLLECTOR_CONFIGS))
def test_collector_config_validates_with_defaults(name: str) -> None:
    binary, _ = COLLECTOR_CONFIGS[name]
    result = run([str(program(binary)), "validate", f"--config={COLLECTOR_DIR / name}"])
    assert result.returncode == 0, result.stderr + result.stdout
    # Canonical component names only: deprecated aliases load, but with a warning.
    assert "deprecated" not in (result.stderr + result.stdout).lower()


@pytest.mark.parametrize("name", sorted(COLLECTOR_CONFIGS))
def test_collector_config_validates_with_variables_set(name: str) -> None:
    binary, extra = COLLECTOR_CONFIGS[name]
    env = {
        "VOICE_OTEL_BIND_HOST": "0.0.0.0",
        "VOICE_OTEL_OTLP_GRPC_PORT": "14000",
        "VOICE_OTEL_OTLP_HTTP_PORT": "14001",
        "VOICE_OTEL_JAEGER_OTLP_ENDPOINT": "jaeger.internal:14317",
        "VOICE_OTEL_METRIC_EXPIRATION": "30m",
        "VOICE_OTEL_MEMORY_LIMIT_MIB": "2048",
        **extra,
    }
    result = run([str(program(binary)), "validate", f"--config={COLLECTOR_DIR / name}"], env)
    assert result.returncode == 0, result.stderr + result.stdout


def test_collector_validate_rejects_a_broken_config(tmp_path: Path) -> None:
    config = yaml.safe_load((COLLECTOR_DIR / "otelcol.yaml").read_text())
    config["service"]["pipelines"]["traces"]["processors"].append("no_such_processor")
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(config))
    result = run([str(program("collector")), "validate", f"--config={broken}"])
    assert result.returncode != 0
    assert "no_such_processor" in result.stderr + result.stdout


@pytest.mark.parametrize("name", ["otelcol.yaml", "gateway.yaml", "agent-loadbalancing.yaml"])
def test_memory_limiter_is_first_in_every_pipeline(name: str) -> None:
    config = yaml.safe_load((COLLECTOR_DIR / name).read_text())
    for pipeline in config["service"]["pipelines"].values():
        assert pipeline["processors"][0] == "memory_limiter"


def test_jaeger_config_validates() -> None:
    result = run([str(program("jaeger")), "validate", f"--config={COLLECTOR_DIR / 'jaeger.yaml'}"])
    assert result.returncode == 0, result.stderr + result.stdout


def test_prometheus_config_passes_promtool() -> None:
    result = run(
        [str(program("promtool")), "check", "config", str(COLLECTOR_DIR / "prometheus.yml")]
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_rendered_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    config = render_prometheus_config(
        collector=None,
        scrape_interval="1s",
        evaluation_interval="1s",
        rule_files=(),
        alertmanager_url="http://127.0.0.1:19093",
    )
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = run([str(program("promtool")), "check", "config", str(path)])
    assert result.returncode == 0, result.stderr + result.stdout


def test_compose_file_mounts_existing_files_into_official_images() -> None:
    compose = yaml.safe_load((COLLECTOR_DIR / "compose.yaml").read_text())
    services = compose["services"]
    images = {name: service["image"] for name, service in services.items()}
    expected = {
        "otel-collector": "otel/opentelemetry-collector-contrib",
        "jaeger": "jaegertracing/jaeger",
        "prometheus": "prom/prometheus",
        "alertmanager": "prom/alertmanager",
        "grafana": "grafana/grafana",
    }
    for name, repository in expected.items():
        assert name in services, f"compose.yaml has no service {name}"
        assert repository in images[name], f"{name} does not use {repository}"

    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert (COLLECTOR_DIR / source).exists(), f"{name} mounts missing {source}"

    # Each config a service is told to load is one of the mounted files.
    for name, service in services.items():
        targets = [v.split(":")[1] for v in service.get("volumes", [])]
        for arg in service.get("command", []):
            if "config" in arg and "=" in arg:
                loaded = arg.split("=", 1)[1]
                assert any(loaded.startswith(t) for t in targets), f"{name}: {loaded} not mounted"

    # Every file Alertmanager reads a secret from is mounted, from a file that exists by default.
    secrets = compose["secrets"]
    mounted = {
        entry["target"]: entry["source"] for entry in services["alertmanager"].get("secrets", [])
    }
    alertmanager = (COLLECTOR_DIR / "alertmanager.yml").read_text()
    wanted = set(re.findall(r"credentials_file: (\S+)", alertmanager))
    assert wanted, "alertmanager.yml reads no token file"
    for path in wanted:
        assert path in mounted, f"alertmanager reads {path}, which compose.yaml does not mount"
        default = re.fullmatch(r"\$\{\w+:-(.+)\}", secrets[mounted[path]]["file"])
        assert default and (COLLECTOR_DIR / default.group(1)).exists(), secrets[mounted[path]]

    # One network namespace: every other service joins the collector's, so localhost works.
    for name, service in services.items():
        if name != "otel-collector":
            assert service.get("network_mode") == "service:otel-collector", name
