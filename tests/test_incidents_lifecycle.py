"""The incident lifecycle by hand: acknowledge and resolve, compare-and-set, logged."""

from __future__ import annotations

import psycopg
import pytest
from prometheus_client import REGISTRY

from rules import lifecycle
from rules.engine import RuleEngine
from termwatch.db import Row
from tests.rules_support import Fleet, at, batch, incidents, log_actions

Conn = psycopg.Connection[Row]


@pytest.fixture
def fleet(db: Conn) -> Fleet:
    fleet = Fleet(db)
    fleet.register("T1")
    return fleet


@pytest.fixture
def incident_id(db: Conn, fleet: Fleet, engine: RuleEngine) -> int:
    engine.after_commit(batch(at(0), fleet.status("T1", at(0), {"printer": {"paper": "out"}})))
    [row] = incidents(db)
    return int(row["id"])


def test_it_acknowledges_then_resolves_an_incident(db: Conn, incident_id: int) -> None:
    before = (
        REGISTRY.get_sample_value(
            "termwatch_incidents_resolved_total", {"kind": "printer_paper_out", "severity": "major"}
        )
        or 0.0
    )
    lifecycle.acknowledge(db, incident_id, "anna", "on my way", at(60))
    [row] = incidents(db)
    assert (row["status"], row["acknowledged_at"], row["acknowledged_by"]) == (
        "acknowledged",
        at(60),
        "anna",
    )
    lifecycle.resolve(db, incident_id, "anna", "roll replaced", at(900))
    [row] = incidents(db)
    assert (row["status"], row["resolved_at"], row["resolved_by"], row["resolve_note"]) == (
        "resolved",
        at(900),
        "anna",
        "roll replaced",
    )
    assert log_actions(db, incident_id) == ["opened", "acknowledged", "resolved"]
    notes = db.execute(
        "SELECT actor, note FROM incident_log WHERE incident_id = %s ORDER BY id", (incident_id,)
    ).fetchall()
    assert notes[1] == {"actor": "anna", "note": "on my way"}
    after = REGISTRY.get_sample_value(
        "termwatch_incidents_resolved_total", {"kind": "printer_paper_out", "severity": "major"}
    )
    assert after == before + 1


def test_it_refuses_to_acknowledge_twice(db: Conn, incident_id: int) -> None:
    lifecycle.acknowledge(db, incident_id, "anna", None, at(60))
    with pytest.raises(lifecycle.InvalidTransition) as caught:
        lifecycle.acknowledge(db, incident_id, "boris", None, at(61))
    assert caught.value.status == "acknowledged"
    assert incidents(db)[0]["acknowledged_by"] == "anna"
    assert log_actions(db, incident_id) == ["opened", "acknowledged"]


def test_it_refuses_to_resolve_a_resolved_incident(db: Conn, incident_id: int) -> None:
    lifecycle.resolve(db, incident_id, "anna", None, at(60))
    with pytest.raises(lifecycle.InvalidTransition, match="is resolved"):
        lifecycle.resolve(db, incident_id, "anna", None, at(61))
    with pytest.raises(lifecycle.InvalidTransition):
        lifecycle.acknowledge(db, incident_id, "anna", None, at(62))


def test_it_says_when_there_is_no_such_incident(db: Conn) -> None:
    with pytest.raises(lifecycle.IncidentNotFound):
        lifecycle.acknowledge(db, 999, "anna", None, at(0))
    with pytest.raises(lifecycle.IncidentNotFound):
        lifecycle.resolve(db, 999, "anna", None, at(0))


def test_it_refuses_an_empty_actor(db: Conn, incident_id: int) -> None:
    with pytest.raises(ValueError, match="actor"):
        lifecycle.acknowledge(db, incident_id, "  ", None, at(60))
    assert incidents(db)[0]["status"] == "open"


def test_a_manual_resolution_stands_until_new_evidence_arrives(
    db: Conn, fleet: Fleet, engine: RuleEngine, incident_id: int
) -> None:
    lifecycle.resolve(db, incident_id, "anna", "known, roll on order", at(60))
    engine.tick(at(120))  # the reconcile sees paper still out: nothing new
    engine.after_commit(batch(at(130), fleet.heartbeat("T1", at(130))))
    assert [r["status"] for r in incidents(db, kind="printer_paper_out")] == ["resolved"]
    engine.after_commit(batch(at(200), fleet.status("T1", at(200), {"printer": {"paper": "full"}})))
    engine.after_commit(batch(at(260), fleet.status("T1", at(260), {"printer": {"paper": "out"}})))
    [row] = incidents(db, kind="printer_paper_out")
    assert row["status"] == "open"  # reopened: within the reopen window of the resolution
    assert log_actions(db, incident_id) == ["opened", "resolved", "reopened"]


def test_a_reopened_incident_needs_acknowledging_again(
    db: Conn, fleet: Fleet, engine: RuleEngine, incident_id: int
) -> None:
    lifecycle.acknowledge(db, incident_id, "anna", None, at(10))
    engine.after_commit(batch(at(20), fleet.status("T1", at(20), {"printer": {"paper": "full"}})))
    engine.tick(at(141))
    engine.after_commit(batch(at(200), fleet.status("T1", at(200), {"printer": {"paper": "out"}})))
    [row] = incidents(db, kind="printer_paper_out")
    assert (row["status"], row["acknowledged_at"]) == ("open", None)
