"""Typed panel and dashboard building on top of grafana-foundation-sdk.

Every panel made here carries a title, a description, a unit and the ``${datasource}``
variable; :class:`Board` numbers panels in order and lays them out in rows, so ids and grid
positions are stable from one generation to the next.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE_VAR = "datasource"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VAR}}}")
TAG = "voice-otel"

# Health states as voice.health.status reports them (the contract's HEALTH_STATES).
HEALTH_MAPPINGS: list[dm.ValueMapping] = [
    dm.ValueMap(
        options={
            "0": dm.ValueMappingResult(text="unhealthy", color="red", index=0),
            "1": dm.ValueMappingResult(text="degraded", color="yellow", index=1),
            "2": dm.ValueMappingResult(text="healthy", color="green", index=2),
        }
    )
]


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel."""

    expr: str
    legend: str = ""
    exemplar: bool = False
    instant: bool = False
    table: bool = False


def _targets(queries: Sequence[Query]) -> list[Builder[Dataquery]]:
    built: list[Builder[Dataquery]] = []
    for index, query in enumerate(queries):
        target = prometheus.Dataquery().expr(query.expr).ref_id(chr(ord("A") + index))
        target = target.datasource(DATASOURCE)
        if query.legend:
            target = target.legend_format(query.legend)
        if query.exemplar:
            target = target.exemplar(True)
        target = target.instant() if query.instant else target.range()
        if query.table:
            target = target.format(PromQueryFormat.TABLE)
        built.append(target)
    return built


def _legend(as_table: bool = False) -> cb.VizLegendOptions:
    legend = cb.VizLegendOptions().show_legend(True)
    if as_table:
        legend = legend.display_mode(common.LegendDisplayMode.TABLE).calcs(["mean", "max"])
        return legend.placement(common.LegendPlacement.RIGHT)
    return legend.display_mode(common.LegendDisplayMode.LIST).placement(
        common.LegendPlacement.BOTTOM
    )


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    width: int = 12,
    height: int = 8,
    stacked: bool = False,
    bars: bool = False,
    minimum: float | None = 0,
    maximum: float | None = None,
    legend_table: bool = False,
) -> timeseries.Panel:
    """A time series panel; ``bars`` and ``stacked`` draw a stacked bar breakdown."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .span(width)
        .height(height)
        .legend(_legend(legend_table))
        .tooltip(cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
        .line_width(1)
        .fill_opacity(60 if stacked else 10)
    )
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS)
    if stacked:
        panel = panel.stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL))
    if minimum is not None:
        panel = panel.min(minimum)
    if maximum is not None:
        panel = panel.max(maximum)
    return panel


def stat_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    width: int = 4,
    height: int = 4,
    thresholds: Sequence[tuple[float | None, str]] = ((None, "green"),),
    decimals: int | None = None,
    mappings: list[dm.ValueMapping] | None = None,
) -> stat.Panel:
    """A single-value panel showing the last value of each series."""
    steps = [dm.Threshold(value=value, color=color) for value, color in thresholds]
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .span(width)
        .height(height)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.VALUE)
        .thresholds(db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    if mappings:
        panel = panel.mappings(mappings)
    return panel


def state_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    width: int = 24,
    height: int = 8,
) -> statetimeline.Panel:
    """A state timeline of health states (2 healthy, 1 degraded, 0 unhealthy)."""
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .unit("none")
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .span(width)
        .height(height)
        .mappings(HEALTH_MAPPINGS)
        .fill_opacity(80)
        .line_width(0)
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .legend(_legend())
    )


def table_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    width: int = 24,
    height: int = 8,
) -> table.Panel:
    """A table of the current series and their labels (instant query)."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .span(width)
        .height(height)
        .show_header(True)
        .align(common.FieldTextAlignment.AUTO)
        .filterable(True)
    )


PanelBuilder = timeseries.Panel | stat.Panel | statetimeline.Panel | table.Panel


class Board:
    """A dashboard under construction: variables, rows and panels with sequential ids."""

    def __init__(self, uid: str, title: str, description: str, tags: Sequence[str] = ()) -> None:
        self.uid = uid
        self._next_id = 1
        self._builder = (
            db.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags([TAG, *tags])
            .editable()
            .tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .time("now-1h", "now")
            .refresh("30s")
            .timezone("browser")
            .timepicker(db.TimePicker().refresh_intervals(["10s", "30s", "1m", "5m", "15m"]))
            .link(
                db.DashboardLink("Voice dashboards")
                .type(dm.DashboardLinkType.DASHBOARDS)
                .tags([TAG])
                .as_dropdown(True)
                .include_vars(True)
                .keep_time(True)
            )
        )

    def variable(self, variable: Any) -> Board:
        """Add a template variable (a foundation-sdk variable builder)."""
        self._builder = self._builder.with_variable(variable)
        return self

    def row(self, title: str) -> Board:
        """Start a new row; the panels added next go under it."""
        self._builder = self._builder.with_row(db.Row(title).id(self._take_id()))
        return self

    def add(self, *panels: PanelBuilder) -> Board:
        """Add panels left to right, wrapping at the grid width of 24."""
        for panel in panels:
            self._builder = self._builder.with_panel(panel.id(self._take_id()))
        return self

    def to_dict(self) -> dict[str, Any]:
        """The dashboard JSON model as plain data."""
        data: dict[str, Any] = json.loads(json.dumps(self._builder.build(), cls=JSONEncoder))
        return data

    def _take_id(self) -> int:
        taken = self._next_id
        self._next_id += 1
        return taken
