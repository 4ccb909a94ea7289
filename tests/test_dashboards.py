"""The dashboards as code: generated files, their structure, and Grafana's macros."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dashboards import generate
from dashboards.kit import POSTGRES_UID, PROMETHEUS_UID
from dashboards.macros import MacroError, QueryContext, expand
from dashboards.verify import sql_queries
from termwatch.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "dashboards.md"


def _committed() -> list[dict[str, Any]]:
    return [
        json.loads((generate.JSON_DIR / spec.filename).read_text(encoding="utf-8"))
        for spec in generate.DASHBOARDS
    ]


def test_the_committed_json_is_exactly_what_the_code_generates() -> None:
    assert generate.stale() == []
    assert generate.rendered() == generate.rendered()  # stable from one run to the next


def test_generate_check_finds_a_file_that_differs_and_generate_rewrites_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboards", "generate", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        s.filename for s in generate.DASHBOARDS
    )
    assert main(["dashboards", "generate", "--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "fleet.json").write_text("{}\n", encoding="utf-8")
    assert main(["dashboards", "generate", "--out", str(tmp_path), "--check"]) == 1
    assert "fleet.json is out of date" in capsys.readouterr().err
    assert main(["dashboards", "generate", "--out", str(tmp_path)]) == 0
    assert generate.stale(tmp_path) == []


def test_there_are_the_five_dashboards_with_fixed_uids() -> None:
    assert [d["uid"] for d in _committed()] == [
        "termwatch-fleet",
        "termwatch-incidents",
        "termwatch-customers",
        "termwatch-terminal",
        "termwatch-health",
    ]
    assert all("termwatch" in d["tags"] for d in _committed())


def test_panels_have_unique_ids_and_do_not_overlap_on_the_grid() -> None:
    for dashboard in _committed():
        panels = dashboard["panels"]
        assert len({p["id"] for p in panels}) == len(panels), dashboard["uid"]
        cells: set[tuple[int, int]] = set()
        for panel in panels:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, panel["title"]
            mine = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cells & mine, f"{dashboard['uid']}: {panel['title']} overlaps"
            cells |= mine


def test_every_panel_has_a_description_and_docs_list_it() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for dashboard in _committed():
        assert dashboard["title"] in docs
        for panel in dashboard["panels"]:
            assert panel.get("description"), f"{dashboard['uid']}: {panel['title']}"
            assert f"**{panel['title']}**" in docs, f"docs/dashboards.md lacks {panel['title']}"


def test_queries_go_to_the_fixed_data_source_uids() -> None:
    by_uid = {d["uid"]: d for d in _committed()}
    for dashboard in _committed():
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                source = target["datasource"]["uid"]
                assert source in (POSTGRES_UID, PROMETHEUS_UID)
                assert ("rawSql" in target) == (source == POSTGRES_UID), panel["title"]
    assert all(
        t["datasource"]["uid"] == PROMETHEUS_UID
        for p in by_uid["termwatch-health"]["panels"]
        for t in p["targets"]
    )
    assert len(sql_queries(by_uid["termwatch-fleet"])) >= 10


def test_the_fleet_map_colours_terminals_by_state_from_registry_coordinates() -> None:
    fleet = next(d for d in _committed() if d["uid"] == "termwatch-fleet")
    geomap = next(p for p in fleet["panels"] if p["type"] == "geomap")
    layer = geomap["options"]["layers"][0]
    assert layer["location"] == {"mode": "coords", "latitude": "lat", "longitude": "lon"}
    assert layer["config"]["style"]["color"]["field"] == "state_code"
    assert "state_code" in geomap["targets"][0]["rawSql"]
    assert geomap["fieldConfig"]["defaults"]["color"]["mode"] == "thresholds"


def test_the_terminal_dashboard_has_a_terminal_variable_and_every_query_uses_it() -> None:
    terminal = next(d for d in _committed() if d["uid"] == "termwatch-terminal")
    [variable] = terminal["templating"]["list"]
    assert variable["name"] == "terminal"
    assert variable["datasource"]["uid"] == POSTGRES_UID
    for query in sql_queries(terminal):
        if not query.panel.startswith("variable"):
            assert "'$terminal'" in query.raw_sql, query.panel


CTX = QueryContext(
    time_from=datetime(2026, 5, 4, tzinfo=UTC),
    time_to=datetime(2026, 5, 5, 12, 30, tzinfo=UTC),
    interval="5m",
    variables={"terminal": "T-1", "regions": ("North", "O'Hare")},
)


def test_time_macros_expand_as_grafana_expands_them() -> None:
    assert (
        expand("WHERE $__timeFilter(ts)", CTX)
        == "WHERE ts BETWEEN '2026-05-04T00:00:00Z' AND '2026-05-05T12:30:00Z'"
    )
    assert expand("$__timeFrom() $__timeTo()", CTX) == (
        "'2026-05-04T00:00:00Z' '2026-05-05T12:30:00Z'"
    )
    assert expand("SELECT $__timeGroupAlias(ts, $__interval)", CTX) == (
        'SELECT floor(extract(epoch from ts)/300)*300 AS "time"'
    )
    assert expand("GROUP BY $__timeGroup(ts, '1h', 0)", CTX) == (
        "GROUP BY floor(extract(epoch from ts)/3600)*3600"
    )
    assert expand("$__unixEpochFilter(t)", CTX) == "t >= 1777852800 AND t <= 1777984200"


def test_variables_are_quoted_as_grafana_quotes_them() -> None:
    assert expand("tid = '$terminal' OR tid = '${terminal}'", CTX) == "tid = 'T-1' OR tid = 'T-1'"
    assert expand("region IN ($regions)", CTX) == "region IN ('North','O''Hare')"
    hostile = QueryContext(CTX.time_from, CTX.time_to, variables={"terminal": "x' OR '1'='1"})
    assert expand("tid = '$terminal'", hostile) == "tid = 'x'' OR ''1''=''1'"


def test_an_unknown_macro_or_variable_is_an_error_naming_it() -> None:
    with pytest.raises(MacroError, match=r"\$__timeFliter"):
        expand("$__timeFliter(ts)", CTX)
    with pytest.raises(MacroError, match=r"\$region "):
        expand("region = '$region'", CTX)
    with pytest.raises(MacroError, match="duration"):
        expand("$__timeGroup(ts, often)", CTX)


def test_a_macro_argument_cannot_hold_parentheses_as_in_grafana() -> None:
    # Grafana's pattern stops at the first ')': such a panel would break in Grafana too, so
    # no panel may do it.
    assert expand("$__timeFilter(coalesce(a, b))", CTX).endswith("'2026-05-05T12:30:00Z')")
    for dashboard in _committed():
        for query in sql_queries(dashboard):
            for args in re.findall(r"\$__\w+\(([^)]*)\)", query.raw_sql):
                assert "(" not in args, f"{query.panel}: {args}"
