"""The rule engine against the real database: each rule form, clearing, flapping, reopening."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from rules.config import default_rules, parse_rules
from rules.engine import RuleEngine
from termwatch.db import Row
from termwatch.settings import Settings
from tests.rules_support import HEALTHY, Fleet, at, batch, incidents, log_actions, wall_now

Conn = psycopg.Connection[Row]


@pytest.fixture
def fleet(db: Conn) -> Fleet:
    fleet = Fleet(db)
    for tid in ("T1", "T2"):
        fleet.register(tid)
    return fleet


def paper(fleet: Fleet, tid: str, seconds: float, value: str) -> object:
    return fleet.status(tid, at(seconds), {"printer": {"device": "online", "paper": value}})


def test_it_opens_nothing_for_a_healthy_terminal(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(
        batch(at(0), fleet.status("T1", at(0), HEALTHY), fleet.heartbeat("T1", at(0)))
    )
    engine.tick(at(100))
    assert incidents(db) == []


def test_it_opens_a_paper_out_incident_from_a_status_snapshot(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    before = (
        REGISTRY.get_sample_value(
            "termwatch_incidents_opened_total", {"kind": "printer_paper_out", "severity": "major"}
        )
        or 0.0
    )
    engine.after_commit(batch(at(0), fleet.status("T1", at(0), HEALTHY)))
    engine.after_commit(batch(at(10), paper(fleet, "T1", 10, "out")))
    [incident] = incidents(db)
    assert (incident["tid"], incident["kind"], incident["severity"], incident["status"]) == (
        "T1",
        "printer_paper_out",
        "major",
        "open",
    )
    assert incident["opened_at"] == at(10)
    assert incident["detected_at"] == at(10)
    assert log_actions(db, incident["id"]) == ["opened"]
    after = REGISTRY.get_sample_value(
        "termwatch_incidents_opened_total", {"kind": "printer_paper_out", "severity": "major"}
    )
    assert after == before + 1


def test_it_resolves_once_the_condition_stayed_cleared_for_clear_for(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(10), paper(fleet, "T1", 10, "out")))
    engine.after_commit(batch(at(100), paper(fleet, "T1", 100, "full")))
    [incident] = incidents(db)
    assert incident["status"] == "open"
    assert incident["cleared_at"] == at(100)
    engine.tick(at(100 + 119))
    assert incidents(db)[0]["status"] == "open"
    engine.tick(at(100 + 121))
    [incident] = incidents(db)
    assert incident["status"] == "resolved"
    assert incident["resolved_at"] == at(100 + 120)
    assert incident["resolved_by"] == "rules"
    assert log_actions(db, incident["id"]) == ["opened", "resolved"]


def test_it_opens_one_incident_for_a_flapping_printer(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    for i in range(60):
        value = "out" if i % 2 == 0 else "full"
        engine.after_commit(batch(at(5 * i), paper(fleet, "T1", 5 * i, value)))
    engine.tick(at(5 * 60 + 500))
    rows = incidents(db, kind="printer_paper_out")
    assert len(rows) == 1
    assert rows[0]["status"] == "resolved"
    assert log_actions(db, rows[0]["id"]) == ["opened", "resolved"]


def test_it_reopens_the_same_incident_when_the_fault_returns_within_the_reopen_window(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    t = 0.0
    for _ in range(3):
        engine.after_commit(batch(at(t), paper(fleet, "T1", t, "out")))
        engine.after_commit(batch(at(t + 30), paper(fleet, "T1", t + 30, "full")))
        engine.tick(at(t + 30 + 121))
        t += 300  # back after 2.5 minutes resolved: within the 10-minute reopen window
    [incident] = incidents(db, kind="printer_paper_out")
    assert incident["reopen_count"] == 2
    assert log_actions(db, incident["id"]) == [
        "opened",
        "resolved",
        "reopened",
        "resolved",
        "reopened",
        "resolved",
    ]


def test_it_opens_a_new_incident_when_the_fault_returns_after_the_reopen_window(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(0), paper(fleet, "T1", 0, "out")))
    engine.after_commit(batch(at(30), paper(fleet, "T1", 30, "full")))
    engine.tick(at(151))  # clear_for (2 min) has passed: resolved
    engine.after_commit(batch(at(2000), paper(fleet, "T1", 2000, "out")))
    rows = incidents(db, kind="printer_paper_out")
    assert [r["status"] for r in rows] == ["resolved", "open"]


def test_it_sees_a_fault_that_came_and_went_within_one_batch(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    out = paper(fleet, "T1", 10, "out")
    full = paper(fleet, "T1", 12, "full")
    engine.after_commit(batch(at(12), out, full))
    [incident] = incidents(db)
    assert incident["opened_at"] == at(10)
    assert incident["cleared_at"] == at(12)


def test_it_waits_for_the_rules_for_duration_before_opening(
    settings: Settings, clean_db: str, db: Conn, fleet: Fleet
) -> None:
    rules = parse_rules(
        """
