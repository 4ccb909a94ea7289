"""Storms: many terminals of one region failing at once become one paged regional incident."""

from __future__ import annotations

import psycopg
import pytest

from rules import lifecycle
from rules.engine import RuleEngine
from termwatch.db import Row
from tests.rules_support import Fleet, at, batch, incidents, log_actions

Conn = psycopg.Connection[Row]
NORTH = [f"N{i}" for i in range(6)]


@pytest.fixture
def fleet(db: Conn) -> Fleet:
    fleet = Fleet(db)
    for tid in NORTH:
        fleet.register(tid, region="North")
    fleet.register("S1", region="South")
    return fleet


def host_down(engine: RuleEngine, fleet: Fleet, tids: list[str], start: float) -> None:
    """Two timed-out payments on each terminal, terminal after terminal, 20 s apart."""
    for i, tid in enumerate(tids):
        t = start + 20 * i
        for offset in (0, 5):
            op = fleet.operation(tid, at(t + offset), sent="timeout:hostTimeout", receipt="skipped")
            engine.after_commit(batch(at(t + offset), op))


def test_it_groups_a_regional_outage_under_one_parent_incident(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    host_down(engine, fleet, [*NORTH, "S1"], 0)
    [parent] = incidents(db, is_group=True)
    assert (parent["tid"], parent["kind"], parent["severity"]) == (
        "region:North",
        "payment_failures",
        "critical",
    )
    children = incidents(db, parent_id=parent["id"])
    assert sorted(c["tid"] for c in children) == NORTH
    assert all(log_actions(db, c["id"]) == ["opened", "grouped"] for c in children[:5])
    assert log_actions(db, children[5]["id"]) == ["opened", "grouped"]
    assert incidents(db, tid="S1")[0]["parent_id"] is None
    assert parent["operations_affected"] == 12
    assert parent["money_at_risk_minor"] == 12 * 50_000
    assert log_actions(db, parent["id"]) == ["opened"]


def test_it_does_not_group_a_few_terminals(db: Conn, fleet: Fleet, engine: RuleEngine) -> None:
    host_down(engine, fleet, NORTH[:4], 0)
    assert incidents(db, is_group=True) == []
    assert len(incidents(db, kind="payment_failures")) == 4


def test_it_does_not_group_failures_spread_over_more_than_the_storm_window(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    for i, tid in enumerate(NORTH):
        t = 400.0 * i
        for offset in (0, 5):
            op = fleet.operation(tid, at(t + offset), sent="timeout:hostTimeout", receipt="skipped")
            engine.after_commit(batch(at(t + offset), op))
    assert incidents(db, is_group=True) == []


def test_the_parent_resolves_when_its_last_child_does(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    host_down(engine, fleet, NORTH, 0)
    [parent] = incidents(db, is_group=True)
    for tid in NORTH:
        engine.after_commit(batch(at(500), fleet.operation(tid, at(500))))
    engine.tick(at(619))
    assert incidents(db, is_group=True)[0]["status"] == "open"
    engine.tick(at(621))
    assert incidents(db, is_group=True)[0]["status"] == "resolved"
    assert log_actions(db, parent["id"]) == ["opened", "resolved"]


def test_acknowledging_the_parent_acknowledges_its_children(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    host_down(engine, fleet, NORTH, 0)
    [parent] = incidents(db, is_group=True)
    lifecycle.acknowledge(db, parent["id"], "duty engineer", "host provider called", at(200))
    assert {c["status"] for c in incidents(db, parent_id=parent["id"])} == {"acknowledged"}
    lifecycle.resolve(db, parent["id"], "duty engineer", None, at(300))
    assert {r["status"] for r in incidents(db, region="North")} == {"resolved"}
