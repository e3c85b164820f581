"""Dashboard rules (unit, description, datasource variable, uid, ids, PromQL habits, known
metrics) and validation against Grafana's dashboard schema (grafana-foundation-sdk models)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from voice_otel import dashboards
from voice_otel.dashboards._lint import lint, metric_names, panels
from voice_otel.dashboards._schema import schema_errors

UIDS = [d["uid"] for d in dashboards.list_dashboards()]


@pytest.mark.parametrize("uid", UIDS)
def test_dashboard_follows_every_rule(uid: str) -> None:
    assert lint(dashboards.get_dashboard(uid)) == []


@pytest.mark.parametrize("uid", UIDS)
def test_dashboard_conforms_to_the_grafana_schema(uid: str) -> None:
    assert schema_errors(dashboards.get_dashboard(uid)) == []


def _first_panel(model: dict[str, Any], kind: str = "timeseries") -> dict[str, Any]:
    return next(p for p in panels(model) if p["type"] == kind)


def _drop_unit(m: dict[str, Any]) -> None:
    del _first_panel(m)["fieldConfig"]["defaults"]["unit"]


def _drop_description(m: dict[str, Any]) -> None:
    del _first_panel(m)["description"]


def _fixed_datasource(m: dict[str, Any]) -> None:
    _first_panel(m)["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}


def _duplicate_id(m: dict[str, Any]) -> None:
    ids = [p for p in panels(m)]
    ids[2]["id"] = ids[1]["id"]


def _bad_uid(m: dict[str, Any]) -> None:
    m["uid"] = "Voice Overview"


def _unknown_metric(m: dict[str, Any]) -> None:
    _first_panel(m)["targets"][0]["expr"] = "sum(rate(voice_turn_latency_ms_bucket[5m]))"


def _quantile_without_le(m: dict[str, Any]) -> None:
    _first_panel(m)["targets"][0]["expr"] = (
        "histogram_quantile(0.95, sum by (job) (rate(voice_turn_latency_seconds_bucket[5m]))) "
        "and (sum(rate(voice_turn_latency_seconds_count[5m])) > 0)"
    )


def _quantile_without_guard(m: dict[str, Any]) -> None:
    _first_panel(m)["targets"][0]["expr"] = (
        "histogram_quantile(0.95, sum by (le) (rate(voice_turn_latency_seconds_bucket[5m])))"
    )


def _undefined_variable(m: dict[str, Any]) -> None:
    _first_panel(m)["targets"][0]["expr"] = 'sum(voice_turns_total{region=~"$region"})'


def _no_exemplars(m: dict[str, Any]) -> None:
    for panel in panels(m):
        for target in panel.get("targets", []):
            target.pop("exemplar", None)


def _import_inputs(m: dict[str, Any]) -> None:
    m["__inputs"] = [{"name": "DS_PROMETHEUS", "type": "datasource"}]


def _no_datasource_variable(m: dict[str, Any]) -> None:
    m["templating"]["list"] = [v for v in m["templating"]["list"] if v["name"] != "datasource"]


FAULTS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "missing unit": (_drop_unit, "no unit"),
    "missing description": (_drop_description, "no description"),
    "fixed datasource": (_fixed_datasource, "not the variable"),
    "duplicate panel id": (_duplicate_id, "duplicate panel id"),
    "unreadable uid": (_bad_uid, "uid"),
    "metric outside the contract": (_unknown_metric, "voice_turn_latency_ms_bucket"),
    "quantile dropping le": (_quantile_without_le, "without `sum by (le"),
    "quantile without NaN guard": (_quantile_without_guard, "NaN"),
    "undefined variable": (_undefined_variable, "$region"),
    "latency without exemplars": (_no_exemplars, "exemplars"),
    "import-time inputs": (_import_inputs, "__inputs"),
    "no datasource variable": (_no_datasource_variable, "datasource"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_lint_reports_each_kind_of_fault(fault: str) -> None:
    model = dashboards.get_dashboard("voice-overview")
    spoil, expected = FAULTS[fault]
    spoil(model)

    problems = lint(model)

    assert any(expected in p for p in problems), problems


def test_schema_validation_reports_unknown_keys_and_wrong_types() -> None:
    model = dashboards.get_dashboard("voice-overview")
    panel = _first_panel(model)
    panel["fieldConfig"]["defaults"]["unitt"] = "s"
    panel["gridPos"]["w"] = "wide"
    stat = _first_panel(model, "stat")
    stat["options"]["graphMode"] = "sparkles"
    panel["targets"][0]["exemplar"] = "yes"

    errors = "\n".join(schema_errors(model))

    assert "unitt: not part of the schema" in errors
    assert "grid_pos.w" in errors
    assert "graph_mode" in errors
    assert "exemplar" in errors


def test_schema_validation_reports_a_query_of_an_unknown_datasource_type() -> None:
    model = copy.deepcopy(dashboards.get_dashboard("voice-health"))
    panel = _first_panel(model)
    panel["datasource"] = {"type": "made-up", "uid": "x"}
    for target in panel["targets"]:
        target["datasource"] = {"type": "made-up", "uid": "x"}

    assert any("unknown data source" in e for e in schema_errors(model))


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('sum by (le, job) (rate(a_bucket{job=~"$job"}[$__rate_interval]))', {"a_bucket"}),
        ("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m]))) and (sum(rate(x_count[5m])))",
         {"x_bucket", "x_count"}),
        ('count(ALERTS{alertstate="firing"}) or vector(0)', {"ALERTS"}),
        ("a_total * 0 + $objective", {"a_total"}),
        ('b and on (job, instance) target_info{env=~"${env}(.0)?"}', {"b", "target_info"}),
        ("1 - (1 - (c)) / (1 - $slo_target) offset 5m", {"c"}),
        ("sum without (cpu) (d) / ignoring (mode) group_left (x) e", {"d", "e"}),
    ],
)  # fmt: skip
def test_metric_names_finds_series_and_ignores_functions_labels_and_variables(
    expr: str, names: set[str]
) -> None:
    assert metric_names(expr) == names
