"""Panel shapes shared by the termwatch dashboards, each with the options it needs set.

Every function returns an SDK panel builder with a title, a description (what the panel
answers, also listed in docs/dashboards.md), its data source and its queries.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import (
    barchart,
    bargauge,
    piechart,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import piechart as piechart_models
from grafana_foundation_sdk.models import prometheus as prometheus_models

from dashboards.kit import (
    POSTGRES,
    PROMETHEUS,
    legend_bottom,
    reduce_last,
    reduce_rows,
    thresholds,
)

Query = cogbuilder.Builder[cogvariants.Dataquery]


def _source(queries: tuple[Query, ...]) -> dashboard_models.DataSourceRef:
    """The panel's data source: Prometheus when its queries are PromQL, else PostgreSQL."""
    built = [q.build() for q in queries]
    return (
        PROMETHEUS
        if built and all(isinstance(q, prometheus_models.Dataquery) for q in built)
        else POSTGRES
    )


def stat_panel(
    title: str,
    description: str,
    query: Query,
    *,
    unit: str = "short",
    decimals: float | None = None,
    steps: tuple[tuple[float | None, str], ...] = ((None, "text"),),
    all_rows: bool = False,
) -> stat.Panel:
    """Big numbers: one per numeric column (or, with ``all_rows``, one per row)."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(_source((query,)))
        .with_target(query)
        .unit(unit)
        .thresholds(thresholds(*steps))
        .color_scheme(_color(dashboard_models.FieldColorModeId.THRESHOLDS))
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .color_mode(common_models.BigValueColorMode.VALUE)
        .justify_mode(common_models.BigValueJustifyMode.AUTO)
        .text_mode(common_models.BigValueTextMode.AUTO)
        .orientation(common_models.VizOrientation.AUTO)
        .reduce_options(reduce_rows() if all_rows else reduce_last())
    )
    return panel.decimals(decimals) if decimals is not None else panel


def table_panel(title: str, description: str, query: Query) -> table.Panel:
    """Rows as the query returns them (sort order is the query's)."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(_source((query,)))
        .with_target(query)
        .show_header(True)
        .cell_height(common_models.TableCellHeight.SM)
        .footer(common_builders.TableFooterOptions().show(False).reducer(["sum"]))
    )


def bars_panel(
    title: str, description: str, query: Query, *, unit: str = "short"
) -> bargauge.Panel:
    """One horizontal bar per row of a (label, number) query."""
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(_source((query,)))
        .with_target(query)
        .unit(unit)
        .min(0)
        .thresholds(thresholds((None, "blue")))
        .display_mode(common_models.BarGaugeDisplayMode.BASIC)
        .value_mode(common_models.BarGaugeValueMode.COLOR)
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .show_unfilled(True)
        .min_viz_height(16)
        .min_viz_width(8)
        .reduce_options(reduce_rows())
    )


def grouped_bars_panel(
    title: str, description: str, query: Query, *, x_field: str, unit: str = "short"
) -> barchart.Panel:
    """Grouped vertical bars: one group per ``x_field`` value, one bar per numeric column."""
    return (
        barchart.Panel()
        .title(title)
        .description(description)
        .datasource(_source((query,)))
        .with_target(query)
        .unit(unit)
        .x_field(x_field)
        .orientation(common_models.VizOrientation.AUTO)
        .stacking(common_models.StackingMode.NONE)
        .show_value(common_models.VisibilityMode.AUTO)
        .bar_width(0.8)
        .group_width(0.7)
        .fill_opacity(80)
        .x_tick_label_rotation(-30)
        .legend(legend_bottom())
        .tooltip(_tooltip())
    )


def pie_panel(title: str, description: str, query: Query) -> piechart.Panel:
    """Shares of a (label, number) query, one slice per row."""
    return (
        piechart.Panel()
        .title(title)
        .description(description)
        .datasource(_source((query,)))
        .with_target(query)
        .pie_type(piechart_models.PieChartType.DONUT)
        .display_labels([piechart_models.PieChartLabels.VALUE])
        .reduce_options(reduce_rows())
        .legend(
            piechart.PieChartLegendOptions()
            .show_legend(True)
            .display_mode(common_models.LegendDisplayMode.TABLE)
            .placement(common_models.LegendPlacement.RIGHT)
            .values([piechart_models.PieChartLegendValues.PERCENT])
        )
        .tooltip(_tooltip())
    )


def timeseries_panel(
    title: str,
    description: str,
    *queries: Query,
    unit: str = "short",
    bars: bool = False,
    stacked: bool = False,
    min_interval: str | None = None,
) -> timeseries.Panel:
    """Lines (or bars) over time; ``min_interval`` floors ``$__interval`` (hourly views: 1h)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(_source(queries))
        .targets(list(queries))
        .unit(unit)
        .draw_style(
            common_models.GraphDrawStyle.BARS if bars else common_models.GraphDrawStyle.LINE
        )
        .fill_opacity(60 if bars else 10)
        .line_width(1)
        .show_points(common_models.VisibilityMode.NEVER)
        .span_nulls(False)
        .stacking(
            common_builders.StackingConfig().mode(
                common_models.StackingMode.NORMAL if stacked else common_models.StackingMode.NONE
            )
        )
        .legend(legend_bottom())
        .tooltip(_tooltip())
    )
    return panel.interval(min_interval) if min_interval else panel


def state_timeline_panel(
    title: str, description: str, query: Query, *, split_by: str
) -> statetimeline.Panel:
    """A band per value of ``split_by`` showing which state held when (table-format query)."""
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(_source((query,)))
        .with_target(query)
        .with_transformation(
            dashboard_models.DataTransformerConfig(
                id_val="partitionByValues", options={"fields": [split_by], "keepFields": False}
            )
        )
        .show_value(common_models.VisibilityMode.AUTO)
        .merge_values(True)
        .row_height(0.8)
        .fill_opacity(70)
        .line_width(0)
        .align_value(common_models.TimelineValueAlignment.LEFT)
        .legend(legend_bottom())
        .tooltip(_tooltip())
        .color_scheme(_color(dashboard_models.FieldColorModeId.PALETTE_CLASSIC))
    )


def _tooltip() -> common_builders.VizTooltipOptions:
    return (
        common_builders.VizTooltipOptions()
        .mode(common_models.TooltipDisplayMode.MULTI)
        .sort(common_models.SortOrder.DESCENDING)
    )


def _color(mode: dashboard_models.FieldColorModeId) -> dashboard_builders.FieldColor:
    return dashboard_builders.FieldColor().mode(mode)
