"""The SLA report against a case computed by hand: two terminals, known outages, April 2026.

Terminal A (North, KX-1), in service all month (30 days = 43200 minutes):
  offline 03-31 23:00 - 04-01 00:20  -> 20 min inside April
  offline 04-03 10:00 - 11:30 (a second 'offline' row at 10:02 changes nothing) -> 90 min;
    its terminal_offline incident 10:03-11:30 lies inside: ack 10:20 (17 min), resolved
    11:31 (88 min)
  cash_acceptor_jam 04-10 14:00, ack 14:10 (10 min), cleared and resolved 15:15 -> 75 min down
  printer_paper_out 04-12 09:00, ack 09:30 (30 min), resolved 10:00 (60 min): not downtime
  downtime 185 min; availability 100 x 43015 / 43200 = 99.572 %; MTTA 19; MTTR 74.33
  2 complaints in April (one in March does not count); 500.00 RUB at risk (100 in March not)
Terminal B (South, KX-2), first telemetry 04-16 00:00 -> 15 days = 21600 minutes:
  cash_acceptor_full 04-20 08:00, ack 08:45 (45 min), cleared 09:00, resolved 09:30 (90 min)
  offline from 04-29 22:00 to the end of the month (26 h = 1560 min); its incident is open
  downtime 1620 min; availability 100 x 19980 / 21600 = 92.5 %; MTTA 45; MTTR 90
All times UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from dashboards.report import Period, build_report
from dashboards.schedule import ScheduleError, parse_schedule
from termwatch.cli import main
from termwatch.db import Row

APRIL = Period(datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))


def t(text: str) -> datetime:
    """``MM-DD HH:MM`` in 2026, UTC."""
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


@pytest.fixture
def two_terminals(db: psycopg.Connection[Row]) -> psycopg.Connection[Row]:
    cur = db.cursor()
    cur.executemany(
        "INSERT INTO terminals (tid, name, address, city, region, model, created_at)"
        " VALUES (%s, %s, 'x', 'x', %s, %s, %s)",
        [
            ("T-A", "Kiosk A", "North", "KX-1", t("01-10 00:00")),
            ("T-B", "Kiosk B", "South", "KX-2", t("04-10 00:00")),  # registered before use
            ("T-C", "Kiosk C", "South", "KX-2", t("01-10 00:00")),  # never sent anything
        ],
    )
    cur.executemany(
        "INSERT INTO terminal_state (tid, first_seen, last_seen, last_received_at, online,"
        " online_changed_at) VALUES (%s, %s, %s, %s, %s, %s)",
        [
            ("T-A", t("03-01 00:00"), t("04-30 23:59"), t("04-30 23:59"), True, t("04-03 11:30")),
            ("T-B", t("04-16 00:00"), t("04-29 22:00"), t("04-29 22:00"), False, t("04-29 22:00")),
        ],
    )
    cur.executemany(
        "INSERT INTO availability_log (tid, ts, state, source) VALUES (%s, %s, %s, 'mqtt')",
        [
            ("T-A", t("03-31 23:00"), "offline"),
            ("T-A", t("04-01 00:20"), "online"),
            ("T-A", t("04-03 10:00"), "offline"),
            ("T-A", t("04-03 10:02"), "offline"),
            ("T-A", t("04-03 11:30"), "online"),
            ("T-B", t("04-16 00:00"), "online"),
            ("T-B", t("04-29 22:00"), "offline"),
        ],
    )
    incidents = [
        # tid, kind, opened, acked, cleared, resolved, is_group
        ("T-A", "printer_jam", "03-30 10:00", "03-30 10:05", "03-30 11:00", "03-30 11:00", False),
        ("T-A", "terminal_offline", "04-03 10:03", "04-03 10:20", "04-03 11:30", "04-03 11:31",
         False),
        ("region:North", "terminal_offline", "04-03 10:03", None, None, "04-03 11:31", True),
        ("T-A", "cash_acceptor_jam", "04-10 14:00", "04-10 14:10", "04-10 15:15", "04-10 15:15",
         False),
        ("T-A", "printer_paper_out", "04-12 09:00", "04-12 09:30", "04-12 10:00", "04-12 10:00",
         False),
        ("T-B", "cash_acceptor_full", "04-20 08:00", "04-20 08:45", "04-20 09:00", "04-20 09:30",
         False),
        ("T-B", "terminal_offline", "04-29 22:03", None, None, None, False),
    ]  # fmt: skip
    for tid, kind, opened, acked, cleared, resolved, group in incidents:
        status = "resolved" if resolved else "acknowledged" if acked else "open"
        cur.execute(
            "INSERT INTO incidents (tid, kind, severity, status, title, opened_at,"
            " acknowledged_at, cleared_at, resolved_at, last_fault_at, is_group)"
            " VALUES (%s, %s, 'critical', %s, 't', %s, %s, %s, %s, %s, %s)",
            (
                tid,
                kind,
                status,
                t(opened),
                acked and t(acked),
                cleared and t(cleared),
                resolved and t(resolved),
                t(opened),
                group,
            ),
        )
    cur.executemany(
        "INSERT INTO complaints (ref, received_at, channel, category, tid, occurred_at)"
        " VALUES (%s, %s, 'phone', 'other', %s, %s)",
        [
            ("C1", t("04-10 15:00"), "T-A", t("04-10 14:05")),
            ("C2", t("04-12 12:00"), "T-A", t("04-12 09:10")),
            ("C3", t("04-01 09:00"), "T-A", t("03-31 23:30")),
        ],
    )
    cur.executemany(
        "INSERT INTO operations (tid, msg_id, ts, op_id, kind, amount_minor, currency, outcome,"
        " cash_accepted_minor, money_at_risk_minor, steps)"
        " VALUES ('T-A', %s, %s, %s, 'payment', %s, 'RUB', %s, %s, %s, '[]')",
        [
            ("m1", t("04-10 14:05"), "op1", 50_000, "failed", 50_000, 50_000),
            ("m2", t("03-31 23:10"), "op2", 10_000, "failed", 10_000, 10_000),
            ("m3", t("04-11 10:00"), "op3", 20_000, "completed", 20_000, 0),
        ],
    )
    return db


def _by_tid(frame: pd.DataFrame) -> dict[str, dict[str, object]]:
    return {str(row["tid"]): dict(row) for row in frame.to_dict("records")}


def test_the_report_matches_the_hand_computed_month_to_the_minute(
    two_terminals: psycopg.Connection[Row],
) -> None:
    report = build_report(two_terminals, APRIL, parse_schedule("24/7"))
    rows = _by_tid(report.terminals)
    assert list(rows) == ["T-A", "T-B"]  # T-C never sent telemetry: not in service
    a, b = rows["T-A"], rows["T-B"]
    assert (a["scheduled_min"], a["downtime_min"], a["availability_pct"]) == (43200, 185, 99.572)
    assert (b["scheduled_min"], b["downtime_min"], b["availability_pct"]) == (21600, 1620, 92.5)
    assert (a["incidents"], a["incidents_terminal_offline"], a["incidents_cash_acceptor_jam"]) == (
        3,
        1,
        1,
    )
    assert (a["incidents_printer_paper_out"], a["incidents_printer_jam"]) == (1, 0)
    assert (a["mtta_min"], a["mttr_min"]) == (19.0, 74.33)
    assert (b["incidents"], b["incidents_cash_acceptor_full"], b["incidents_terminal_offline"]) == (
        2,
        1,
        1,
    )
    assert (b["mtta_min"], b["mttr_min"]) == (45.0, 90.0)
    assert (a["complaints"], b["complaints"]) == (2, 0)
    assert (a["money_at_risk_RUB"], b["money_at_risk_RUB"]) == (500.0, 0.0)
    assert (a["region"], a["model"], b["region"], b["model"]) == ("North", "KX-1", "South", "KX-2")


def test_regions_models_and_fleet_sum_minutes_and_average_over_incidents(
    two_terminals: psycopg.Connection[Row],
) -> None:
    report = build_report(two_terminals, APRIL, parse_schedule("24/7"))
    fleet = report.fleet.to_dict("records")[0]
    assert (fleet["terminals"], fleet["scheduled_min"], fleet["downtime_min"]) == (2, 64800, 1805)
    assert fleet["availability_pct"] == 97.215  # 100 x 62995 / 64800 = 97.2145...
    assert (fleet["incidents"], fleet["mtta_min"], fleet["mttr_min"]) == (5, 25.5, 78.25)
    regions = {r["region"]: r for r in report.regions.to_dict("records")}
    assert regions["North"]["availability_pct"] == 99.572
    assert regions["South"]["availability_pct"] == 92.5
    assert list(report.models["model"]) == ["KX-1", "KX-2"]


def test_only_scheduled_hours_count_with_business_hours_in_moscow(
    two_terminals: psycopg.Connection[Row],
) -> None:
    # Mon-Fri 09:00-18:00 MSK (UTC+3). A: 22 weekdays x 9 h = 11880 min; down inside them:
    # 04-03 13:00-14:30 MSK (90) and 04-10 17:00-18:00 MSK (60 of the 75); the 02:00 MSK outage
    # is outside. B: from Thu 04-16, 11 weekdays = 5940 min; down 04-20 11:00-12:00 MSK (60)
    # and all of Thu 04-30 09:00-18:00 MSK (540).
    schedule = parse_schedule("mon-fri 09:00-18:00", "Europe/Moscow")
    rows = _by_tid(build_report(two_terminals, APRIL, schedule).terminals)
    a, b = rows["T-A"], rows["T-B"]
    assert (a["scheduled_min"], a["downtime_min"], a["availability_pct"]) == (11880, 150, 98.737)
    assert (b["scheduled_min"], b["downtime_min"], b["availability_pct"]) == (5940, 600, 89.899)


def test_the_outage_kinds_can_be_narrowed(two_terminals: psycopg.Connection[Row]) -> None:
    report = build_report(two_terminals, APRIL, parse_schedule("24/7"), ("terminal_offline",))
    rows = _by_tid(report.terminals)
    assert rows["T-A"]["downtime_min"] == 110  # the cash acceptor jam no longer counts
    assert rows["T-B"]["downtime_min"] == 1560


def test_the_command_writes_xlsx_sheets_and_csv_tables(
    two_terminals: psycopg.Connection[Row],
    clean_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TERMWATCH_DATABASE_URL", clean_db)
    base = ["report", "availability", "--from", "2026-04-01", "--to", "2026-05-01"]
    xlsx = tmp_path / "april.xlsx"
    assert main([*base, "--out", str(xlsx)]) == 0
    assert "wrote" in capsys.readouterr().out
    sheets = pd.read_excel(xlsx, sheet_name=None)
    assert list(sheets) == ["terminals", "regions", "models", "fleets", "definitions"]
    terminals = _by_tid(sheets["terminals"])
    assert terminals["T-B"]["availability_pct"] == 92.5
    assert terminals["T-A"]["downtime_min"] == 185
    definitions = dict(
        zip(sheets["definitions"]["item"], sheets["definitions"]["value"], strict=True)
    )
    assert definitions["schedule"] == "24/7"
    csv = tmp_path / "april-regions.csv"
    assert main([*base, "--out", str(csv), "--level", "region"]) == 0
    regions = pd.read_csv(csv)
    assert list(regions["region"]) == ["North", "South"]
    assert list(regions["downtime_min"]) == [185, 1620]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "r.pdf"], "must end in .csv or .xlsx"),
        (["--out", "r.csv", "--schedule", "someday 09:00-18:00"], "days are mon"),
        (["--out", "r.csv", "--tz", "Atlantis/Capital"], "unknown time zone"),
        (["--out", "r.csv", "--to", "2026-03-01"], "--to must be after --from"),
    ],
)
def test_bad_options_exit_2_naming_the_problem(
    extra: list[str],
    message: str,
    clean_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TERMWATCH_DATABASE_URL", clean_db)
    args = ["report", "availability", "--from", "2026-04-01", "--to", "2026-05-01", *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_a_schedule_window_can_run_past_midnight_and_follows_clock_changes() -> None:
    night = parse_schedule("fri 22:00-02:00", "UTC")
    week = night.intervals(t("04-06 00:00"), t("04-13 00:00"))  # Monday to Monday
    assert week == [(t("04-10 22:00"), t("04-11 02:00"))]
    berlin = parse_schedule("sun 00:00-24:00", "Europe/Berlin")
    [dst_day] = berlin.intervals(t("03-23 00:00"), t("03-31 00:00"))  # 29 March: clocks forward
    assert dst_day[1] - dst_day[0] == timedelta(hours=23)
    weekdays = parse_schedule("mon-fri 09:00-18:00; sat 10:00-14:00")
    assert sum((b - a for a, b in weekdays.intervals(APRIL.start, APRIL.end)), timedelta()) == (
        timedelta(hours=22 * 9 + 4 * 4)
    )


@pytest.mark.parametrize(
    "text",
    ["mon-fri", "mon-fri 9:00-18:00", "mon-fri 08:00-25:00", "funday 08:00-20:00", ";"],
)
def test_a_malformed_schedule_is_rejected(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(text)
