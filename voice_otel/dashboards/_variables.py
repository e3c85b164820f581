"""Template variables shared by the dashboards.

Every label variable is multi-valued with an "All" value of ``.*`` so that a filter such as
``job=~"$job"`` also matches series that do not carry the label at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from voice_otel.dashboards._panels import DATASOURCE, DATASOURCE_VAR
from voice_otel.dashboards._promql import ENV_LABEL, sel

ALL = ".*"


def datasource() -> db.DatasourceVariable:
    """The Prometheus data source; every panel and variable query goes through it."""
    return (
        db.DatasourceVariable(DATASOURCE_VAR)
        .label("Prometheus")
        .description("Prometheus data source the panels query.")
        .type("prometheus")
    )


def label_values(
    name: str, label: str, title: str, series: str, matchers: Sequence[str] = ()
) -> db.QueryVariable:
    """A multi-valued variable listing the values of ``label`` on ``series``."""
    return (
        db.QueryVariable(name)
        .label(title)
        .description(f"Filter on the Prometheus label {label}.")
        .datasource(DATASOURCE)
        .query(f"label_values({sel(series, matchers)}, {label})")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(True)
        .include_all(True)
        .all_value(ALL)
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def service(series: str) -> db.QueryVariable:
    """The ``job`` label: the OpenTelemetry ``service.name`` of the voice agent."""
    return label_values("job", "job", "Service", series)


def environment() -> db.QueryVariable:
    """The deployment environment, from the resource attributes on ``target_info``."""
    return label_values("environment", ENV_LABEL, "Environment", "target_info", ('job=~"$job"',))


def custom(
    name: str, title: str, description: str, values: Sequence[str], default: str
) -> db.CustomVariable:
    """A fixed list of values, e.g. a latency objective."""
    return (
        db.CustomVariable(name)
        .label(title)
        .description(description)
        .values(",".join(values))
        .current(dm.VariableOption(selected=True, text=default, value=default))
    )
