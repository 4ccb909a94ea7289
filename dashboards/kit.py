"""What every termwatch dashboard is made of, on top of grafana-foundation-sdk.

The SDK has builders for panels, layouts and Prometheus queries but none for Grafana's
PostgreSQL data source, so :class:`Sql` supplies that query type. :class:`Board` places
panels on Grafana's 24-column grid row by row and numbers them, so that the generated JSON
is the same on every run.

Data source uids are fixed names: the provisioning files under ``deploy/grafana/`` create
data sources with exactly these uids (docs/dashboards.md).
"""

from __future__ import annotations

from typing import Literal

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus as prometheus_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models

POSTGRES_UID = "termwatch-postgres"
PROMETHEUS_UID = "termwatch-prometheus"
#: Plugin id of Grafana's PostgreSQL data source (Grafana 10.2 and later; older ones: "postgres").
POSTGRES_TYPE = "grafana-postgresql-datasource"
POSTGRES = dashboard_models.DataSourceRef(type_val=POSTGRES_TYPE, uid=POSTGRES_UID)
PROMETHEUS = dashboard_models.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
GRID_WIDTH = 24
#: Every termwatch dashboard carries this tag; ``dashboards push`` files them in one folder.
TAG = "termwatch"

SqlFormat = Literal["table", "time_series"]


class SqlQuery(cogvariants.Dataquery):
    """A raw SQL query of Grafana's PostgreSQL data source (as its query editor saves it)."""

    def __init__(self, ref_id: str, raw_sql: str, fmt: SqlFormat) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.fmt = fmt

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": POSTGRES,
            "editorMode": "code",
            "format": self.fmt,
            "rawQuery": True,
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }


class Sql(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of a :class:`SqlQuery`; ``fmt="time_series"`` needs a ``time`` column."""

    def __init__(self, raw_sql: str, *, fmt: SqlFormat = "table", ref_id: str = "A") -> None:
        self._query = SqlQuery(ref_id, _dedent(raw_sql), fmt)

    def build(self) -> cogvariants.Dataquery:
        return self._query


def prom(expr: str, legend: str = "", ref_id: str = "A") -> prometheus_builders.Dataquery:
    """A Prometheus range query on the termwatch Prometheus data source."""
    query = prometheus_builders.Dataquery().expr(expr).ref_id(ref_id).range()
    query = query.datasource(PROMETHEUS)
    return query.legend_format(legend) if legend else query


def thresholds(*steps: tuple[float | None, str]) -> dashboard_builders.ThresholdsConfig:
    """Absolute thresholds; the first step's value is ``None`` (the base colour)."""
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_models.Threshold(value=v, color=c) for v, c in steps])
    )


def value_text(mapping: dict[str, tuple[str, str]]) -> list[dashboard_models.ValueMapping]:
    """Value mappings: raw value -> (display text, colour)."""
    options = {
        key: dashboard_models.ValueMappingResult(text=text, color=color, index=i)
        for i, (key, (text, color)) in enumerate(mapping.items())
    }
    return [dashboard_models.ValueMap(options=options)]


def reduce_last() -> common_builders.ReduceDataOptions:
    """Show the last non-null value of every numeric field (one stat per field)."""
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def reduce_rows() -> common_builders.ReduceDataOptions:
    """Show every row (a bar per row of a table-format query)."""
    return common_builders.ReduceDataOptions().calcs([]).values(True).limit(50)


class Board:
    """A dashboard under construction: panels are placed left to right, then wrap.

    ``add`` places a panel ``w`` columns wide and ``h`` rows high after the previous one;
    ``newline`` starts the next row. Panel ids are 1, 2, 3... in the order added.
    """

    def __init__(self, uid: str, title: str, description: str) -> None:
        self.builder = (
            dashboard_builders.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags([TAG])
            .editable()
            .timezone("browser")
            .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
            .refresh("1m")
            .time("now-24h", "now")
        )
        self._x = 0
        self._y = 0
        self._row_height = 0
        self._next_id = 1

    def newline(self) -> None:
        if self._x:
            self._x = 0
            self._y += self._row_height
            self._row_height = 0

    def add(self, panel: cogbuilder.Builder[dashboard_models.Panel], w: int, h: int) -> None:
        if not 0 < w <= GRID_WIDTH:
            raise ValueError(f"panel width must be 1..{GRID_WIDTH}, got {w}")
        if self._x + w > GRID_WIDTH:
            self.newline()
        built = panel.build()
        built.id_val = self._next_id
        built.grid_pos = dashboard_models.GridPos(h=h, w=w, x=self._x, y=self._y)
        self._next_id += 1
        self._x += w
        self._row_height = max(self._row_height, h)
        self.builder.with_panel(_Built(built))

    def variable(self, variable: cogbuilder.Builder[dashboard_models.VariableModel]) -> None:
        self.builder.with_variable(variable)

    def build(self) -> dashboard_models.Dashboard:
        return self.builder.build()


class _Built(cogbuilder.Builder[dashboard_models.Panel]):
    """A panel already built and positioned, handed back to the dashboard builder."""

    def __init__(self, panel: dashboard_models.Panel) -> None:
        self._panel = panel

    def build(self) -> dashboard_models.Panel:
        return self._panel


def legend_bottom() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .show_legend(True)
        .display_mode(common_models.LegendDisplayMode.LIST)
        .placement(common_models.LegendPlacement.BOTTOM)
    )


def legend_table() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .show_legend(True)
        .display_mode(common_models.LegendDisplayMode.TABLE)
        .placement(common_models.LegendPlacement.RIGHT)
        .calcs(["mean", "max", "lastNotNull"])
    )


def _dedent(sql: str) -> str:
    """SQL as written in the source, without the common indentation or blank edges."""
    lines = sql.strip("\n").splitlines()
    indent = min((len(s) - len(s.lstrip()) for s in lines if s.strip()), default=0)
    return "\n".join(s[indent:].rstrip() for s in lines).strip()