version: 1
rules:
  - name: printer_fault
    severity: major
    title: Printer fault
    when:
      - state: {device: printer, field: device, in: [hardwareError]}
    for: 30s
"""
    )
    engine = RuleEngine(settings, clean_db, rules)
    try:
        status = fleet.status("T1", at(0), {"printer": {"device": "hardwareError"}})
        engine.after_commit(batch(at(0), status))
        engine.tick(at(29))
        assert incidents(db) == []
        engine.tick(at(31))
        [incident] = incidents(db)
        assert incident["opened_at"] == at(30)
        assert incident["detected_at"] == at(31)
    finally:
        engine.close()


def test_it_does_not_open_a_state_that_recovered_before_its_for_ran_out(
    settings: Settings, clean_db: str, db: Conn, fleet: Fleet
) -> None:
    rules = parse_rules(
        """
version: 1
rules:
  - name: printer_fault
    severity: major
    title: Printer fault
    when:
      - state: {device: printer, field: device, in: [hardwareError]}
    for: 30s
"""
    )
    engine = RuleEngine(settings, clean_db, rules)
    try:
        engine.after_commit(
            batch(at(0), fleet.status("T1", at(0), {"printer": {"device": "hardwareError"}}))
        )
        engine.after_commit(
            batch(at(20), fleet.status("T1", at(20), {"printer": {"device": "online"}}))
        )
        engine.tick(at(100))
        assert incidents(db) == []
    finally:
        engine.close()


def test_it_counts_note_errors_within_the_window(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    def note_error(seconds: float) -> object:
        return fleet.event(
            "T1",
            at(seconds),
            "CashManagement.NoteErrorEvent",
            {"reason": "doubleNote"},
            "cashAcceptor",
        )

    engine.after_commit(batch(at(0), note_error(0)))
    for t in (700, 730, 760, 790):  # the first fell out of the 10 min window
        engine.after_commit(batch(at(t), note_error(t)))
    assert incidents(db) == []
    engine.after_commit(batch(at(820), note_error(820)))
    [incident] = incidents(db)
    assert incident["kind"] == "cash_acceptor_jam"
    assert incident["severity"] == "critical"
    assert incident["opened_at"] == at(820)
    evidence = db.execute(
        "SELECT kind, count(*) AS n FROM incident_evidence WHERE incident_id = %s GROUP BY kind",
        (incident["id"],),
    ).fetchall()
    assert [(r["kind"], r["n"]) for r in evidence] == [("event", 5)]
    # No more note errors: fewer than 5 in the window from 700 + 600 on, then clear_for.
    engine.tick(at(1300 + 119))
    assert incidents(db)[0]["status"] == "open"
    engine.tick(at(1300 + 121))
    assert incidents(db)[0]["status"] == "resolved"


def test_it_opens_payment_failures_and_resolves_when_payments_succeed_again(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    first = fleet.operation("T1", at(0), sent="timeout:hostTimeout", receipt="skipped")
    engine.after_commit(batch(at(0), first))
    declined = fleet.operation("T1", at(30), sent="failed:hostDeclined", receipt="skipped")
    engine.after_commit(batch(at(30), declined))
    assert incidents(db) == []  # a decline is the customer's bank saying no, not a fault
    second = fleet.operation(
        "T1", at(60), amount=10_000, sent="timeout:hostTimeout", receipt="skipped"
    )
    engine.after_commit(batch(at(60), second))
    [incident] = incidents(db)
    assert incident["kind"] == "payment_failures"
    assert incident["opened_at"] == at(60)
    assert incident["operations_affected"] == 2
    assert incident["money_at_risk_minor"] == 60_000
    third = fleet.operation(
        "T1", at(90), amount=20_000, sent="failed:hostTimeout", receipt="skipped"
    )
    engine.after_commit(batch(at(90), third))
    assert incidents(db)[0]["operations_affected"] == 3
    engine.tick(at(3600))  # a quiet hour proves nothing: the incident waits for a success
    assert (incidents(db)[0]["status"], incidents(db)[0]["cleared_at"]) == ("open", None)
    engine.after_commit(batch(at(3700), fleet.operation("T1", at(3700))))
    assert incidents(db)[0]["cleared_at"] == at(3700)
    engine.tick(at(3821))
    assert incidents(db)[0]["status"] == "resolved"


def test_it_opens_paper_out_from_failing_receipts_when_the_sensor_says_nothing(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(0), fleet.operation("T1", at(0), receipt="failed:paperOut")))
    engine.after_commit(batch(at(40), fleet.operation("T1", at(40), receipt="failed:paperOut")))
    [incident] = incidents(db)
    assert incident["kind"] == "printer_paper_out"
    assert incident["operations_affected"] == 2
    assert incident["money_at_risk_minor"] == 0  # paid, only the receipt is missing
    engine.after_commit(batch(at(80), fleet.operation("T1", at(80))))  # a receipt printed
    engine.tick(at(80 + 121))
    assert incidents(db)[0]["status"] == "resolved"


def test_it_links_operations_that_fail_while_an_incident_is_open(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(0), paper(fleet, "T1", 0, "out")))
    engine.after_commit(batch(at(10), fleet.operation("T1", at(10), receipt="failed:paperOut")))
    engine.after_commit(
        batch(
            at(20),
            fleet.operation(
                "T1", at(20), cash="failed:cashUnitError", sent="skipped", receipt="skipped"
            ),
        )
    )
    [incident] = incidents(db)
    assert incident["operations_affected"] == 1  # the cash failure is not the printer's doing


def test_it_opens_terminal_offline_after_three_missed_heartbeats(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(0), fleet.heartbeat("T1", at(0)), fleet.heartbeat("T2", at(0))))
    engine.after_commit(batch(at(170), fleet.heartbeat("T2", at(170))))
    engine.tick(at(179))
    assert incidents(db) == []
    engine.tick(at(181))
    [incident] = incidents(db)
    assert (incident["tid"], incident["kind"], incident["severity"]) == (
        "T1",
        "terminal_offline",
        "critical",
    )
    assert incident["opened_at"] == at(180)
    engine.after_commit(batch(at(400), fleet.heartbeat("T1", at(400))))
    assert incidents(db)[0]["cleared_at"] == at(400)
    engine.tick(at(461))
    assert incidents(db)[0]["status"] == "resolved"
    engine.tick(at(465))
    assert len(incidents(db, tid="T1")) == 1  # resolved stays resolved: no new outage


def test_it_opens_terminal_offline_at_once_when_availability_says_offline(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(0), fleet.heartbeat("T1", at(0))))
    engine.after_commit(batch(at(20), fleet.availability("T1", at(20), "offline")))
    [incident] = incidents(db)
    assert incident["kind"] == "terminal_offline"
    assert incident["opened_at"] == at(20)
    online = fleet.availability("T1", at(50), "online")
    engine.after_commit(batch(at(50), online, fleet.heartbeat("T1", at(50))))
    assert incidents(db)[0]["cleared_at"] == at(50)


def test_it_uses_the_terminals_own_heartbeat_interval(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(0), fleet.heartbeat("T1", at(0), interval_s=10)))
    engine.tick(at(29))
    assert incidents(db) == []
    engine.tick(at(31))
    assert [r["opened_at"] for r in incidents(db)] == [at(30)]


def test_it_opens_each_device_kind_from_its_state(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    cases: dict[str, dict[str, Any]] = {
        "printer_jam": {"printer": {"media": "jammed"}},
        "printer_fault": {"printer": {"device": "hardwareError"}},
        "cash_acceptor_jam": {"cashAcceptor": {"shutter": "jammedOpen"}},
        "cash_acceptor_full": {"cashAcceptor": {"stacker": {"replenishment": "full"}}},
        "cash_acceptor_fault": {"cashAcceptor": {"acceptor": "stop"}},
        "printer_paper_low": {"printer": {"paper": "low"}},
        "cash_acceptor_nearly_full": {"cashAcceptor": {"stacker": {"replenishment": "high"}}},
    }
    rules = default_rules()
    for i, (kind, devices) in enumerate(cases.items()):
        tid = f"K{i}"
        fleet.register(tid)
        engine.after_commit(batch(at(i), fleet.status(tid, at(i), devices)))
        [incident] = incidents(db, tid=tid)
        rule = rules.by_kind(kind)
        assert rule is not None
        assert (incident["kind"], incident["severity"]) == (kind, rule.severity)


def test_it_opens_cash_acceptor_full_from_refusals_and_resolves_when_emptied(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    def refuse(seconds: float) -> object:
        return fleet.event(
            "T1",
            at(seconds),
            "CashAcceptor.InputRefuseEvent",
            {"reason": "stackerFull"},
            "cashAcceptor",
        )

    engine.after_commit(batch(at(0), refuse(0)))
    engine.after_commit(batch(at(30), refuse(30)))
    [incident] = incidents(db)
    assert incident["kind"] == "cash_acceptor_full"
    emptied = fleet.event(
        "T1",
        at(60),
        "Storage.StorageThresholdEvent",
        {"unit": "stacker", "replenishment": "empty"},
        "cashAcceptor",
    )
    engine.after_commit(batch(at(60), emptied))
    assert incidents(db)[0]["cleared_at"] == at(60)


def test_it_reads_device_state_from_status_changed_events(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    changed = fleet.event(
        "T1",
        at(5),
        "Common.StatusChangedEvent",
        {"devices": {"cashAcceptor": {"transport": "inoperative"}}},
        "cashAcceptor",
    )
    engine.after_commit(batch(at(5), changed))
    [incident] = incidents(db)
    assert incident["kind"] == "cash_acceptor_jam"


def test_it_records_rule_evaluation_time(fleet: Fleet, engine: RuleEngine) -> None:
    before = REGISTRY.get_sample_value("termwatch_rule_seconds_count") or 0.0
    engine.after_commit(batch(at(0), fleet.heartbeat("T1", at(0))))
    engine.tick(at(5))
    assert REGISTRY.get_sample_value("termwatch_rule_seconds_count") == before + 2


def test_it_repairs_a_missed_batch_on_the_next_reconcile(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    paper(fleet, "T1", 0, "out")  # stored, but the hook never saw it
    engine.tick(at(1))
    [incident] = incidents(db)
    assert incident["kind"] == "printer_paper_out"
    assert incident["opened_at"] == at(0)


def test_it_sweeps_at_most_once_per_sweep_step(db: Conn, fleet: Fleet, engine: RuleEngine) -> None:
    engine.after_commit(batch(at(0), fleet.heartbeat("T1", at(0))))
    engine.sweep_step = timedelta(seconds=30)
    engine.tick(at(10))
    engine.tick(at(185))  # 185 - 10 >= 30: sweeps
    assert len(incidents(db)) == 1


def test_a_terminal_that_says_online_gets_a_full_heartbeat_window(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(0), fleet.heartbeat("T1", at(0))))
    engine.after_commit(batch(at(100), fleet.availability("T1", at(100), "online")))
    engine.tick(at(279))
    assert incidents(db) == []
    engine.tick(at(281))
    assert [r["opened_at"] for r in incidents(db)] == [at(280)]


def test_an_availability_word_stamped_by_the_wall_clock_does_not_hide_a_silence(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    # Before the event clock has a reading, a word is stamped with the wall clock, which a
    # replayed or simulated fleet may be far behind.
    engine.after_commit(batch(at(0), fleet.heartbeat("T1", at(0))))
    fleet.availability("T1", wall_now() + timedelta(days=400), "online")
    engine.tick(at(181))
    assert [r["kind"] for r in incidents(db)] == ["terminal_offline"]


def test_a_late_older_snapshot_opens_nothing(db: Conn, fleet: Fleet, engine: RuleEngine) -> None:
    engine.after_commit(batch(at(0), fleet.status("T1", at(0), HEALTHY)))
    engine.after_commit(batch(at(20), paper(fleet, "T1", 20, "full")))
    # Delivered after the newer one: stored, shown in history, but not the current state.
    late = paper(fleet, "T1", 10, "out")
    engine.after_commit(batch(at(21), late))
    engine.tick(at(100))
    assert incidents(db) == []
    stored = db.execute(
        "SELECT count(*) AS n FROM status_snapshots WHERE tid = 'T1' AND msg_id = %s",
        (late.id,),  # type: ignore[attr-defined]
    ).fetchone()
    assert stored is not None
    assert stored["n"] == 1


def test_a_late_older_event_does_not_resolve_an_open_fault(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(0), fleet.status("T1", at(0), HEALTHY)))
    engine.after_commit(batch(at(20), paper(fleet, "T1", 20, "out")))
    late = fleet.event(
        "T1", at(5), "Common.StatusChangedEvent", {"printer": {"paper": "full"}}, "printer"
    )
    engine.after_commit(batch(at(21), late))
    engine.tick(at(100))
    [incident] = incidents(db)
    assert (incident["status"], incident["cleared_at"]) == ("open", None)
