"""The customer's number: last 4 digits and a keyed hash, never the number itself."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import re
from pathlib import Path

import msgspec
import psycopg
import pytest

from rules import pii
from rules.cli import cmd_complaints_import
from rules.intake import ComplaintIntake
from terminals.contract import Complaint
from termwatch.db import Row
from termwatch.settings import Settings
from tests.rules_support import Fleet, at

Conn = psycopg.Connection[Row]
NUMBER = "+79161234567"
SECRET_DIGITS = "9161234567"


def test_it_keeps_the_last_four_digits_and_a_keyed_hash() -> None:
    last4, digest = pii.protect(NUMBER, "k")
    assert last4 == "4567"
    assert digest == hmac.new(b"k", b"79161234567", hashlib.sha256).hexdigest()


def test_every_spelling_of_one_number_gives_one_hash() -> None:
    spellings = ["+7 (916) 123-45-67", "89161234567", "7 916 123 45 67", NUMBER]
    assert len({pii.protect(s, "k") for s in spellings}) == 1


def test_another_key_gives_another_hash() -> None:
    assert pii.protect(NUMBER, "k1")[1] != pii.protect(NUMBER, "k2")[1]


def test_without_a_key_no_hash_is_made() -> None:
    assert pii.protect(NUMBER, "") == ("4567", None)


def test_short_or_empty_values_give_what_they_can() -> None:
    assert pii.protect("", "k") == (None, None)
    assert pii.protect("  ", "k") == (None, None)
    last4, digest = pii.protect("wallet-ab", "k")
    assert last4 is None
    assert digest is not None


def test_it_scrubs_numbers_from_free_text() -> None:
    text = "call me on 8 (916) 123-45-67 or +79161234567, paid 500, card 4276 1234 5678 9012"
    assert pii.scrub(text) == "call me on ***4567 or ***4567, paid 500, card ***9012"


def _everything(conn: Conn) -> str:
    """Every row of every table as text."""
    tables = [
        r["tablename"]
        for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    ]
    dump = []
    for table in tables:
        for row in conn.execute(f'SELECT row_to_json(t)::text AS j FROM "{table}" t'):
            dump.append(row["j"])
    return "\n".join(dump)


def test_the_full_number_appears_nowhere_in_the_database_or_the_logs(
    db: Conn,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    fleet = Fleet(db)
    fleet.register("T1")
    fleet.operation("T1", at(0), op_id="OP-1", account="*4567", receipt="failed:paperOut")
    body = {
        "ref": "CRM-P1",
        "received_at": at(1800).isoformat(),
        "category": "no_receipt",
        "tid": "T1",
        "occurred_at": at(0).isoformat(),
        "amount_minor": 50_000,
        "customer": NUMBER,
        "text": "no receipt, call me back at 8 916 123 45 67 or " + NUMBER,
    }
    result = ComplaintIntake(settings).submit(db, msgspec.convert(body, Complaint), at(1800))
    assert result.matched_op_id == "OP-1"  # the last 4 digits still help find the operation
    csv = tmp_path / "c.csv"
    csv.write_text(
        "ref,received_at,category,tid,occurred_at,customer,text\n"
        f"CRM-P2,{at(1800).isoformat()},other,T1,{at(0).isoformat()},{NUMBER},fine\n"
        f"CRM-P3,{at(1800).isoformat()},nonsense,T1,{at(0).isoformat()},{NUMBER},x\n",
        encoding="utf-8",
    )
    args = argparse.Namespace(file=csv)
    assert cmd_complaints_import(args, settings) == 1  # refused: line 3 has a bad category
    printed = capsys.readouterr()
    assert "line 3" in printed.err
    row = db.execute(
        "SELECT customer_last4, customer_hash, text FROM complaints WHERE ref = 'CRM-P1'"
    ).fetchone()
    assert row is not None
    assert row["customer_last4"] == "4567"
    assert row["customer_hash"] == pii.protect(NUMBER, settings.pii_key)[1]
    for haystack in (_everything(db), caplog.text, printed.out + printed.err):
        joined = re.sub(r"(?<=\d)[\s().+-]+(?=\d)", "", haystack)
        assert SECRET_DIGITS not in joined
