"""Project rules for dashboards, beyond Grafana's schema.

Each panel has a unit and a description and queries the ``${datasource}`` variable; uids are
stable and readable; panel ids are unique; every template variable a query uses is defined;
``histogram_quantile`` keeps ``le`` and is guarded against NaN; latency time series ask for
exemplars; every metric a query names is in the contract or a documented external source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from voice_otel.dashboards._external import KNOWN_SERIES
from voice_otel.dashboards._panels import DATASOURCE_VAR, TAG

UID_PATTERN = re.compile(r"^voice-[a-z0-9]+(-[a-z0-9]+)*$")
GRAFANA_UID_MAX = 40
BUILTIN_VARIABLES = frozenset({"__rate_interval", "__range", "__interval", "__all"})
# Grafana unit ids the dashboards use; custom units are written "suffix: ...".
UNITS = frozenset(
    {"s", "ms", "percentunit", "reqps", "currencyUSD", "bytes", "Bps", "none", "short"}
)

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' r"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_BRACES = re.compile(r"\{[^}]*\}")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w$:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "offset", "bool", "inf", "nan"}
)
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_QUANTILE = re.compile(r"histogram_quantile\(\s*[\d.]+\s*,\s*sum by \(le\b")


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (functions, labels and keywords aside)."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub("", text)
    text = _BRACKETS.sub("", text)
    text = _GROUPING.sub("", text)
    return {m for m in _IDENT.findall(text) if m.lower() not in _KEYWORDS}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, rows and panels nested in collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Every (panel, target) pair with a PromQL expression."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel, target


def lint(dashboard: dict[str, Any]) -> list[str]:
    """Rule violations in a dashboard JSON model; empty when it follows every rule."""
    problems: list[str] = []
    problems += _lint_dashboard(dashboard)
    defined = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}

    seen_ids: set[int] = set()
    for panel in panels(dashboard):
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        panel_id = panel.get("id")
        if not isinstance(panel_id, int) or panel_id <= 0:
            problems.append(f"{where}: id must be a positive integer")
        elif panel_id in seen_ids:
            problems.append(f"{where}: duplicate panel id")
        else:
            seen_ids.add(panel_id)
        grid = panel.get("gridPos", {})
        if grid.get("x", 0) + grid.get("w", 0) > 24:
            problems.append(f"{where}: wider than the 24-column grid")
        if panel.get("type") != "row":
            problems += [f"{where}: {p}" for p in _lint_panel(panel, defined)]
    return problems


def _lint_dashboard(dashboard: dict[str, Any]) -> list[str]:
    problems = []
    uid = dashboard.get("uid", "")
    if not UID_PATTERN.match(uid) or len(uid) > GRAFANA_UID_MAX:
        problems.append(f"uid {uid!r}: want voice-<words>, at most {GRAFANA_UID_MAX} characters")
    for key in ("title", "description"):
        if not dashboard.get(key):
            problems.append(f"dashboard {key} is empty")
    if TAG not in dashboard.get("tags", []):
        problems.append(f"dashboard is not tagged {TAG!r}")
    if "__inputs" in dashboard or "${DS_" in str(dashboard):
        problems.append("import-time inputs (__inputs, ${DS_...}) do not resolve when provisioned")
    variables = dashboard.get("templating", {}).get("list", [])
    source = [v for v in variables if v.get("name") == DATASOURCE_VAR]
    if (
        not source
        or source[0].get("type") != "datasource"
        or source[0].get("query") != "prometheus"
    ):
        problems.append(f"no {DATASOURCE_VAR!r} variable of type datasource/prometheus")
    for variable in variables:
        if variable.get("type") == "query" and variable.get("datasource") != _DATASOURCE_REF:
            problems.append(f"variable {variable.get('name')!r}: not on ${{{DATASOURCE_VAR}}}")
    return problems


_DATASOURCE_REF = {"type": "prometheus", "uid": f"${{{DATASOURCE_VAR}}}"}


def _lint_panel(panel: dict[str, Any], defined: set[str]) -> list[str]:
    problems = []
    if not panel.get("title"):
        problems.append("no title")
    if not panel.get("description"):
        problems.append("no description")
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    if not unit:
        problems.append("no unit")
    elif unit not in UNITS and not unit.startswith("suffix:"):
        problems.append(f"unit {unit!r} is not one of {sorted(UNITS)} or suffix:")
    if panel.get("datasource") != _DATASOURCE_REF:
        problems.append(f"datasource is {panel.get('datasource')!r}, not the variable")
    targets = panel.get("targets", [])
    if not targets:
        problems.append("no query")
    ref_ids = [t.get("refId") for t in targets]
    if len(set(ref_ids)) != len(ref_ids) or not all(ref_ids):
        problems.append(f"refIds {ref_ids} are not unique")
    for target in targets:
        problems += _lint_target(panel, target, defined)
    return problems


def _lint_target(panel: dict[str, Any], target: dict[str, Any], defined: set[str]) -> list[str]:
    problems = []
    expr = target.get("expr", "")
    ref = target.get("refId")
    if not expr:
        return [f"query {ref}: empty"]
    if target.get("datasource", _DATASOURCE_REF) != _DATASOURCE_REF:
        problems.append(f"query {ref}: datasource is not the variable")
    for match in _VARIABLE.finditer(expr):
        variable = match.group(1) or match.group(2)
        if variable not in defined and variable not in BUILTIN_VARIABLES:
            problems.append(f"query {ref}: variable ${variable} is not defined")
    unknown = metric_names(expr) - KNOWN_SERIES
    if unknown:
        problems.append(f"query {ref}: metrics outside the contract and sources: {sorted(unknown)}")
    quantiles = expr.count("histogram_quantile(")
    if quantiles:
        if len(_QUANTILE.findall(expr)) != quantiles:
            problems.append(f"query {ref}: histogram_quantile without `sum by (le, ...)`")
        if " and (" not in expr:
            problems.append(f"query {ref}: histogram_quantile not guarded against NaN")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        latency = panel.get("type") == "timeseries" and unit in ("s", "ms")
        if latency and not target.get("exemplar"):
            problems.append(f"query {ref}: latency time series without exemplars")
    return problems
