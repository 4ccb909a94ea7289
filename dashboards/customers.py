"""Customers: what they complain about, whether termwatch explains it, what money is at risk.

Complaints are placed in time by when the customer says it happened (``occurred_at``), like
operations and incidents, so the three line up on one time axis.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dashboard_models

from dashboards.kit import Board, Sql
from dashboards.panels import bars_panel, pie_panel, stat_panel, table_panel, timeseries_panel

UID = "termwatch-customers"


def build() -> dashboard_models.Dashboard:
    board = Board(
        UID,
        "termwatch: customers",
        "Complaints, how many termwatch matched to an operation or an incident, silent faults, "
        "money at risk and failed payments.",
    )
    board.add(
        stat_panel(
            "Complaints",
            "Complaints about something that happened in the range.",
            Sql(
                'SELECT count(*) AS "Complaints" FROM dash_complaints'
                " WHERE $__timeFilter(occurred_at)"
            ),
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Matched to an operation",
            "Share of those complaints that termwatch tied to the customer's operation.",
            Sql(
                """
                SELECT 100.0 * count(*) FILTER (WHERE matched_operation)
                       / nullif(count(*), 0) AS "Matched to an operation"
                FROM dash_complaints
                WHERE $__timeFilter(occurred_at)
                """
            ),
            unit="percent",
            decimals=1,
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Matched to an incident",
            "Share of those complaints explained by an incident on the terminal.",
            Sql(
                """
                SELECT 100.0 * count(*) FILTER (WHERE matched_incident)
                       / nullif(count(*), 0) AS "Matched to an incident"
                FROM dash_complaints
                WHERE $__timeFilter(occurred_at)
                """
            ),
            unit="percent",
            decimals=1,
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Silent faults",
            "Silent-fault incidents opened in the range: terminals that customers complain "
            "about while no device reports a fault.",
            Sql(
                'SELECT count(*) AS "Silent faults" FROM dash_incidents'
                " WHERE kind = 'silent_fault' AND $__timeFilter(opened_at)"
            ),
            steps=((None, "green"), (1, "orange")),
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Money at risk",
            "Cash accepted on operations whose payment did not go through, in the range "
            "(whole hours), per currency, in major units.",
            Sql(
                """
                SELECT currency AS "Currency", sum(money_at_risk_minor) / 100.0 AS "At risk"
                FROM dash_operations_hourly
                WHERE $__timeFilter(bucket)
                GROUP BY currency
                ORDER BY currency
                """
            ),
            decimals=2,
            steps=((None, "green"), (0.01, "red")),
            all_rows=True,
        ),
        w=4,
        h=4,
    )
    board.add(
        stat_panel(
            "Failed payments",
            "Operations in the range whose outcome was failed (payment not made).",
            Sql(
                """
                SELECT coalesce(sum(operations), 0) AS "Failed payments"
                FROM dash_operations_hourly
                WHERE $__timeFilter(bucket) AND outcome = 'failed'
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
            "Complaints by category",
            "Complaints per interval by category (no receipt, payment failed, cash not "
            "credited, out of order, other).",
            Sql(
                """
                SELECT $__timeGroupAlias(occurred_at, $__interval), category AS metric,
                       count(*) AS value
                FROM dash_complaints
                WHERE $__timeFilter(occurred_at)
                GROUP BY 1, 2
                ORDER BY 1, 2
                """,
                fmt="time_series",
            ),
            bars=True,
            stacked=True,
        ),
        w=16,
        h=8,
    )
    board.add(
        pie_panel(
            "Complaint verdicts",
            "What termwatch concluded about each complaint in the range.",
            Sql(
                """
                SELECT CASE WHEN verdict = '' THEN '(none)' ELSE verdict END AS "Verdict",
                       count(*) AS "Complaints"
                FROM dash_complaints
                WHERE $__timeFilter(occurred_at)
                GROUP BY 1
                ORDER BY 2 DESC, 1
                """
            ),
        ),
        w=8,
        h=8,
    )
    board.newline()
    board.add(
        bars_panel(
            "Failed payments by reason",
            "Failed operations in the range by the first step that failed and its error.",
            Sql(
                """
                SELECT coalesce(failed_step, '(no step)') || ': '
                       || coalesce(failed_error, '(no error)') AS "Reason",
                       sum(operations) AS "Failed"
                FROM dash_operations_hourly
                WHERE $__timeFilter(bucket) AND outcome = 'failed'
                GROUP BY 1
                ORDER BY 2 DESC, 1
                LIMIT 15
                """
            ),
        ),
        w=12,
        h=8,
    )
    board.add(
        timeseries_panel(
            "Money at risk over time",
            "Money at risk per hour or longer interval, per currency, in major units.",
            Sql(
                """
                SELECT $__timeGroupAlias(bucket, $__interval), currency AS metric,
                       sum(money_at_risk_minor) / 100.0 AS value
                FROM dash_operations_hourly
                WHERE $__timeFilter(bucket)
                GROUP BY 1, 2
                ORDER BY 1, 2
                """,
                fmt="time_series",
            ),
            bars=True,
            min_interval="1h",
        ),
        w=12,
        h=8,
    )
    board.newline()
    board.add(
        table_panel(
            "Silent faults opened",
            "Silent-fault incidents opened in the range, newest first.",
            Sql(
                """
                SELECT id AS "Incident", tid AS "Terminal", region AS "Region",
                       status AS "Status", opened_at AS "Opened", complaints AS "Complaints",
                       money_at_risk_minor / 100.0 AS "Money at risk"
                FROM dash_incidents
                WHERE kind = 'silent_fault' AND $__timeFilter(opened_at)
                ORDER BY opened_at DESC
                LIMIT 100
                """
            ),
        ),
        w=12,
        h=8,
    )
    board.add(
        table_panel(
            "Complaints by region",
            "Per region: complaints in the range, shares matched to an operation and to an "
            "incident, and the amount customers say they lost.",
            Sql(
                """
                SELECT region AS "Region", count(*) AS "Complaints",
                       round(100.0 * count(*) FILTER (WHERE matched_operation) / count(*), 1)
                           AS "Matched to an operation, %",
                       round(100.0 * count(*) FILTER (WHERE matched_incident) / count(*), 1)
                           AS "Matched to an incident, %",
                       coalesce(sum(amount_minor), 0) / 100.0 AS "Amount claimed"
                FROM dash_complaints
                WHERE $__timeFilter(occurred_at)
                GROUP BY region
                ORDER BY 2 DESC, 1
                """
            ),
        ),
        w=12,
        h=8,
    )
    return board.build()
