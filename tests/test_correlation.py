"""Correlation: finding the terminal by address and the operation by its traits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC

import psycopg
import pytest

from rules import addresses, correlation
from rules.facts import OpFact
from rules.model import StepFact
from termwatch.db import Row
from tests.rules_support import Fleet, at

Conn = psycopg.Connection[Row]


def op(
    *,
    amount: int = 50_000,
    seconds: float = 0,
    account: str | None = "4567",
    receipt: str = "success",
    sent: str = "success",
    risk: int = 0,
) -> OpFact:
    return OpFact(
        tid="T1",
        msg_id="m",
        op_id="OP",
        ts=at(seconds),
        outcome="completed",
        amount_minor=amount,
        currency="RUB",
        account_last4=account,
        money_at_risk_minor=risk,
        steps=(
            StepFact("cashAccepted", "success", None),
            StepFact("paymentSent", sent, None),
            StepFact("receiptPrinted", receipt, None),
        ),
    )


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("Moscow, Tverskaya street 12, metro", ["T1"]),
        ("tverskaya 12", ["T1"]),
        ("12 Tverskaya St., Moscow", ["T1"]),
        ("г. Казань, ул. Баумана, д. 7", ["T3"]),
        ("Баумана 7", ["T3"]),
        ("Tverskaya 13", []),
        ("Arbat 5", ["T2", "T4"]),
        ("", []),
    ],
)
def test_it_finds_terminals_by_address(db: Conn, query: str, found: list[str]) -> None:
    fleet = Fleet(db)
    fleet.register("T1", address="Moscow, Tverskaya street 12, metro", city="Moscow")
    fleet.register("T2", address="Moscow, Arbat street 5, mall", city="Moscow")
    fleet.register("T3", address="ул. Баумана, д. 7", city="Казань")
    fleet.register("T4", address="Moscow, Arbat 5, cinema", city="Moscow")
    assert [c.tid for c in addresses.find_terminals(db, query)] == found


def score(operation: OpFact, *, amount: int | None, last4: str | None, category: str) -> float:
    return correlation.score_operation(
        operation,
        category=category,
        occurred_at=at(0),
        amount_minor=amount,
        customer_last4=last4,
        already_matched=False,
    )


def test_the_same_amount_and_account_outweigh_a_closer_time() -> None:
    right = op(amount=50_000, seconds=600)
    wrong = op(amount=30_000, seconds=0, account="1111")
    assert score(right, amount=50_000, last4="4567", category="other") > score(
        wrong, amount=50_000, last4="4567", category="other"
    )


@pytest.mark.parametrize(
    ("category", "good", "bad"),
    [
        ("no_receipt", op(receipt="failed"), op()),
        ("payment_failed", op(sent="timeout"), op()),
        ("cash_not_credited", op(sent="failed", risk=50_000), op(sent="skipped")),
    ],
)
def test_the_category_decides_between_otherwise_equal_operations(
    category: str, good: OpFact, bad: OpFact
) -> None:
    assert correlation.category_fit(category, good) > correlation.category_fit(category, bad)


def test_a_remembered_time_far_off_costs_score() -> None:
    near = op(seconds=5 * 60)
    far = op(seconds=40 * 60)
    assert score(near, amount=None, last4=None, category="other") > score(
        far, amount=None, last4=None, category="other"
    )


def test_it_matches_operations_from_45_minutes_before_to_15_minutes_after(db: Conn) -> None:
    fleet = Fleet(db)
    fleet.register("T1")
    for minutes in (-50, -44, 14, 16):
        fleet.operation("T1", at(minutes * 60), op_id=f"OP{minutes}")
    found = correlation.candidate_operations(db, "T1", at(0))
    assert [o.op_id for o in found] == ["OP-44", "OP14"]


@pytest.mark.parametrize(
    ("category", "operation", "incident_kind", "expected"),
    [
        (
            "no_receipt",
            op(receipt="failed", seconds=31 * 60),
            "printer_paper_out",
            "receipt not printed (printer out of paper since 10:16); "
            "payment of 500.00 RUB at 10:31 credited",
        ),
        (
            "cash_not_credited",
            op(sent="failed", risk=50_000, seconds=31 * 60),
            "cash_acceptor_jam",
            "cash accepted, payment not sent (cash acceptor jammed since 10:16): money at risk "
            "(500.00 RUB, operation OP at 10:31)",
        ),
        (
            "cash_not_credited",
            op(seconds=31 * 60),
            None,
            "the terminal reports the payment of 500.00 RUB at 10:31 as completed and sent; "
            "no device fault explains the complaint",
        ),
        (
            "other",
            op(seconds=31 * 60),
            None,
            "operation of 500.00 RUB at 10:31 completed normally",
        ),
    ],
)
def test_the_verdict_says_what_happened_in_plain_words(
    category: str, operation: OpFact, incident_kind: str | None, expected: str
) -> None:
    incident = {"kind": incident_kind, "opened_at": at(16 * 60)} if incident_kind else None
    text = correlation.verdict(
        tid="T1",
        category=category,
        op=operation,
        incident=incident,
        occurred_at=at(30 * 60),
    )
    assert text == expected


def test_the_verdict_uses_the_complaints_own_time_zone() -> None:
    stored = op(receipt="failed", seconds=60)
    from_db = replace(stored, ts=stored.ts.astimezone(UTC))  # rows come back in UTC
    text = correlation.verdict(
        tid="T1", category="no_receipt", op=from_db, incident=None, occurred_at=at(0)
    )
    assert "at 10:01" in text
