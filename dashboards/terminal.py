"""Terminal drill-down: everything about one terminal (variable ``terminal``)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import dashboard as dashboard_models

from dashboards.kit import POSTGRES, Board, Sql
from dashboards.panels import state_timeline_panel, table_panel, timeseries_panel

UID = "termwatch-terminal"

#: The variable's query: every known terminal, registered or not.
TERMINALS_QUERY = "SELECT tid FROM dash_terminals ORDER BY tid"


def build() -> dashboard_models.Dashboard:
    board = Board(
        UID,
        "termwatch: terminal",
        "One terminal: its devices' states over time, events, operations, incidents and "
        "complaints.",
    )
    board.variable(
        dashboard_builders.QueryVariable("terminal")
        .label("Terminal")
        .description("The terminal id (tid) to show.")
        .datasource(POSTGRES)
        .query(TERMINALS_QUERY)
        .refresh(dashboard_models.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC)
        .multi(False)
        .include_all(False)
    )
    board.add(
        table_panel(
            "Terminal",
            "The registry entry and the state now: where it is, what model, who serves it, "
            "online or not, last heard from.",
            Sql(
                """
                SELECT tid AS "Terminal", name AS "Name", address AS "Address",
                       city AS "City", region AS "Region", model AS "Model",
                       service_group AS "Service group", state AS "State",
                       last_seen AS "Last seen", first_seen AS "First seen",
                       open_incidents AS "Open incidents"
                FROM dash_terminals
                WHERE tid = '$terminal'
                """
            ),
        ),
        w=24,
        h=4,
    )
    board.add(
        state_timeline_panel(
            "Device states",
            "Which state each device field and the connection were in, when: the value "
            "held at the start of the range, then every change.",
            Sql(
                """
                SELECT time, metric, value FROM (
                    SELECT DISTINCT ON (device, field)
                           $__timeFrom()::timestamptz AS time,
                           device || '.' || field AS metric, value
                    FROM device_state_log
                    WHERE tid = '$terminal' AND ts < $__timeFrom()::timestamptz
                    ORDER BY device, field, ts DESC
                ) AS held_at_start
                UNION ALL
                SELECT ts, device || '.' || field, value
                FROM device_state_log
                WHERE tid = '$terminal' AND $__timeFilter(ts)
                UNION ALL
                SELECT time, metric, value FROM (
                    SELECT $__timeFrom()::timestamptz AS time, 'connection' AS metric,
                           state AS value
                    FROM availability_log
                    WHERE tid = '$terminal' AND ts < $__timeFrom()::timestamptz
                    ORDER BY ts DESC
                    LIMIT 1
                ) AS connection_at_start
                UNION ALL
                SELECT ts, 'connection', state
                FROM availability_log
                WHERE tid = '$terminal' AND $__timeFilter(ts)
                ORDER BY 1, 2
                """
            ),
            split_by="metric",
        ),
        w=24,
        h=10,
    )
    board.newline()
    board.add(
        timeseries_panel(
            "Operations by outcome",
            "Operations per hour or longer interval, by outcome (completed, completed with "
            "warnings, failed, cancelled).",
            Sql(
                """
                SELECT $__timeGroupAlias(bucket, $__interval), outcome AS metric,
                       sum(operations) AS value
                FROM dash_operations_hourly
                WHERE tid = '$terminal' AND $__timeFilter(bucket)
                GROUP BY 1, 2
                ORDER BY 1, 2
                """,
                fmt="time_series",
            ),
            bars=True,
            stacked=True,
            min_interval="1h",
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Events by name",
            "Device and application events per hour or longer interval, by event name.",
            Sql(
                """
                SELECT $__timeGroupAlias(bucket, $__interval), name AS metric,
                       sum(events) AS value
                FROM dash_events_hourly
                WHERE tid = '$terminal' AND $__timeFilter(bucket)
                GROUP BY 1, 2
                ORDER BY 1, 2
                """,
                fmt="time_series",
            ),
            bars=True,
            stacked=True,
            min_interval="1h",
        ),
        w=12,
        h=8,
    )
    board.newline()
    board.add(
        table_panel(
            "Operations",
            "The latest 200 operations in the range with their outcome, the step that "
            "failed and the money at risk.",
            Sql(
                """
                SELECT ts AS "Time", op_id AS "Operation", kind AS "Kind",
                       service AS "Service", amount_minor / 100.0 AS "Amount",
                       currency AS "Currency", outcome AS "Outcome",
                       failed_step AS "Failed step", failed_error AS "Error",
                       money_at_risk_minor / 100.0 AS "Money at risk"
                FROM operations
                WHERE tid = '$terminal' AND $__timeFilter(ts)
                ORDER BY ts DESC
                LIMIT 200
                """
            ),
        ),
        w=12,
        h=9,
    )
    board.add(
        table_panel(
            "Events",
            "The latest 200 events in the range.",
            Sql(
                """
                SELECT ts AS "Time", device AS "Device", name AS "Event",
                       payload::text AS "Payload"
                FROM events
                WHERE tid = '$terminal' AND $__timeFilter(ts)
                ORDER BY ts DESC
                LIMIT 200
                """
            ),
        ),
        w=12,
        h=9,
    )
    board.newline()
    board.add(
        table_panel(
            "Incidents",
            "Incidents of this terminal that were open at some time in the range.",
            Sql(
                """
                SELECT id AS "Incident", kind AS "Kind", severity AS "Severity",
                       status AS "Status", opened_at AS "Opened",
                       acknowledged_at AS "Acknowledged", resolved_at AS "Resolved",
                       reopen_count AS "Reopened", complaints AS "Complaints",
                       money_at_risk_minor / 100.0 AS "Money at risk", title AS "Title"
                FROM dash_incidents
                WHERE tid = '$terminal'
                  AND opened_at <= $__timeTo()::timestamptz
                  AND (resolved_at IS NULL OR resolved_at >= $__timeFrom()::timestamptz)
                ORDER BY opened_at DESC
                """
            ),
        ),
        w=12,
        h=8,
    )
    board.add(
        table_panel(
            "Complaints",
            "Complaints about this terminal in the range and what termwatch matched them to.",
            Sql(
                """
                SELECT occurred_at AS "Occurred", ref AS "Ref", channel AS "Channel",
                       category AS "Category", amount_minor / 100.0 AS "Amount",
                       verdict AS "Verdict", matched_operation AS "Operation found",
                       incident_id AS "Incident"
                FROM dash_complaints
                WHERE tid = '$terminal' AND $__timeFilter(occurred_at)
                ORDER BY occurred_at DESC
                """
            ),
        ),
        w=12,
        h=8,
    )
    return board.build()
