"""The notifications commands: summary per group, routes check, history, benchmark."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from notify.cli import parse_since
from notify.receiver import Receiver
from termwatch.cli import main
from termwatch.db import Row
from termwatch.settings import Settings
from tests.test_notify_support import Fleet, at, running_worker, write_routes

TESTDATA = Path(__file__).resolve().parent.parent / "notify" / "testdata"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    assert settings.database_url is not None
    monkeypatch.setenv("TERMWATCH_DATABASE_URL", settings.database_url)
    return settings


def storm_day(
    settings: Settings, db: psycopg.Connection[Row], receiver: Receiver, tmp_path: Path
) -> int:
    """A storm of five terminals in the north, grouped under a parent; one south incident."""
    fleet = Fleet(db)
    tids = [f"N-{n:02d}" for n in range(5)]
    for tid in tids:
        fleet.terminal(tid, "north")
    fleet.terminal("S-01", "south", region="South")
    routes_file = write_routes(
        tmp_path,
        f'targets:\n  hook: {{webhook: "{receiver.url("/hook")}"}}\n'
        "default:\n  targets: [hook]\n  repeat_interval: 0\n"
        "groups:\n  north: {}\n  south: {}\n",
    )
    with running_worker(settings, routes_file) as worker:
        children = []
        for n, tid in enumerate(tids):
            children.append(fleet.open(tid, "terminal_offline", "critical", when=at(n)))
            worker.run_once(at(n))
        parent = fleet.open("region:Center", "terminal_offline", "critical", when=at(6),
                            region="Center", is_group=True)  # fmt: skip
        fleet.group(parent, children, at(6))
        fleet.open("S-01", "cash_acceptor_full", "critical", when=at(6))
        worker.run_once(at(6))
        worker.run_once(at(40))
        fleet.resolve(parent, at(minutes=5))
        worker.run_once(at(minutes=5))
        worker.run_once(at(minutes=6))
    return parent


def test_the_summary_reports_messages_per_group_and_a_storm_as_one_page(
    env: Settings,
    db: psycopg.Connection[Row],
    receiver: Receiver,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    storm_day(env, db, receiver, tmp_path)
    assert main(["notifications", "summary", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    got = {(r["route"], r["event"]): (r["messages"], r["incidents"], r["suppressed"]) for r in rows}
    assert got == {
        ("north", "opened"): (1, 1, 5),  # the parent paged, its five terminals not
        ("north", "resolved"): (1, 1, 0),
        ("south", "opened"): (1, 1, 0),
    }
    assert main(["notifications", "summary"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^north\s+opened\s+1\s+1\s+1\s+0\s+0\s+5$", text, re.MULTILINE)
    assert text.rstrip().endswith("3 message(s) in all")


def test_the_summary_counts_only_messages_since_the_given_time(
    env: Settings,
    db: psycopg.Connection[Row],
    receiver: Receiver,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    storm_day(env, db, receiver, tmp_path)
    assert main(["notifications", "summary", "--json", "--since", "2026-05-04T09:01:00+00:00"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["route"], r["event"], r["messages"]) for r in rows] == [("north", "resolved", 1)]


def test_since_takes_a_span_back_from_now_or_an_iso_time() -> None:
    now = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    assert parse_since("24h", now) == datetime(2026, 5, 3, 12, 0, tzinfo=UTC)
    assert parse_since("2026-05-04T10:00", now) == datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday", now)


def test_history_lists_every_delivery_of_an_incident(
    env: Settings,
    db: psycopg.Connection[Row],
    receiver: Receiver,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parent = storm_day(env, db, receiver, tmp_path)
    assert main(["notifications", "history", str(parent)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert re.search(r"opened\s+north\s+hook\s+sent#1$", lines[0])
    assert re.search(r"resolved\s+north\s+hook\s+sent#1$", lines[1])


def test_history_shows_why_a_grouped_terminal_was_not_paged(
    env: Settings,
    db: psycopg.Connection[Row],
    receiver: Receiver,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parent = storm_day(env, db, receiver, tmp_path)
    child = db.execute(
        "SELECT min(id) AS id FROM incidents WHERE parent_id = %s", (parent,)
    ).fetchone()
    assert child is not None
    assert main(["notifications", "history", str(child["id"]), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["result"] == "suppressed"
    assert entry["error"] == f"grouped under incident {parent}"
    assert entry["target"] is None


def test_check_routes_accepts_a_good_file_and_lists_the_problems_of_a_bad_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["notifications", "check-routes", str(TESTDATA / "good" / "groups.yaml")]) == 0
    assert (
        "ok, 2 target(s), default route and 2 group route(s): east, west" in capsys.readouterr().out
    )
    bad = TESTDATA / "bad" / "several_problems.yaml"
    assert main(["notifications", "check-routes", str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{bad}: line 6: targets.ops.timeout must be at least 1s"
    assert len(err) == 4


def test_the_notify_benchmark_prints_its_figures_on_the_last_line(
    env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "notify", "--incidents", "10", "--rate", "50"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    match = re.fullmatch(
        r"notify: 10 incidents, 10 delivered in \d+ messages, 0 lost,"
        r" webhook latency p50 \d+ ms, p99 (\d+) ms, max \d+ ms",
        last,
    )
    assert match, last
    assert int(match[1]) <= 2000


def test_a_bad_routes_file_stops_the_worker_at_start_with_every_problem(
    env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = TESTDATA / "bad" / "several_problems.yaml"
    monkeypatch.setenv("TERMWATCH_ROUTES_FILE", str(bad))
    assert main(["notifications", "run"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: line 9: default.min_severity must be one of minor" in err
    assert err.count(f"{bad}: line ") == 4
