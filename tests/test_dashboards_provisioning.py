"""Grafana provisioning files: data sources (Prometheus exemplars linked to Jaeger) and the
dashboard provider, consistent with the dashboards' datasource variable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from voice_otel import dashboards

ROOT = Path(__file__).resolve().parents[1]
PROVISIONING = ROOT / "grafana" / "provisioning"


def _load(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#"), f"{path} should open with a header comment saying what it is"
    data: dict[str, Any] = yaml.safe_load(text)
    assert data["apiVersion"] == 1
    return data


def _datasources() -> dict[str, dict[str, Any]]:
    data = _load(PROVISIONING / "datasources" / "voice-otel.yaml")
    return {ds["type"]: ds for ds in data["datasources"]}


def test_prometheus_is_the_default_datasource_with_a_fixed_uid() -> None:
    prometheus = _datasources()["prometheus"]

    assert prometheus["uid"] == "voice-prometheus"
    assert prometheus["isDefault"] is True
    assert prometheus["url"].startswith("http")


def test_exemplars_link_trace_ids_to_the_jaeger_datasource() -> None:
    sources = _datasources()
    destinations = sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]

    assert destinations == [
        {
            "name": "trace_id",
            "datasourceUid": sources["jaeger"]["uid"],
            "urlDisplayLabel": "Open trace in Jaeger",
        }
    ]
    assert sources["jaeger"]["uid"] == "voice-jaeger"


def test_exactly_one_default_datasource() -> None:
    assert sum(bool(ds.get("isDefault")) for ds in _datasources().values()) == 1


def test_dashboard_provider_loads_the_shipped_folder() -> None:
    data = _load(PROVISIONING / "dashboards" / "voice-otel.yaml")
    (provider,) = data["providers"]

    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/var/lib/grafana/dashboards")
    assert provider["allowUiUpdates"] is False


def test_every_dashboard_selects_the_provisioned_datasource_type() -> None:
    provisioned_types = set(_datasources())
    for summary in dashboards.list_dashboards():
        model = dashboards.get_dashboard(summary["uid"])
        variable = next(v for v in model["templating"]["list"] if v["name"] == "datasource")

        assert variable["type"] == "datasource"
        assert variable["query"] in provisioned_types
        # No stored choice: Grafana falls back to the default (provisioned) Prometheus.
        assert "current" not in variable or not variable["current"].get("value")
