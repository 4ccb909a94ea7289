"""Correlation that catches up: an operation or an incident that arrives after the complaint."""

from __future__ import annotations

import psycopg
import pytest

from rules.engine import RuleEngine
from rules.intake import ComplaintIntake
from termwatch.db import Row
from termwatch.settings import Settings
from tests.rules_support import HEALTHY, Fleet, at, batch, incidents, log_actions
from tests.test_complaints_intake import complaint

Conn = psycopg.Connection[Row]


@pytest.fixture
def fleet(db: Conn) -> Fleet:
    fleet = Fleet(db)
    fleet.register("T1", address="Moscow, Tverskaya street 12, metro", city="Moscow")
    return fleet


@pytest.fixture
def intake(settings: Settings) -> ComplaintIntake:
    return ComplaintIntake(settings)


def test_a_complaint_before_its_operation_is_matched_when_the_operation_is_stored(
    db: Conn, fleet: Fleet, engine: RuleEngine, intake: ComplaintIntake
) -> None:
    engine.after_commit(batch(at(0), fleet.status("T1", at(0), HEALTHY)))
    engine.after_commit(
        batch(at(16 * 60), fleet.status("T1", at(16 * 60), {"printer": {"paper": "out"}}))
    )
    [incident] = incidents(db, kind="printer_paper_out")
    # The CRM is faster than telemetry: the complaint comes first.
    first = intake.submit(
        db, complaint("CRM-1", "no_receipt", at(30 * 60), amount_minor=50_000), at(31 * 60)
    )
    assert first.matched_op_id is None
    # The terminal flushes its queue: the operation arrives later.
    op = fleet.operation("T1", at(31 * 60), op_id="OP-1", receipt="failed:paperOut")
    engine.after_commit(batch(at(33 * 60), op))
    again = intake.submit(
        db, complaint("CRM-1", "no_receipt", at(30 * 60), amount_minor=50_000), at(34 * 60)
    )
    assert again.created is False
    assert (again.matched_op_id, again.incident_id) == ("OP-1", incident["id"])
    assert again.verdict == (
        "receipt not printed (printer out of paper since 10:16); "
        "payment of 500.00 RUB at 10:31 credited"
    )
    history = db.execute(
        "SELECT matched_op_id, note FROM complaint_log WHERE complaint_id = %s", (first.id,)
    ).fetchall()
    assert [(h["matched_op_id"], h["note"]) for h in history] == [
        ("OP-1", "correlated again (operation stored)")
    ]


def test_an_incident_that_opens_later_explains_the_earlier_complaints(
    db: Conn, fleet: Fleet, engine: RuleEngine, intake: ComplaintIntake
) -> None:
    engine.after_commit(batch(at(0), fleet.status("T1", at(0), HEALTHY)))
    op = fleet.operation("T1", at(60), op_id="OP-1", receipt="failed:paperOut")
    engine.after_commit(batch(at(60), op))
    first = intake.submit(db, complaint("CRM-2", "no_receipt", at(60), amount_minor=50_000), at(90))
    assert first.incident_id is None
    # The printer's status (late: a backlog) says the paper was out from before.
    engine.after_commit(batch(at(120), fleet.status("T1", at(50), {"printer": {"paper": "out"}})))
    [incident] = incidents(db, kind="printer_paper_out")
    again = intake.submit(
        db, complaint("CRM-2", "no_receipt", at(60), amount_minor=50_000), at(150)
    )
    assert (again.matched_op_id, again.incident_id) == ("OP-1", incident["id"])
    assert again.verdict.startswith("receipt not printed (printer out of paper since")
    [row] = incidents(db, kind="printer_paper_out")
    assert row["complaints"] == 1
    assert log_actions(db, incident["id"]) == ["opened", "updated"]
