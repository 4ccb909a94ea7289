"""Search as callers speak: digits of an id, a misspelt street, a city beside a street, the
best match first, with and without pg_trgm, and the docs' examples on the demo fleet."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from simulator.fleet import build_fleet, save_registry
from simulator.scenario import load_scenario
from terminals import registry
from termwatch.demo_data.fleet import scenario_path
from termwatch.web import search as search_module
from termwatch.web.search import search
from tests.test_api_fleet import Conn, add_terminal


def tids(conn: Conn, query: str) -> list[str]:
    return [hit.tid for hit in search(conn, query)]


def needs_trgm(conn: Conn) -> None:
    if not search_module.has_trgm(conn):
        pytest.skip("pg_trgm is not installed on this server")


def test_digits_alone_find_the_id_they_are_first_then_ids_containing_them(db: Conn) -> None:
    for tid in ("T-000340", "T-000134", "T-034000", "T-000034", "T-000035", "K-34"):
        add_terminal(db, tid)
    found = tids(db, "34")
    assert found[:2] == ["K-34", "T-000034"]
    assert set(found) == {"T-000340", "T-000134", "T-034000", "T-000034", "K-34"}
    assert found.index("T-000134") < found.index("T-000340")  # ends with 34 before contains
    assert tids(db, "000034")[0] == "T-000034"
    assert tids(db, "99") == []


def test_a_misspelt_street_still_finds_it(db: Conn) -> None:
    needs_trgm(db)
    add_terminal(db, "T-1", address="ул. Баумана, д. 5", city="Казань")
    add_terminal(db, "T-2", address="ул. Ленина, д. 7", city="Казань")
    assert tids(db, "Баумона") == ["T-1"]
    assert tids(db, "Казань Баумона 5") == ["T-1"]
    assert tids(db, "Бууу") == []


def test_a_city_beside_a_street_narrows_to_that_city(db: Conn) -> None:
    add_terminal(db, "T-1", address="ул. Баумана, д. 5", city="Москва")
    add_terminal(db, "T-2", address="ул. Баумана, д. 53", city="Казань")
    assert tids(db, "Баумана") == ["T-1", "T-2"]
    assert tids(db, "Казань Баумана") == ["T-2"]


def test_the_closest_match_comes_first(db: Conn) -> None:
    needs_trgm(db)
    add_terminal(db, "T-1", name="Киоск", address="ул. Мирабелла, д. 5", city="Казань")
    add_terminal(db, "T-2", name="Киоск", address="ул. Мира, д. 5", city="Казань")
    assert tids(db, "Мира") == ["T-2", "T-1"]


def test_without_pg_trgm_words_and_fragments_still_find_terminals(db: Conn) -> None:
    needs_trgm(db)
    add_terminal(db, "T-1", address="ул. Тверская, д. 12", city="Москва")
    assert tids(db, "Тверкая") == ["T-1"]
    index = db.execute(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'terminals_search_trgm'"
    ).fetchone()
    assert index is not None
    db.execute("DROP EXTENSION pg_trgm CASCADE")
    search_module._TRGM.clear()
    try:
        assert tids(db, "Тверская 12") == ["T-1"]
        assert tids(db, "верская") == ["T-1"]
        assert tids(db, "Тверкая") == []  # no fuzzy step without pg_trgm
    finally:
        db.execute("CREATE EXTENSION pg_trgm")
        db.execute(index["indexdef"])  # the database is shared by the tests that follow
        search_module._TRGM.clear()


def test_the_docs_examples_find_terminals_in_the_demo_fleet(db: Conn) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "registry.csv"
        save_registry(build_fleet(load_scenario(str(scenario_path()))), path)
        registry.load(db, registry.read(path))
    assert tids(db, "Казань Баумана") == ["T-000036"]
    assert tids(db, "Каз Баум") == ["T-000036"]
    assert tids(db, "Тверская 53") == ["T-000008"]
    assert tids(db, "34")[0] == "T-000034"
    assert tids(db, "T-00004")[:2] == ["T-000040", "T-000041"]
    assert tids(db, "T-0004") == ["T-000004"]
    assert tids(db, "t4") == ["T-000004"]
    found = search(db, "Екатеринбург Малышева")
    assert found == [] or all(hit.city == "Екатеринбург" for hit in found)
    row = db.execute("SELECT name, address, city FROM terminals WHERE tid = 'T-000036'").fetchone()
    assert row == {"name": "ТРЦ «Галерея», ул. Баумана", "address": "ул. Баумана, д. 53",
                   "city": "Казань"}  # fmt: skip
