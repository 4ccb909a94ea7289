"""What keeps incidents from opening: inhibition by an offline terminal, service mode, and
the database's one-open-incident rule under two engines at once."""

from __future__ import annotations

import threading

import psycopg
import pytest

from rules.config import parse_rules
from rules.engine import RuleEngine
from termwatch.db import Row
from termwatch.settings import Settings
from tests.rules_support import Fleet, at, batch, incidents

Conn = psycopg.Connection[Row]


@pytest.fixture
def fleet(db: Conn) -> Fleet:
    fleet = Fleet(db)
    fleet.register("T1")
    return fleet


def test_it_does_not_open_device_incidents_while_the_terminal_is_offline(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(0), fleet.heartbeat("T1", at(0))))
    engine.after_commit(batch(at(30), fleet.availability("T1", at(30), "offline")))
    # A snapshot queued before the connection dropped arrives late: the terminal is offline.
    late = fleet.status("T1", at(20), {"printer": {"paper": "out"}})
    engine.after_commit(batch(at(31), late))
    assert [r["kind"] for r in incidents(db)] == ["terminal_offline"]


def test_it_opens_the_held_back_device_incident_when_the_terminal_returns(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(0), fleet.heartbeat("T1", at(0))))
    engine.after_commit(batch(at(30), fleet.availability("T1", at(30), "offline")))
    engine.after_commit(batch(at(31), fleet.status("T1", at(20), {"printer": {"paper": "out"}})))
    back = fleet.availability("T1", at(300), "online")
    engine.after_commit(batch(at(300), back, fleet.heartbeat("T1", at(300))))
    kinds = {r["kind"]: r for r in incidents(db)}
    assert set(kinds) == {"terminal_offline", "printer_paper_out"}
    assert kinds["terminal_offline"]["cleared_at"] == at(300)


def test_it_opens_nothing_new_while_the_terminal_is_in_service_mode(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    entered = fleet.event(
        "T1", at(0), "Terminal.ServiceMode", {"state": "entered", "engineer": "E-7"}
    )
    engine.after_commit(batch(at(0), entered))
    engine.after_commit(batch(at(10), fleet.status("T1", at(10), {"printer": {"paper": "out"}})))
    engine.tick(at(500))  # silent for longer than 3 heartbeats: the engineer switched it off
    assert incidents(db) == []
    left = fleet.event("T1", at(600), "Terminal.ServiceMode", {"state": "left"})
    engine.after_commit(batch(at(600), left, fleet.heartbeat("T1", at(600))))
    [incident] = incidents(db)
    assert incident["kind"] == "printer_paper_out"


def test_it_resolves_incidents_fixed_during_service_mode(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(0), fleet.status("T1", at(0), {"printer": {"paper": "out"}})))
    entered = fleet.event("T1", at(100), "Terminal.ServiceMode", {"state": "entered"})
    engine.after_commit(batch(at(100), entered))
    engine.after_commit(batch(at(200), fleet.status("T1", at(200), {"printer": {"paper": "full"}})))
    engine.tick(at(321))
    assert [r["status"] for r in incidents(db)] == ["resolved"]


def test_two_engines_on_the_same_faults_open_each_incident_once(
    settings: Settings, clean_db: str, db: Conn, fleet: Fleet
) -> None:
    tids = [f"B{i:02d}" for i in range(20)]
    for tid in tids:
        fleet.register(tid, region=f"R{tid[-1]}")
    batches = [
        batch(at(i), *(fleet.status(tid, at(i), {"printer": {"paper": "out"}}) for tid in tids))
        for i in range(3)
    ]
    engines = [RuleEngine(settings, clean_db) for _ in range(2)]
    errors: list[BaseException] = []

    def run(engine: RuleEngine) -> None:
        try:
            for b in batches:
                engine.after_commit(b)
            engine.tick(at(10))
        except BaseException as exc:  # handed to the main thread to fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for engine in engines:
        engine.close()
    assert errors == []
    rows = db.execute(
        "SELECT tid, kind, count(*) AS n FROM incidents WHERE NOT is_group GROUP BY tid, kind"
    ).fetchall()
    assert sorted(r["tid"] for r in rows) == tids
    assert all(r["n"] == 1 and r["kind"] == "printer_paper_out" for r in rows)
    opened = db.execute(
        "SELECT count(*) AS n FROM incident_log l JOIN incidents i ON i.id = l.incident_id"
        " WHERE l.action = 'opened' AND NOT i.is_group"
    ).fetchone()
    assert opened is not None
    assert opened["n"] == 20


def test_it_refuses_to_open_an_incident_the_database_already_has_open(
    db: Conn, fleet: Fleet, settings: Settings, clean_db: str
) -> None:
    engine = RuleEngine(settings, clean_db)
    try:
        engine.after_commit(batch(at(0), fleet.status("T1", at(0), {"printer": {"paper": "out"}})))
        with pytest.raises(psycopg.errors.UniqueViolation):
            db.execute(
                "INSERT INTO incidents (tid, kind, severity, status, title, opened_at,"
                " last_fault_at) VALUES ('T1', 'printer_paper_out', 'major', 'open', 'x',"
                " now(), now())"
            )
    finally:
        engine.close()


def test_a_custom_rule_can_leave_device_incidents_uninhibited(
    settings: Settings, clean_db: str, db: Conn, fleet: Fleet
) -> None:
    rules = parse_rules(
        """
version: 1
rules:
  - name: terminal_offline
    severity: critical
    title: Terminal offline
    when: [{absence: {missed_heartbeats: 3}}]
  - name: printer_paper_out
    severity: major
    title: Printer out of paper
    inhibit_when_offline: false
    when: [{state: {device: printer, field: paper, in: [out]}}]
"""
    )
    engine = RuleEngine(settings, clean_db, rules)
    try:
        engine.after_commit(batch(at(0), fleet.heartbeat("T1", at(0))))
        engine.after_commit(batch(at(30), fleet.availability("T1", at(30), "offline")))
        engine.after_commit(
            batch(at(31), fleet.status("T1", at(20), {"printer": {"paper": "out"}}))
        )
        assert sorted(r["kind"] for r in incidents(db)) == ["printer_paper_out", "terminal_offline"]
    finally:
        engine.close()
