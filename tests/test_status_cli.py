"""``termwatch status TID``: the terminal card in a terminal, as rich text and as JSON."""

from __future__ import annotations

import json

import pytest

from termwatch.cli import main
from termwatch.settings import Settings
from tests.test_api_fleet import Conn, paper_out_terminal


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERMWATCH_DATABASE_URL", settings.require_database())
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.delenv("TERMWATCH_CONFIG", raising=False)


@pytest.mark.usefixtures("env")
def test_it_prints_the_card_with_the_printer_out_of_paper_and_guidance(
    db: Conn, capsys: pytest.CaptureFixture[str]
) -> None:
    incident_id = paper_out_terminal(db)
    assert main(["status", "T-000042", "--tz-offset-min", "180"]) == 0
    out = capsys.readouterr().out
    assert "T-000042" in out
    assert "Tverskaya St 12, Moscow" in out
    assert "online" in out
    assert "out of paper" in out
    assert "The terminal cannot print receipts now (out of paper" in out
    assert str(incident_id) in out
    assert "500.00 RUB" in out
    assert "receipt printed: out of paper" in out


@pytest.mark.usefixtures("env")
def test_it_explains_the_callers_operation_in_russian(
    db: Conn, capsys: pytest.CaptureFixture[str]
) -> None:
    paper_out_terminal(db)
    code = main(
        [
            "status",
            "T-000042",
            "--lang",
            "ru",
            "--amount",
            "500",
            "--at",
            "2026-05-04T10:30+03:00",
            "--tz-offset-min",
            "180",
        ]
    )
    assert code == 0
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "нет бумаги" in out
    assert "Платёж на 500,00 ₽ в 04.05.2026 10:31 прошёл и зачислен" in out


@pytest.mark.usefixtures("env")
def test_it_prints_the_same_card_as_the_api_in_json(
    db: Conn, capsys: pytest.CaptureFixture[str]
) -> None:
    incident_id = paper_out_terminal(db)
    assert main(["status", "T-000042", "--json", "--op", "T-000042-op-caller"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["tid"] == "T-000042"
    assert card["devices"][0]["problems"] == ["paper_out"]
    assert [i["id"] for i in card["incidents"]] == [incident_id]
    assert card["selected_operation"]["op_id"] == "T-000042-op-caller"
    assert card["guidance"].startswith("The payment of 500.00 RUB")


@pytest.mark.usefixtures("env")
def test_it_exits_1_for_an_unknown_terminal_and_2_for_a_malformed_id(
    db: Conn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "T-NOPE"]) == 1
    assert "no terminal T-NOPE" in capsys.readouterr().err
    assert main(["status", "no such id!"]) == 2
    assert "is not a terminal id" in capsys.readouterr().err
