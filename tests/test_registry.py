"""The fleet registry import: insert or update, all or nothing, bad files refused by line."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from terminals import registry
from termwatch.cli import main
from termwatch.db import Row
from termwatch.settings import Settings

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fleet.csv"
HEADER = "tid,name,address,city,region,lat,lon,model,service_group\n"
GOOD = HEADER + (
    'T-1,Метро «Комсомольская»,"Комсомольская пл., 3",Москва,Москва,55.7764,37.6555,ТК-19,msk\n'
    "T-2,ТЦ «Кольцо»,ул. Петербургская 1,Казань,Татарстан,,,,kazan\n"
)


def run_import(settings: Settings, monkeypatch: pytest.MonkeyPatch, path: Path) -> int:
    assert settings.database_url is not None
    monkeypatch.setenv("TERMWATCH_DATABASE_URL", settings.database_url)
    return main(["terminals", "import", str(path)])


def terminals(db: psycopg.Connection[Row]) -> dict[str, dict[str, object]]:
    rows = db.execute("SELECT tid, name, city, lat, lon, model, service_group FROM terminals")
    return {r["tid"]: r for r in rows}


def test_it_imports_the_example_fleet(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    db: psycopg.Connection[Row],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_import(settings, monkeypatch, EXAMPLE) == 0
    assert "20 new, 0 updated" in capsys.readouterr().out
    fleet = terminals(db)
    assert len(fleet) == 20
    assert fleet["T-000009"]["city"] == "Санкт-Петербург"
    assert fleet["T-000001"]["lat"] == pytest.approx(55.7446)


def test_importing_again_updates_known_terminals_and_adds_new_ones(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    db: psycopg.Connection[Row],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = tmp_path / "fleet.csv"
    first.write_text(GOOD, encoding="utf-8")
    assert run_import(settings, monkeypatch, first) == 0
    second = tmp_path / "fleet2.csv"
    second.write_text(
        HEADER
        + "T-2,ТЦ «Кольцо»,ул. Петербургская 1,Казань,Татарстан,55.78,49.12,ТК-15,kazan-2\n"
        + "T-3,Вокзал,Привокзальная пл. 1,Казань,Татарстан,,,,kazan\n",
        encoding="utf-8",
    )
    assert run_import(settings, monkeypatch, second) == 0
    assert "1 new, 1 updated" in capsys.readouterr().out
    fleet = terminals(db)
    assert sorted(fleet) == ["T-1", "T-2", "T-3"]
    assert (fleet["T-2"]["service_group"], fleet["T-2"]["model"]) == ("kazan-2", "ТК-15")
    assert fleet["T-2"]["lat"] == pytest.approx(55.78)
    assert fleet["T-1"]["name"] == "Метро «Комсомольская»"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("", 1, "header row is required"),
        ("T-1,a,b,c,d,1,2,m,g\n", 1, "unknown column 't-1'"),
        ("tid,name,address,city,region,lat,lon,model\nT-1,a,b,c,d,,,m\n", 1, "missing column"),
        (HEADER + "T-1,a,b,c,d,,,m\n", 2, "8 fields, the header has 9"),
        (HEADER + "T 1,a,b,c,d,,,m,g\n", 2, "tid 'T 1' must be"),
        (HEADER + "T-1,,b,c,d,,,m,g\n", 2, "name is empty"),
        (HEADER + "T-1,a,b,c,,,,m,g\n", 2, "region is empty"),
        (HEADER + "T-1,a,b,c,d,91,10,m,g\n", 2, "lat 91 is outside -90..90"),
        (HEADER + "T-1,a,b,c,d,10,-181,m,g\n", 2, "lon -181 is outside -180..180"),
        (HEADER + "T-1,a,b,c,d,north,10,m,g\n", 2, "lat 'north' is not a number"),
        (HEADER + "T-1,a,b,c,d,10,,m,g\n", 2, "lat and lon must be given together"),
        (
            HEADER + "T-1,a,b,c,d,,,m,g\nT-2,a,b,c,d,,,m,g\nT-1,e,f,g,h,,,m,g\n",
            4,
            "tid T-1 is already on line 2",
        ),
        (HEADER + 'T-1,"unclosed,b,c,d,,,m,g\n', 2, "not valid CSV"),
        (HEADER, 0, "lists no terminals"),
    ],
)
def test_a_bad_file_is_refused_with_its_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(registry.RegistryError) as refused:
        registry.parse(text)
    assert refused.value.line == line
    assert reason in refused.value.reason


def test_a_refused_file_changes_nothing_and_names_the_line(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    db: psycopg.Connection[Row],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text(GOOD + "T-3,a,b,c,d,200,0,m,g\n", encoding="utf-8")
    assert run_import(settings, monkeypatch, path) == 1
    err = capsys.readouterr().err
    assert f"{path}:4: lat 200 is outside -90..90" in err
    assert terminals(db) == {}


def test_a_file_that_is_not_utf8_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    path.write_bytes(HEADER.encode() + "T-1,Москва,b,c,d,,,m,g\n".encode("cp1251"))
    with pytest.raises(registry.RegistryError, match="line 2: not UTF-8"):
        registry.read(path)


def test_a_byte_order_mark_and_blank_lines_are_accepted() -> None:
    parsed = registry.parse("\ufeff" + GOOD + "\n\n")
    assert [t.tid for t in parsed] == ["T-1", "T-2"]
    assert parsed[1].lat is None
