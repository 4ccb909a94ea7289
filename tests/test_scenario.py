"""Scenario files: the shipped ones load, bad ones are refused with their line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.scenario import INCIDENT_KINDS, load_scenario, parse_scenario, shipped_names
from simulator.timefmt import HOUR
from simulator.yamlread import YamlError

GOOD = """\
name: small
start: 2026-05-04T10:00:00+03:00
duration: 1h
fleet:
  regions:
    - {name: north, city: Moscow, utc_offset: "+03:00", terminals: 2}
faults:
  - id: jam
    kind: printer_jam
    at: 10m
    duration: 20m
    terminals: [T-000001]
"""


def test_the_shipped_day_scenario_covers_the_whole_brief() -> None:
    day = load_scenario("day")
    assert day.terminal_count >= 500
    assert day.duration == 24 * HOUR
    assert len({r.name for r in day.regions}) >= 3
    injected = {f.kind for f in day.faults}
    assert injected == set(INCIDENT_KINDS)
    assert any(f.flap is not None and f.kind.startswith("printer") for f in day.faults)
    assert any(
        f.region is not None and f.count is None and f.kind == "payment_failures"
        for f in day.faults
    )
    assert {"day", "tiny"} <= set(shipped_names())


def test_a_scenario_file_is_loaded_by_path(tmp_path: Path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(GOOD, encoding="utf-8")
    scenario = load_scenario(str(path))
    assert scenario.name == "small"
    assert scenario.tids() == ["T-000001", "T-000002"]
    assert scenario.faults[0].at == 10 * 60_000
    assert scenario.faults[0].line == 8


def test_an_unknown_scenario_name_is_refused_naming_the_shipped_ones() -> None:
    with pytest.raises(FileNotFoundError, match=r"shipped: .*day"):
        load_scenario("no-such-scenario")


@pytest.mark.parametrize(
    ("change", "line", "reason"),
    [
        (("duration: 1h", "duration: 1h\nduration: 2h"), 4, "duplicate key 'duration'"),
        (("name: small", "name: small\ncolour: red"), 2, "unknown key 'colour'"),
        (("duration: 1h", "duration: an hour"), 3, "is not a duration"),
        (("terminals: 2}", "terminals: two}"), 6, "terminals must be a whole number"),
        (('utc_offset: "+03:00"', 'utc_offset: "Moscow"'), 6, "not a UTC offset"),
        (("kind: printer_jam", "kind: printer_on_fire"), 9, "unknown kind 'printer_on_fire'"),
        (("duration: 20m", "duration: 2h"), 11, "ends after the end of the scenario"),
        (("[T-000001]", "[T-000009]"), 12, "no terminal 'T-000009'"),
        (("at: 10m", "at: 2026-05-04T09:00:00+03:00"), 10, "outside the scenario"),
        (("terminals: [T-000001]", "region: south"), 12, "no region 'south'"),
        (("kind: printer_jam", "kind: payment_failures\n    flap: 10s"), 10, "cannot flap"),
        (("terminals: [T-000001]", "count: 3"), 12, "count must be between 1 and 2"),
        (("    terminals: [T-000001]\n", ""), 8, "say which terminals"),
        (("start: 2026-05-04T10:00:00+03:00", "start: 2026-05-04T10:00:00"), 2, "no UTC offset"),
        (("  regions:", "  regions: [\n"), 7, "YAML syntax"),
    ],
)
def test_a_bad_scenario_file_is_refused_with_its_line_and_reason(
    change: tuple[str, str], line: int, reason: str
) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(YamlError) as caught:
        parse_scenario(GOOD.replace(old, new, 1), "bad.yaml")
    assert caught.value.line == line, str(caught.value)
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"bad.yaml:{line}: ")


def test_cutting_a_scenario_drops_the_faults_past_the_new_end() -> None:
    day = load_scenario("day")
    short = day.with_duration(9 * HOUR)
    assert short.duration == 9 * HOUR
    assert short.faults
    assert all(f.at + f.duration <= 9 * HOUR for f in short.faults)
    assert len(short.faults) < len(day.faults)
