"""The command line: incidents, silences, complaint import and rule checks."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from rules.engine import RuleEngine
from termwatch.cli import build_parser
from termwatch.db import Row
from termwatch.settings import Settings
from tests.rules_support import Fleet, at, batch, incidents

Conn = psycopg.Connection[Row]


def run(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    code: int = args.func(args, settings)
    return code


@pytest.fixture
def fleet(db: Conn) -> Fleet:
    fleet = Fleet(db)
    fleet.register("T1", address="Moscow, Tverskaya street 12, metro")
    return fleet


@pytest.fixture
def incident_id(db: Conn, fleet: Fleet, engine: RuleEngine) -> int:
    engine.after_commit(batch(at(0), fleet.status("T1", at(0), {"printer": {"paper": "out"}})))
    engine.after_commit(batch(at(5), fleet.operation("T1", at(5), receipt="failed:paperOut")))
    return int(incidents(db)[0]["id"])


def test_incidents_list_prints_json(
    settings: Settings, incident_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(settings, "incidents", "list", "--status", "open", "--json") == 0
    [item] = json.loads(capsys.readouterr().out)
    assert item["id"] == incident_id
    assert item["kind"] == "printer_paper_out"
    assert item["operations_affected"] == 1
    assert set(item) >= {
        "id", "kind", "tid", "severity", "status", "title", "opened_at", "acknowledged_at",
        "resolved_at", "complaints", "operations_affected", "money_at_risk_minor",
    }  # fmt: skip


def test_incidents_list_prints_a_table(
    settings: Settings, incident_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(settings, "incidents", "list") == 0
    out = capsys.readouterr().out
    assert "printer_paper_out" in out
    assert "T1" in out


def test_incidents_show_prints_the_evidence(
    settings: Settings, incident_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(settings, "incidents", "show", str(incident_id), "--json") == 0
    detail = json.loads(capsys.readouterr().out)
    assert len(detail["evidence"]["operations"]) == 1
    assert detail["evidence"]["states"][0]["summary"].startswith("printer.paper out")
    assert [e["action"] for e in detail["log"]] == ["opened"]
    assert run(settings, "incidents", "show", str(incident_id)) == 0
    assert "printer.paper out" in capsys.readouterr().out


def test_incidents_ack_and_resolve_change_the_status(
    db: Conn, settings: Settings, incident_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(settings, "incidents", "ack", str(incident_id), "--by", "anna") == 0
    assert run(settings, "incidents", "ack", str(incident_id), "--by", "anna") == 1
    assert "is acknowledged" in capsys.readouterr().err
    assert run(settings, "incidents", "resolve", str(incident_id), "--note", "roll replaced") == 0
    [row] = incidents(db)
    assert (row["status"], row["acknowledged_by"], row["resolved_by"]) == (
        "resolved",
        "anna",
        "cli",
    )
    assert run(settings, "incidents", "show", "999") == 1
    assert run(settings, "incidents", "ack", "999") == 1
    assert "no incident 999" in capsys.readouterr().err


def test_silences_add_list_and_expire(
    settings: Settings, db: Conn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(settings, "silences", "add", "--region", "North", "--for", "2h", "--by", "ops") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "region=North: matches 0 open incident(s)"
    assert out[-1].startswith("silence 1 until")
    assert run(settings, "silences", "list", "--json") == 0
    [item] = json.loads(capsys.readouterr().out)
    assert (item["region"], item["created_by"]) == ("North", "ops")
    assert run(settings, "silences", "expire", "1") == 0
    assert run(settings, "silences", "expire", "1") == 1
    assert run(settings, "silences", "list") == 0
    assert "no active silences" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--for", "2h"], "at least one matcher: tid, region or kind"),
        (["--tid", "T1", "--for", "soon"], "--for: expected a duration"),
        (["--tid", "T1", "--until", "2020-01-01T00:00:00+00:00"], "must be in the future"),
        (["--tid", "T1", "--until", "2030-01-01T00:00:00"], "give the time zone"),
    ],
)
def test_silences_add_refuses_bad_input(
    settings: Settings, db: Conn, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert run(settings, "silences", "add", *argv) == 1
    assert message in capsys.readouterr().err


def test_complaints_import_stores_a_good_file(
    db: Conn, fleet: Fleet, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.operation("T1", at(0), op_id="OP-1", amount=50_000, receipt="failed:paperOut")
    path = tmp_path / "crm.csv"
    path.write_text(
        "ref,received_at,channel,category,tid,address,occurred_at,amount_minor,currency,customer,text\n"
        f"CRM-1,{at(1800).isoformat()},phone,no_receipt,T1,,{at(60).isoformat()},50000,RUB,"
        '+79161234567,"paid 500, no receipt"\n'
        f'CRM-2,{at(1800).isoformat()},web,other,,"Tverskaya 12, Moscow",'
        f"{at(60).isoformat()},,,,\n",
        encoding="utf-8",
    )
    assert run(settings, "complaints", "import", str(path)) == 0
    assert "imported 2 complaints (0 already known); 1 matched" in capsys.readouterr().out
    rows = db.execute("SELECT ref, tid, matched_op_id FROM complaints ORDER BY ref").fetchall()
    assert [tuple(r.values()) for r in rows] == [("CRM-1", "T1", "OP-1"), ("CRM-2", "T1", None)]
    assert run(settings, "complaints", "import", str(path)) == 0
    assert "imported 0 complaints (2 already known)" in capsys.readouterr().out


def test_complaints_import_refuses_a_bad_file_with_line_numbers_and_stores_nothing(
    db: Conn, fleet: Fleet, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = at(0).isoformat()
    path = tmp_path / "crm.csv"
    path.write_text(
        "ref,received_at,category,tid,address,occurred_at,amount_minor\n"
        f"CRM-1,{t},no_receipt,T1,,{t},100\n"
        f"CRM-2,{t},lost_card,T1,,{t},100\n"
        f"CRM-3,{t},other,,,{t},100\n"
        f"CRM-4,{t},other,T1,,{t},12.50\n"
        f"CRM-5,yesterday,other,T1,,{t},1\n"
        f"CRM-1,{t},other,T1,,{t},1\n"
        f"CRM-7,{t},other,T1\n",
        encoding="utf-8",
    )
    assert run(settings, "complaints", "import", str(path)) == 1
    err = capsys.readouterr().err
    assert "refused, nothing imported" in err
    for expected in (
        "line 3: category must be one of",
        "line 4: either tid or address is required",
        "line 5: amount_minor: not a whole number",
        "line 6: received_at:",
        "line 7: ref repeats line 2",
        "line 8: 4 cells, the header has 7",
    ):
        assert expected in err
    assert db.execute("SELECT count(*) AS n FROM complaints").fetchone() == {"n": 0}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "line 1: empty file"),
        ("ref,when\n", "line 1: unknown column 'when'"),
        ("ref,received_at,category\n", "line 1: missing column 'occurred_at'"),
    ],
)
def test_complaints_import_refuses_a_bad_header(
    db: Conn,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    message: str,
) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(content, encoding="utf-8")
    assert run(settings, "complaints", "import", str(path)) == 1
    assert message in capsys.readouterr().err


def test_rules_check_names_the_line_of_a_mistake(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(settings, "rules", "check") == 0
    assert "terminal_offline" in capsys.readouterr().out
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nrules:\n  - name: x\n    severity: loud\n", encoding="utf-8")
    assert run(settings, "rules", "check", str(path)) == 1
    assert f"{path}:3: a rule: missing key" in capsys.readouterr().err
