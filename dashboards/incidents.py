"""Incidents: how many, how fast people react and fix them, which ones keep coming back."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dashboard_models

from dashboards.kit import Board, Sql, prom
from dashboards.panels import grouped_bars_panel, stat_panel, table_panel, timeseries_panel

UID = "termwatch-incidents"

#: An incident reopened this many times or more within the range counts as flapping.
FLAPPING_REOPENS = 2


def build() -> dashboard_models.Dashboard:
    board = Board(
        UID,
        "termwatch: incidents",
        "Incidents opened and resolved, time to acknowledge and to resolve, flapping, "
        "notifications.",
    )
    board.add(
        stat_panel(
            "Opened",
            "Incidents opened in the range.",
            Sql('SELECT count(*) AS "Opened" FROM dash_incidents WHERE $__timeFilter(opened_at)'),
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Resolved",
            "Incidents resolved in the range (whenever they were opened).",
            Sql(
                'SELECT count(*) AS "Resolved" FROM dash_incidents WHERE $__timeFilter(resolved_at)'
            ),
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "MTTA",
            "Mean time to acknowledge, over incidents opened in the range and acknowledged.",
            Sql(
                'SELECT avg(tta_s) AS "MTTA" FROM dash_incidents'
                " WHERE $__timeFilter(opened_at) AND acknowledged_at IS NOT NULL"
            ),
            unit="s",
            steps=((None, "green"), (900, "yellow"), (3600, "red")),
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "MTTR",
            "Mean time to resolve, over incidents opened in the range and resolved.",
            Sql(
                'SELECT avg(ttr_s) AS "MTTR" FROM dash_incidents'
                " WHERE $__timeFilter(opened_at) AND resolved_at IS NOT NULL"
            ),
            unit="s",
            steps=((None, "green"), (4 * 3600, "yellow"), (24 * 3600, "red")),
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Reopened",
            "Times an incident was reopened in the range (its fault came back before it was "
            "resolved for good).",
            Sql(
                'SELECT count(*) AS "Reopened" FROM incident_log'
                " WHERE action = 'reopened' AND $__timeFilter(at)"
            ),
            steps=((None, "green"), (1, "yellow")),
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Flapping",
            f"Incidents reopened {FLAPPING_REOPENS} times or more in the range.",
            Sql(
                f"""
                SELECT count(*) AS "Flapping" FROM (
                    SELECT incident_id FROM incident_log
                    WHERE action = 'reopened' AND $__timeFilter(at)
                    GROUP BY incident_id
                    HAVING count(*) >= {FLAPPING_REOPENS}
                ) AS flapping
                """
            ),
            steps=((None, "green"), (1, "orange")),
        ),
        w=4,
        h=4,
    )
    board.newline()
    board.add(
        timeseries_panel(
            "Opened and resolved",
            "Incidents opened and resolved per interval.",
            Sql(
                """
                SELECT $__timeGroupAlias(opened_at, $__interval), count(*) AS "opened"
                FROM dash_incidents
                WHERE $__timeFilter(opened_at)
                GROUP BY 1
                ORDER BY 1
                """,
                fmt="time_series",
            ),
            Sql(
                """
                SELECT $__timeGroupAlias(resolved_at, $__interval), count(*) AS "resolved"
                FROM dash_incidents
                WHERE $__timeFilter(resolved_at)
                GROUP BY 1
                ORDER BY 1
                """,
                fmt="time_series",
                ref_id="B",
            ),
            bars=True,
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Opened by kind",
            "Incidents opened per interval, by kind.",
            Sql(
                """
                SELECT $__timeGroupAlias(opened_at, $__interval), kind AS metric,
                       count(*) AS value
                FROM dash_incidents
                WHERE $__timeFilter(opened_at)
                GROUP BY 1, 2
                ORDER BY 1, 2
                """,
                fmt="time_series",
            ),
            bars=True,
            stacked=True,
        ),
        w=12,
        h=8,
    )
    board.newline()
    board.add(
        grouped_bars_panel(
            "MTTA and MTTR by kind",
            "Mean minutes to acknowledge and to resolve, per incident kind, over incidents "
            "opened in the range.",
            Sql(_times_by("kind", "Kind")),
            x_field="Kind",
            unit="m",
        ),
        w=12,
        h=9,
    )
    board.add(
        grouped_bars_panel(
            "MTTA and MTTR by region",
            "Mean minutes to acknowledge and to resolve, per region, over incidents opened in "
            "the range.",
            Sql(_times_by("region", "Region")),
            x_field="Region",
            unit="m",
        ),
        w=12,
        h=9,
    )
    board.newline()
    board.add(
        table_panel(
            "Response times by kind and region",
            "Per kind and region: incidents opened in the range, how many were acknowledged "
            "and resolved, mean and 90th percentile minutes to acknowledge and to resolve.",
            Sql(
                """
                SELECT kind AS "Kind", region AS "Region", count(*) AS "Opened",
                       count(acknowledged_at) AS "Acknowledged",
                       count(resolved_at) AS "Resolved",
                       round(avg(tta_s) / 60, 1) AS "MTTA, min",
                       round((percentile_cont(0.9) WITHIN GROUP (ORDER BY tta_s) / 60)::numeric,
                             1) AS "TTA p90, min",
                       round(avg(ttr_s) / 60, 1) AS "MTTR, min",
                       round((percentile_cont(0.9) WITHIN GROUP (ORDER BY ttr_s) / 60)::numeric,
                             1) AS "TTR p90, min"
                FROM dash_incidents
                WHERE $__timeFilter(opened_at)
                GROUP BY kind, region
                ORDER BY kind, region
                """
            ),
        ),
        w=24,
        h=9,
    )
    board.newline()
    board.add(
        timeseries_panel(
            "Notifications sent",
            "Notification delivery attempts per interval, by target type and result "
            "(sent, failed, retry), from termwatch's own metrics.",
            prom(
                "sum by (target, result) "
                "(increase(termwatch_notifications_total[$__rate_interval]))",
                "{{target}} {{result}}",
            ),
            bars=True,
            stacked=True,
        ),
        w=12,
        h=8,
    )
    board.add(
        table_panel(
            "Most reopened",
            "Incidents reopened in the range, most reopened first: the flapping faults.",
            Sql(
                """
                SELECT i.id AS "Incident", i.tid AS "Terminal", i.kind AS "Kind",
                       i.region AS "Region", i.status AS "Status",
                       count(*) AS "Reopened in range", i.reopen_count AS "Reopened in all",
                       i.opened_at AS "Opened"
                FROM incident_log l
                JOIN dash_incidents i ON i.id = l.incident_id
                WHERE l.action = 'reopened' AND $__timeFilter(l.at)
                GROUP BY i.id, i.tid, i.kind, i.region, i.status, i.reopen_count, i.opened_at
                ORDER BY 6 DESC, 1
                LIMIT 20
                """
            ),
        ),
        w=12,
        h=8,
    )
    board.newline()
    board.add(
        table_panel(
            "Open incidents",
            "Every incident not yet resolved, oldest first, with how long it has been open.",
            Sql(
                """
                SELECT id AS "Incident", tid AS "Terminal", kind AS "Kind",
                       severity AS "Severity", status AS "Status", region AS "Region",
                       opened_at AS "Opened",
                       round(extract(epoch FROM now() - opened_at) / 60) AS "Open for, min",
                       acknowledged_at AS "Acknowledged", complaints AS "Complaints",
                       money_at_risk_minor / 100.0 AS "Money at risk"
                FROM dash_incidents
                WHERE status <> 'resolved'
                ORDER BY opened_at
                LIMIT 200
                """
            ),
        ),
        w=24,
        h=9,
    )
    return board.build()


def _times_by(column: str, label: str) -> str:
    return f"""
        SELECT {column} AS "{label}",
               round(avg(tta_s) / 60, 1) AS "MTTA",
               round(avg(ttr_s) / 60, 1) AS "MTTR"
        FROM dash_incidents
        WHERE $__timeFilter(opened_at)
        GROUP BY {column}
        ORDER BY {column}
    """
