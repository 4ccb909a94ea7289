"""Every SQL query of every dashboard, run against the real schema filled with a simulated day
(tests/dashboards_data.py), as the read-only role Grafana uses."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from dashboards import generate
from dashboards.macros import QueryContext, expand
from dashboards.report import Period, build_report
from dashboards.schedule import parse_schedule
from dashboards.verify import GRAFANA_ROLE, QueryResult, run_queries, sql_queries
from termwatch.cli import main
from termwatch.db import Row
from tests import dashboards_data as data

#: Dashboards whose every panel must show something for the simulated day.
MUST_HAVE_ROWS = ("termwatch-fleet", "termwatch-incidents", "termwatch-customers")


@pytest.fixture
def filled(db: psycopg.Connection[Row]) -> psycopg.Connection[Row]:
    data.fill(db)
    return db


def _run(conn: psycopg.Connection[Row], terminal: str = "T-0005") -> list[QueryResult]:
    ctx = QueryContext(data.START, data.END, "1h", {"terminal": terminal})
    results: list[QueryResult] = []
    for model in generate.models():
        results += run_queries(conn, sql_queries(model), ctx)
    return results


def _row(results: list[QueryResult], dashboard: str, panel: str) -> tuple[Any, ...]:
    """The first row of one panel's query."""
    [result] = [r for r in results if r.query.dashboard == dashboard and r.query.panel == panel]
    assert result.error is None
    assert result.first_row is not None
    return result.first_row


def _value(results: list[QueryResult], dashboard: str, panel: str) -> Any:
    return _row(results, dashboard, panel)[0]


def test_every_panel_query_runs_and_overview_incident_and_customer_panels_show_rows(
    filled: psycopg.Connection[Row],
) -> None:
    results = _run(filled)
    assert len(results) > 40
    errors = [f"{r.query.dashboard} / {r.query.panel}: {r.error}" for r in results if r.error]
    assert errors == []
    empty = [
        f"{r.query.dashboard} / {r.query.panel} {r.query.ref_id}"
        for r in results
        if r.query.dashboard in MUST_HAVE_ROWS and r.rows == 0
    ]
    assert empty == []


def test_every_terminal_panel_shows_rows_for_a_terminal_with_a_fault(
    filled: psycopg.Connection[Row],
) -> None:
    results = [r for r in _run(filled, "T-0005") if r.query.dashboard == "termwatch-terminal"]
    assert {r.query.panel: r.rows > 0 for r in results} == {r.query.panel: True for r in results}
    states = next(r for r in results if r.query.panel == "Device states")
    assert states.columns == ("time", "metric", "value")


def test_panels_show_the_simulated_facts(filled: psycopg.Connection[Row]) -> None:
    results = _run(filled)
    assert _value(results, "termwatch-fleet", "Registered terminals") == len(data.TERMINALS)
    assert _value(results, "termwatch-fleet", "Offline") == 1  # T-0012
    assert _value(results, "termwatch-incidents", "Reopened") == 3
    assert _value(results, "termwatch-incidents", "Flapping") == 1  # T-0011's printer jam
    assert _value(results, "termwatch-customers", "Silent faults") == 1
    # T-0009: cash accepted on the 14:07 and 14:37 operations whose payment timed out.
    risk = _row(results, "termwatch-customers", "Money at risk")
    assert risk == ("RUB", Decimal("408.72"))  # 204.11 + 204.61
    worst = next(
        r for r in results if r.query.panel == "Worst terminals" and r.first_row is not None
    )
    assert worst.first_row is not None
    assert worst.first_row[0] == "T-0007"


def test_fleet_availability_panel_agrees_with_the_sla_report(
    filled: psycopg.Connection[Row],
) -> None:
    panel = float(_value(_run(filled), "termwatch-fleet", "Availability"))
    report = build_report(filled, Period(data.START, data.END), parse_schedule("24/7"))
    assert report.fleet["availability_pct"].iloc[0] == pytest.approx(panel, abs=0.0005)
    # By hand: 90 + 838.8 + 48 + 120 minutes down out of 12 terminals x 1440 minutes.
    assert panel == pytest.approx(100 * (1 - (90 + 838.8 + 48 + 120) / (12 * 1440)), abs=1e-9)


