"""clock_skew: a terminal whose clock is off the fleet's by more than the bound (default
5 minutes) has a minor incident, resolved once its clock is right again."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from collector import liveness
from rules.config import parse_rules
from rules.engine import RuleEngine
from termwatch.db import Row
from tests.rules_support import HEALTHY, Fleet, at, batch, incidents, log_actions

Conn = psycopg.Connection[Row]


@pytest.fixture
def fleet(db: Conn) -> Fleet:
    fleet = Fleet(db)
    for tid in ("T1", "T2"):
        fleet.register(tid)
    return fleet


def test_a_terminal_hours_ahead_opens_a_minor_clock_skew_that_resolves_when_set_right(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(0), fleet.status("T1", at(0), HEALTHY)))
    engine.after_commit(batch(at(0), fleet.status("T2", at(0), HEALTHY)))
    liveness.record_offsets(db, {"T1": timedelta(hours=2, minutes=3)}, at(30))
    engine.tick(at(60))
    [incident] = incidents(db)
    assert (incident["tid"], incident["kind"], incident["severity"], incident["status"]) == (
        "T1",
        "clock_skew",
        "minor",
        "open",
    )
    assert incident["opened_at"] == at(30)
    assert "2 h 03 min ahead" in str(incident["details"])

    liveness.record_offsets(db, {}, at(300), cleared=["T1"])  # its clock is right again
    engine.tick(at(360))
    engine.tick(at(360 + 121))
    [incident] = incidents(db, kind="clock_skew")
    assert incident["status"] == "resolved"
    assert log_actions(db, incident["id"])[0] == "opened"


def test_an_offset_within_the_bound_opens_nothing(
    db: Conn, fleet: Fleet, engine: RuleEngine
) -> None:
    engine.after_commit(batch(at(0), fleet.status("T1", at(0), HEALTHY)))
    liveness.record_offsets(db, {"T1": timedelta(minutes=-4)}, at(30))
    engine.tick(at(60))
    assert incidents(db) == []


def test_the_bound_is_a_setting_of_the_rules_file() -> None:
    rules = parse_rules(
        "version: 1\nrules:\n  - name: clock_skew\n    severity: minor\n    title: Clock\n"
        "    when:\n      - clock: {off_by_more_than: 90s}\n"
    )
    [rule] = rules.clock_rules
    assert rule.clock_clause is not None
    assert rule.clock_clause.off_by_more_than == timedelta(seconds=90)
    with pytest.raises(ValueError, match="off_by_more_than"):
        parse_rules(
            "version: 1\nrules:\n  - name: clock_skew\n    severity: minor\n    title: Clock\n"
            "    when:\n      - clock: {}\n"
        )
