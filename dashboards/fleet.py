"""Fleet overview: is the fleet up, where are the problems, which terminals are worst."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import geomap
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import geomap as geomap_models
from grafana_foundation_sdk.models.dashboard import FieldColorModeId

from dashboards.kit import POSTGRES, Board, Sql, thresholds, value_text
from dashboards.panels import bars_panel, pie_panel, stat_panel, table_panel

UID = "termwatch-fleet"

#: The map's colours: dash_terminals.state_code -> (label, colour).
STATE_COLOURS = {
    "0": ("online", "green"),
    "1": ("degraded (major incident)", "yellow"),
    "2": ("service mode", "blue"),
    "3": ("critical incident", "orange"),
    "4": ("offline", "red"),
    "5": ("never seen", "text"),
}

# The range as timestamptz, and each terminal's downtime (dash_downtime) clipped to it.
_RANGE = "SELECT $__timeFrom()::timestamptz AS t0, $__timeTo()::timestamptz AS t1"
_DOWN_IN_RANGE = """
                    SELECT d.tid,
                           sum(extract(epoch FROM least(coalesce(d.ended_at, r.t1), r.t1)
                                                  - greatest(d.started_at, r.t0))) AS down_s
                    FROM dash_downtime d CROSS JOIN r
                    WHERE d.started_at < r.t1 AND coalesce(d.ended_at, r.t1) > r.t0
                    GROUP BY d.tid
                """


def build() -> dashboard_models.Dashboard:
    board = Board(
        UID,
        "termwatch: fleet overview",
        "Terminals online and offline, availability, open incidents and where they are.",
    )
    board.add(
        stat_panel(
            "Registered terminals",
            "How many terminals the fleet registry lists.",
            Sql('SELECT count(*) AS "Registered" FROM terminals'),
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Online",
            "Registered terminals whose telemetry is current (termwatch has not marked them "
            "offline).",
            Sql('SELECT count(*) AS "Online" FROM dash_terminals WHERE registered AND online'),
            steps=((None, "green"),),
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Offline",
            "Registered terminals that are offline now: availability said offline, or nothing "
            "came for 3 heartbeat intervals.",
            Sql(
                'SELECT count(*) AS "Offline" FROM dash_terminals'
                " WHERE registered AND online = false"
            ),
            steps=((None, "green"), (1, "red")),
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Never seen / unregistered",
            "Registered terminals that never sent telemetry, and terminals sending telemetry "
            "that the registry does not list.",
            Sql(
                """
                SELECT count(*) FILTER (WHERE registered AND last_seen IS NULL) AS "Never seen",
                       count(*) FILTER (WHERE NOT registered) AS "Unregistered"
                FROM dash_terminals
                """
            ),
            steps=((None, "green"), (1, "yellow")),
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Availability",
            "Share of the time range during which registered terminals were not down, each "
            "counted from its first telemetry (downtime as defined in docs/report.md: offline, "
            "or an incident that stops service).",
            Sql(
                f"""
                WITH r AS ({_RANGE}),
                down AS ({_DOWN_IN_RANGE}),
                served AS (
                    SELECT t.tid, extract(epoch FROM r.t1 - greatest(r.t0, s.first_seen)) AS s
                    FROM terminals t
                    JOIN terminal_state s ON s.tid = t.tid
                    CROSS JOIN r
                    WHERE s.first_seen < r.t1
                )
                SELECT 100 * (1 - coalesce((SELECT sum(down_s) FROM down
                                            WHERE tid IN (SELECT tid FROM served)), 0)
                       / nullif((SELECT sum(s) FROM served), 0)) AS "Availability"
                FROM r
                """
            ),
            unit="percent",
            decimals=2,
            steps=((None, "red"), (95, "yellow"), (99, "green")),
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Open incidents",
            "Incidents not yet resolved, by severity (minor ones are not paged).",
            Sql(
                """
                SELECT count(*) FILTER (WHERE severity = 'critical') AS "Critical",
                       count(*) FILTER (WHERE severity = 'major') AS "Major",
                       count(*) FILTER (WHERE severity = 'minor') AS "Minor"
                FROM dash_incidents
                WHERE status <> 'resolved'
                """
            ),
            steps=((None, "green"), (1, "orange")),
        ),
        w=4,
        h=4,
    )
    board.newline()
    board.add(
        bars_panel(
            "Open incidents by kind",
            "Which kinds of fault are open now.",
            Sql(
                """
                SELECT kind AS "Kind", count(*) AS "Open"
                FROM dash_incidents
                WHERE status <> 'resolved'
                GROUP BY kind
                ORDER BY 2 DESC, 1
                """
            ),
        ),
        w=8,
        h=8,
    )
    board.add(
        pie_panel(
            "Open incidents by severity",
            "How the open incidents split between critical, major and minor.",
            Sql(
                """
                SELECT severity AS "Severity", count(*) AS "Open"
                FROM dash_incidents
                WHERE status <> 'resolved'
                GROUP BY severity
                ORDER BY 1
                """
            ),
        ),
        w=8,
        h=8,
    )
    board.add(
        bars_panel(
            "Open incidents by region",
            "Where the open incidents are.",
            Sql(
                """
                SELECT region AS "Region", count(*) AS "Open"
                FROM dash_incidents
                WHERE status <> 'resolved'
                GROUP BY region
                ORDER BY 2 DESC, 1
                """
            ),
        ),
        w=8,
        h=8,
    )
    board.newline()
    board.add(_map(), w=14, h=14)
    board.add(
        table_panel(
            "Worst terminals",
            "The 20 terminals with the most downtime in the range, then the most incidents "
            "opened and complaints.",
            Sql(
                f"""
                WITH r AS ({_RANGE}),
                down AS ({_DOWN_IN_RANGE}),
                opened AS (
                    SELECT tid, count(*) AS incidents FROM dash_incidents
                    WHERE $__timeFilter(opened_at) GROUP BY tid
                ),
                complained AS (
                    SELECT tid, count(*) AS complaints FROM complaints
                    WHERE tid IS NOT NULL AND $__timeFilter(occurred_at) GROUP BY tid
                )
                SELECT t.tid AS "Terminal", t.name AS "Name", t.region AS "Region",
                       t.state AS "State",
                       round(coalesce(down.down_s, 0) / 60, 1) AS "Downtime, min",
                       round(100 * (1 - coalesce(down.down_s, 0)
                                    / nullif(extract(epoch FROM r.t1
                                             - greatest(r.t0, t.first_seen)), 0)), 2)
                           AS "Availability, %",
                       coalesce(opened.incidents, 0) AS "Incidents",
                       coalesce(complained.complaints, 0) AS "Complaints"
                FROM dash_terminals t
                CROSS JOIN r
                LEFT JOIN down ON down.tid = t.tid
                LEFT JOIN opened ON opened.tid = t.tid
                LEFT JOIN complained ON complained.tid = t.tid
                WHERE down.down_s > 0 OR opened.incidents > 0 OR complained.complaints > 0
                ORDER BY 5 DESC, 7 DESC, 8 DESC, 1
                LIMIT 20
                """
            ),
        ),
        w=10,
        h=14,
    )
    board.newline()
    board.add(
        table_panel(
            "Terminals by region",
            "Per region: terminals registered, online, offline, in service mode and with an "
            "open critical incident now.",
            Sql(
                """
                SELECT region AS "Region",
                       count(*) FILTER (WHERE registered) AS "Registered",
                       count(*) FILTER (WHERE online) AS "Online",
                       count(*) FILTER (WHERE online = false) AS "Offline",
                       count(*) FILTER (WHERE state = 'service') AS "Service mode",
                       count(*) FILTER (WHERE state = 'critical') AS "Critical incident",
                       count(*) FILTER (WHERE last_seen IS NULL) AS "Never seen"
                FROM dash_terminals
                GROUP BY region
                ORDER BY region
                """
            ),
        ),
        w=24,
        h=8,
    )
    return board.build()


def _map() -> geomap.Panel:
    """Terminals at their registry coordinates, coloured by state (STATE_COLOURS)."""
    markers = (
        common_builders.MapLayerOptions()
        .type("markers")
        .name("Terminals")
        .tooltip(True)
        .location(
            common_builders.FrameGeometrySource()
            .mode(common_models.FrameGeometrySourceMode.COORDS)
            .latitude("lat")
            .longitude("lon")
        )
        .config(
            {
                "showLegend": True,
                "style": {
                    "color": {"field": "state_code", "fixed": "green"},
                    "opacity": 0.8,
                    "size": {"fixed": 6, "min": 4, "max": 12},
                    "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
                },
            }
        )
    )
    return (
        geomap.Panel()
        .title("Terminal map")
        .description(
            "Every registered terminal with coordinates, coloured by its state now: online, "
            "degraded, service mode, critical incident, offline, never seen."
        )
        .datasource(POSTGRES)
        .with_target(
            Sql(
                """
                SELECT tid, name, region, city, address, state, state_code, open_incidents,
                       last_seen, lat, lon
                FROM dash_terminals
                WHERE lat IS NOT NULL AND lon IS NOT NULL
                ORDER BY tid
                """
            )
        )
        .view(geomap.MapViewConfig().id("fit").lat(0).lon(0).zoom(4).all_layers(True))
        .controls(
            geomap.ControlsOptions()
            .show_zoom(True)
            .mouse_wheel_zoom(True)
            .show_attribution(True)
            .show_scale(False)
            .show_debug(False)
            .show_measure(False)
        )
        .basemap(common_builders.MapLayerOptions().type("default").name("Basemap"))
        .layers([markers])
        .tooltip(geomap.TooltipOptions().mode(geomap_models.TooltipMode.DETAILS))
        .mappings(value_text(STATE_COLOURS))
        .color_scheme(dashboard_builders.FieldColor().mode(FieldColorModeId.THRESHOLDS))
        .thresholds(
            thresholds(
                (None, "green"), (1, "yellow"), (2, "blue"), (3, "orange"), (4, "red"), (5, "text")
            )
        )
    )
