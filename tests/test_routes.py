"""Reading the routes file: good files load, bad ones are refused with line and reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from notify.routes import LOG, QuietHours, Retry, RoutesError, load_routes, parse_routes

TESTDATA = Path(__file__).resolve().parent.parent / "notify" / "testdata"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "routes.yaml"
_EXPECT = re.compile(r"^# expect: (line \d+: .+)$", re.MULTILINE)


@pytest.mark.parametrize("path", sorted((TESTDATA / "good").glob("*.yaml")), ids=lambda p: p.stem)
def test_it_loads_every_good_routes_file(path: Path) -> None:
    routes = load_routes(path)
    assert routes.source == str(path)


@pytest.mark.parametrize("path", sorted((TESTDATA / "bad").glob("*.yaml")), ids=lambda p: p.stem)
def test_it_refuses_every_bad_routes_file_with_the_line_and_reason(path: Path) -> None:
    expected = _EXPECT.findall(path.read_text(encoding="utf-8"))
    assert expected, f"{path.name} must say what it expects"
    with pytest.raises(RoutesError) as caught:
        load_routes(path)
    got = [str(p) for p in caught.value.problems]
    for want in expected:
        assert any(g.startswith(want) for g in got), f"{want!r} not in {got}"
    assert len(got) == len(expected)
    assert str(caught.value).startswith(f"{path}: line ")


def test_the_documented_example_loads_with_what_it_describes() -> None:
    routes = load_routes(EXAMPLE)
    north = routes.for_group("north")
    south = routes.for_group("south")
    assert north.targets == ("north-telegram", "north-mail")
    assert north.quiet_hours == QuietHours(time(22), time(7))
    assert north.repeat_interval == timedelta(minutes=30)  # from the default route
    assert north.escalate is not None
    assert north.escalate.after == timedelta(minutes=15)
    assert south.min_severity == "critical"
    assert south.escalate is None
    assert routes.for_group("west") is routes.default
    assert routes.for_group("") is routes.default
    assert [t.type_label for t in routes.targets_for(north, "primary")] == ["tgram", "mailtos"]
    assert [t.name for t in routes.targets_for(north, "escalation")] == [
        "duty-manager",
        "ops-matrix",
    ]
    assert routes.retry == Retry(attempts=10, backoff=timedelta(seconds=10),
                                 max_backoff=timedelta(minutes=10))  # fmt: skip


def test_a_group_route_takes_what_it_does_not_set_from_the_default() -> None:
    routes = load_routes(TESTDATA / "good" / "groups.yaml")
    west = routes.for_group("west")
    assert west.targets == ("a",)
    assert west.group_wait == timedelta(0)
    assert west.repeat_interval == timedelta(hours=1, minutes=30)
    assert west.min_severity == "critical"
    assert west.timezone == ZoneInfo("Europe/Kaliningrad")
    assert routes.for_group("east").timezone == ZoneInfo("Asia/Yekaterinburg")


def test_no_routes_file_means_every_message_goes_to_the_log() -> None:
    routes = load_routes(None)
    assert routes.targets_for(routes.for_group("north"), "primary") == [LOG]
    assert routes.default.min_severity == "major"


def test_a_missing_routes_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(RoutesError, match="no such file"):
        load_routes(tmp_path / "nowhere.yaml")


def test_quiet_hours_past_midnight_end_the_next_morning_in_the_route_time_zone() -> None:
    quiet = QuietHours(time(22), time(7))
    moscow = ZoneInfo("Europe/Moscow")
    late = datetime(2026, 5, 4, 20, 30, tzinfo=UTC)  # 23:30 in Moscow
    early = datetime(2026, 5, 5, 3, 59, tzinfo=UTC)  # 06:59
    day = datetime(2026, 5, 5, 4, 0, tzinfo=UTC)  # 07:00
    morning = datetime(2026, 5, 5, 7, 0, tzinfo=moscow)
    assert quiet.until(late, moscow) == morning
    assert quiet.until(early, moscow) == morning
    assert quiet.until(day, moscow) is None
    assert QuietHours(time(1), time(5)).until(late, moscow) is None


def test_retry_backoff_doubles_up_to_its_ceiling() -> None:
    retry = Retry(attempts=10, backoff=timedelta(seconds=10), max_backoff=timedelta(seconds=60))
    assert [retry.delay(n).total_seconds() for n in range(1, 6)] == [10, 20, 40, 60, 60]


def test_routes_can_be_read_from_text_with_a_source_name() -> None:
    with pytest.raises(RoutesError) as caught:
        parse_routes("default: {min_severity: low}\n", "inline")
    assert str(caught.value) == (
        "inline: line 1: default.min_severity must be one of minor, major, critical, got 'low'"
    )
