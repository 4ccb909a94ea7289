"""Complaint intake: idempotent by ref, correlated to an operation and an incident, every
category, and the silent faults that only complaints reveal."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
import psycopg
import pytest
from prometheus_client import REGISTRY

from rules.engine import RuleEngine
from rules.intake import ComplaintIntake
from terminals.contract import Complaint
from termwatch.db import Row
from termwatch.settings import Settings
from tests.rules_support import Fleet, at, batch, incidents, log_actions

Conn = psycopg.Connection[Row]


@pytest.fixture
def fleet(db: Conn) -> Fleet:
    fleet = Fleet(db)
    fleet.register("T1", address="Moscow, Tverskaya street 12, metro", city="Moscow")
    fleet.register("T2", address="Moscow, Arbat street 5, mall", city="Moscow")
    return fleet


@pytest.fixture
def intake(settings: Settings) -> ComplaintIntake:
    return ComplaintIntake(settings)


def complaint(ref: str, category: str, occurred: datetime, **extra: Any) -> Complaint:
    body: dict[str, Any] = {
        "ref": ref,
        "received_at": (occurred + timedelta(minutes=30)).isoformat(),
        "channel": "phone",
        "category": category,
        "occurred_at": occurred.isoformat(),
        "customer": "+7 916 123-45-67",
    }
    if "tid" not in extra and "address" not in extra:
        body["tid"] = "T1"
    body.update(extra)
    return msgspec.convert(body, Complaint)


def complaints_counter(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "termwatch_messages_total", {"kind": "complaints", "outcome": outcome}
    )
    return value or 0.0


def test_it_explains_a_missing_receipt_with_the_paper_out_incident(
    db: Conn, fleet: Fleet, engine: RuleEngine, intake: ComplaintIntake
) -> None:
    engine.after_commit(
        batch(at(16 * 60), fleet.status("T1", at(16 * 60), {"printer": {"paper": "out"}}))
    )
    op = fleet.operation("T1", at(31 * 60), op_id="OP-1", receipt="failed:paperOut")
    engine.after_commit(batch(at(31 * 60), op))
    fleet.operation("T1", at(25 * 60), op_id="OP-0", amount=10_000, receipt="failed:paperOut")
    stored = complaints_counter("stored")
    result = intake.submit(
        db, complaint("CRM-1", "no_receipt", at(30 * 60), amount_minor=50_000), at(3600)
    )
    [incident] = incidents(db, kind="printer_paper_out")
    assert result.created is True
    assert (result.tid, result.matched_op_id, result.incident_id) == ("T1", "OP-1", incident["id"])
    assert result.verdict == (
        "receipt not printed (printer out of paper since 10:16); "
        "payment of 500.00 RUB at 10:31 credited"
    )
    assert incident["complaints"] == 1
    assert log_actions(db, incident["id"]) == ["opened", "updated"]
    assert complaints_counter("stored") == stored + 1


def test_it_returns_the_first_result_for_a_known_ref_and_adds_nothing(
    db: Conn, fleet: Fleet, intake: ComplaintIntake
) -> None:
    fleet.operation("T1", at(0), op_id="OP-1")
    first = intake.submit(db, complaint("CRM-1", "other", at(0), amount_minor=50_000), at(3600))
    duplicates = complaints_counter("duplicate")
    again = intake.submit(db, complaint("CRM-1", "no_receipt", at(600), tid="T2"), at(3700))
    assert again.created is False
    assert (again.id, again.tid, again.matched_op_id, again.verdict) == (
        first.id,
        first.tid,
        first.matched_op_id,
        first.verdict,
    )
    assert db.execute("SELECT count(*) AS n FROM complaints").fetchone() == {"n": 1}
    assert complaints_counter("duplicate") == duplicates + 1


def test_it_says_money_is_at_risk_when_cash_was_taken_and_the_payment_not_sent(
    db: Conn, fleet: Fleet, engine: RuleEngine, intake: ComplaintIntake
) -> None:
    engine.after_commit(
        batch(at(0), fleet.status("T1", at(0), {"cashAcceptor": {"shutter": "jammedOpen"}}))
    )
    op = fleet.operation(
        "T1", at(300), op_id="OP-9", amount=100_000, sent="failed:shutterFail", receipt="skipped"
    )
    engine.after_commit(batch(at(300), op))
    result = intake.submit(
        db,
        complaint("CRM-2", "cash_not_credited", at(600), amount_minor=100_000),
        at(4000),
    )
    [incident] = incidents(db, kind="cash_acceptor_jam")
    assert result.incident_id == incident["id"]
    assert result.matched_op_id == "OP-9"
    assert result.verdict.startswith(
        "cash accepted, payment not sent (cash acceptor jammed since 10:00): money at risk"
    )
    assert incident["money_at_risk_minor"] == 100_000


def test_it_explains_a_failed_payment_with_the_payment_failures_incident(
    db: Conn, fleet: Fleet, engine: RuleEngine, intake: ComplaintIntake
) -> None:
    for i, amount in enumerate((30_000, 70_000)):
        op = fleet.operation(
            "T1", at(60 * i), op_id=f"OP-{i}", amount=amount, cash="skipped",
            sent="timeout:hostTimeout", receipt="skipped",
        )  # fmt: skip
        engine.after_commit(batch(at(60 * i), op))
    result = intake.submit(
        db, complaint("CRM-3", "payment_failed", at(120), amount_minor=70_000), at(4000)
    )
    assert result.matched_op_id == "OP-1"
    assert result.incident_id == incidents(db, kind="payment_failures")[0]["id"]
    assert "failed (payments failing since 10:01)" in result.verdict


def test_it_explains_an_out_of_order_terminal_with_the_offline_incident(
    db: Conn, fleet: Fleet, engine: RuleEngine, intake: ComplaintIntake
) -> None:
    engine.after_commit(batch(at(0), fleet.heartbeat("T1", at(0))))
    engine.tick(at(400))
    result = intake.submit(
        db, complaint("CRM-4", "terminal_out_of_order", at(600), customer=None), at(4000)
    )
    assert result.matched_op_id is None
    assert result.incident_id == incidents(db, kind="terminal_offline")[0]["id"]
    assert result.verdict.startswith("no matching operation on T1 between 09:25 and 10:25")
    assert "terminal offline since 10:03" in result.verdict


def test_it_leaves_an_other_complaint_unexplained_by_device_faults(
    db: Conn, fleet: Fleet, engine: RuleEngine, intake: ComplaintIntake
) -> None:
    engine.after_commit(batch(at(0), fleet.status("T1", at(0), {"printer": {"paper": "out"}})))
    result = intake.submit(db, complaint("CRM-5", "other", at(60), text="too slow"), at(4000))
    assert result.incident_id is None
    assert result.verdict.endswith("no device fault explains it")


def test_it_finds_the_terminal_from_the_address(
    db: Conn, fleet: Fleet, intake: ComplaintIntake
) -> None:
    fleet.operation("T1", at(0), op_id="OP-1", amount=25_000)
    result = intake.submit(
        db,
        complaint(
            "CRM-6", "no_receipt", at(120), address="tverskaya st. 12, Moscow", amount_minor=25_000
        ),
        at(4000),
    )
    assert (result.tid, result.matched_op_id) == ("T1", "OP-1")


def test_it_says_so_when_the_address_matches_no_terminal(
    db: Conn, fleet: Fleet, intake: ComplaintIntake
) -> None:
    result = intake.submit(
        db, complaint("CRM-7", "no_receipt", at(0), address="Lenina street 99, Omsk"), at(4000)
    )
    assert (result.tid, result.matched_op_id, result.incident_id) == (None, None, None)
    assert result.verdict == "terminal not identified: no registered terminal matches the address"


def test_it_picks_the_terminal_with_the_customers_operation_when_the_address_is_shared(
    db: Conn, fleet: Fleet, intake: ComplaintIntake
) -> None:
    fleet.register("T3", address="Moscow, Arbat street 5, mall", city="Moscow")
    fleet.operation("T3", at(0), op_id="OP-3", amount=40_000, receipt="failed:paperOut")
    result = intake.submit(
        db,
        complaint("CRM-8", "no_receipt", at(300), address="Arbat 5", amount_minor=40_000),
        at(4000),
    )
    assert (result.tid, result.matched_op_id) == ("T3", "OP-3")


def test_it_matches_no_operation_when_none_fits(
    db: Conn, fleet: Fleet, intake: ComplaintIntake
) -> None:
    fleet.operation("T1", at(0), op_id="OP-1", amount=10_000)
    fleet.operation("T1", at(-3 * 3600), op_id="OP-old", amount=50_000, receipt="failed:paperOut")
    result = intake.submit(
        db, complaint("CRM-9", "no_receipt", at(600), amount_minor=50_000), at(4000)
    )
    assert result.matched_op_id is None


def test_it_opens_a_silent_fault_when_complaints_gather_that_no_incident_explains(
    db: Conn, fleet: Fleet, engine: RuleEngine, intake: ComplaintIntake
) -> None:
    results = []
    for i in range(3):
        op = fleet.operation("T1", at(1200 * i), op_id=f"OP-{i}", amount=20_000 + i * 10_000)
        engine.after_commit(batch(at(1200 * i), op))
        results.append(
            intake.submit(
                db,
                complaint(
                    f"CRM-S{i}",
                    "cash_not_credited",
                    at(1200 * i),
                    amount_minor=20_000 + i * 10_000,
                ),
                at(1200 * i + 1800),
            )
        )
    assert [r.incident_id for r in results[:2]] == [None, None]
    [incident] = incidents(db, kind="silent_fault")
    assert results[2].incident_id == incident["id"]
    assert incident["opened_at"] == at(2400 + 1800)
    assert incident["complaints"] == 3
    assert incident["operations_affected"] == 3
    assert incident["money_at_risk_minor"] == 20_000 + 30_000 + 40_000
    attached = db.execute(
        "SELECT count(*) AS n FROM complaints WHERE incident_id = %s", (incident["id"],)
    ).fetchone()
    assert attached == {"n": 3}
    assert "checked with the payment host" in results[2].verdict
    # A later complaint is explained by the open silent fault.
    later = intake.submit(db, complaint("CRM-S9", "payment_failed", at(5000)), at(5000 + 1800))
    assert later.incident_id == incident["id"]
    # Quiet for four hours after the last complaint: resolved by the rules.
    engine.tick(at(5000 + 1800 + 4 * 3600 - 1))
    assert incidents(db, kind="silent_fault")[0]["status"] == "open"
    engine.tick(at(5000 + 1800 + 4 * 3600 + 1))
    assert incidents(db, kind="silent_fault")[0]["status"] == "resolved"


def test_complaints_on_different_terminals_do_not_add_up_to_a_silent_fault(
    db: Conn, fleet: Fleet, intake: ComplaintIntake
) -> None:
    for i, tid in enumerate(("T1", "T2", "T1", "T2")):
        intake.submit(db, complaint(f"CRM-D{i}", "other", at(600 * i), tid=tid), at(4000))
    assert incidents(db, kind="silent_fault") == []


def test_the_collector_sink_stores_each_new_complaint_once(
    db: Conn, fleet: Fleet, intake: ComplaintIntake
) -> None:
    items = [complaint("CRM-A", "other", at(0)), complaint("CRM-B", "other", at(60))]
    with db.transaction():
        ids = intake.store(db, items)
    assert all(isinstance(i, int) for i in ids)
    with db.transaction():
        assert intake.store(db, [items[0], complaint("CRM-C", "other", at(0))])[0] is None
    assert db.execute("SELECT count(*) AS n FROM complaints").fetchone() == {"n": 3}