def test_the_grafana_role_reads_but_cannot_write(filled: psycopg.Connection[Row]) -> None:
    with filled.transaction(force_rollback=True):
        filled.execute(f"SET LOCAL ROLE {GRAFANA_ROLE}")
        row = filled.execute("SELECT count(*) AS n FROM dash_terminals").fetchone()
        assert row is not None
        assert row["n"] == len(data.TERMINALS) + 1
    with filled.transaction(force_rollback=True):
        filled.execute(f"SET LOCAL ROLE {GRAFANA_ROLE}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            filled.execute("DELETE FROM incidents")


def test_the_grafana_role_can_read_tables_created_after_the_migration(
    db: psycopg.Connection[Row],
) -> None:
    with db.transaction(force_rollback=True):
        db.execute("CREATE TABLE later_table (x int)")
        db.execute("INSERT INTO later_table VALUES (1)")
        db.execute(f"SET LOCAL ROLE {GRAFANA_ROLE}")
        row = db.execute("SELECT x FROM later_table").fetchone()
        assert row == {"x": 1}


def test_downtime_merges_offline_periods_with_overlapping_outage_incidents(
    db: psycopg.Connection[Row],
) -> None:
    t0 = data.START
    db.cursor().executemany(
        "INSERT INTO availability_log (tid, ts, state, source) VALUES ('T-1', %s, %s, 'mqtt')",
        [
            (t0, "offline"),
            (t0 + timedelta(minutes=5), "offline"),  # repeated: counts from the first
            (t0 + timedelta(minutes=30), "online"),
            (t0 + timedelta(hours=5), "offline"),  # still offline
        ],
    )
    db.cursor().executemany(
        "INSERT INTO incidents (tid, kind, severity, status, title, opened_at, last_fault_at,"
        " cleared_at, resolved_at) VALUES ('T-1', %s, 'critical', %s, 't', %s, %s, %s, %s)",
        [  # overlaps the first period and extends it to 01:00
            (
                "cash_acceptor_jam",
                "resolved",
                t0 + timedelta(minutes=20),
                t0,
                t0 + timedelta(hours=1),
                t0 + timedelta(hours=2),
            ),
            # a printer fault is not downtime
            ("printer_jam", "resolved", t0 + timedelta(hours=2), t0, None, t0 + timedelta(hours=3)),
        ],
    )
    rows = db.execute(
        "SELECT started_at, ended_at FROM dash_downtime WHERE tid = 'T-1' ORDER BY started_at"
    ).fetchall()
    assert rows == [
        {"started_at": t0, "ended_at": t0 + timedelta(hours=1)},
        {"started_at": t0 + timedelta(hours=5), "ended_at": None},
    ]


def test_dashboards_check_command_reports_every_query(
    filled: psycopg.Connection[Row],
    clean_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TERMWATCH_DATABASE_URL", clean_db)
    args = ["dashboards", "check", "--from", "2026-05-04", "--to", "2026-05-05"]
    assert main([*args, "--terminal", "T-0007"]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out
    assert "ok   termwatch-fleet / Terminal map A: 13 rows" in out
    assert main([*args, "--tz", "Mars/Olympus"]) == 2
    assert "unknown time zone" in capsys.readouterr().err


def test_a_broken_query_is_reported_with_the_database_error(
    filled: psycopg.Connection[Row],
) -> None:
    broken = sql_queries(
        {
            "uid": "x",
            "panels": [
                {
                    "title": "Broken",
                    "datasource": {"uid": "termwatch-postgres"},
                    "targets": [{"refId": "A", "rawSql": "SELECT nope FROM dash_terminals"}],
                }
            ],
        }
    )
    ctx = QueryContext(data.START, data.END)
    [result] = run_queries(filled, broken, ctx)
    assert result.error is not None
    assert "UndefinedColumn" in result.error
    assert expand("SELECT 1", ctx) == "SELECT 1"
