"""Routing, group_wait batching, storms, silences, quiet hours and message content."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from notify.receiver import Receiver
from termwatch.db import Row
from termwatch.settings import Settings
from tests.test_notify_support import Fleet, at, running_worker, write_routes

ROUTES = """
version: 1
timezone: Europe/Moscow
targets:
  north-hook: {{webhook: "{url}/north"}}
  south-hook: {{webhook: "{url}/south"}}
  ops-hook: {{webhook: "{url}/ops"}}
default:
  targets: [ops-hook]
  min_severity: critical
  group_wait: 30s
  repeat_interval: 0
groups:
  north:
    targets: [north-hook]
    min_severity: major
    quiet_hours: {{start: "22:00", end: "07:00"}}
  south:
    targets: [south-hook]
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def fleet(db: psycopg.Connection[Row]) -> Fleet:
    f = Fleet(db)
    for tid in ("N-01", "N-02", "N-03"):
        f.terminal(tid, "north")
    f.terminal("S-01", "south", region="South")
    f.terminal("S-02", "south", region="South")
    return f


@pytest.fixture
def routes_file(tmp_path: Path, receiver: Receiver) -> Path:
    return write_routes(tmp_path, ROUTES.format(url=receiver.url("")))


def paths(receiver: Receiver) -> list[str]:
    return sorted(r.path for r in receiver.received())


def incident_ids(receiver: Receiver, path: str) -> list[list[int]]:
    return [[i["id"] for i in r.body["incidents"]] for r in receiver.received(path)]


def test_it_routes_each_incident_to_its_service_group_above_the_minimum_severity(
    settings: Settings, fleet: Fleet, receiver: Receiver, routes_file: Path
) -> None:
    jam = fleet.open("N-01", "printer_jam", "major")
    fleet.open("N-02", "printer_paper_low", "minor")  # below north's minimum
    fleet.open("S-01", "printer_jam", "major")  # south inherits the default's critical minimum
    cash = fleet.open("S-02", "cash_acceptor_full", "critical")
    stranger = fleet.open("X-99", "terminal_offline", "critical")  # not in the registry
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        assert receiver.received() == []  # group_wait has not passed
        report = worker.run_once(at(31))
    assert {a.result for a in report.attempts} == {"sent"}
    assert paths(receiver) == ["/north", "/ops", "/south"]
    assert incident_ids(receiver, "/north") == [[jam]]
    assert incident_ids(receiver, "/south") == [[cash]]
    assert incident_ids(receiver, "/ops") == [[stranger]]


def test_it_sends_incidents_opened_together_for_one_group_in_one_message(
    settings: Settings, fleet: Fleet, receiver: Receiver, routes_file: Path
) -> None:
    first = fleet.open("N-01", "printer_jam", "major", when=at(0))
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        second = fleet.open("N-02", "cash_acceptor_jam", "critical", when=at(10))
        worker.run_once(at(10))
        third = fleet.open("N-03", "terminal_offline", "critical", when=at(25))
        worker.run_once(at(25))
        assert receiver.received() == []
        worker.run_once(at(30))
        worker.run_once(at(60))
    assert incident_ids(receiver, "/north") == [[first, second, third]]
    body = receiver.received("/north")[0].body
    assert body["event"] == "opened"
    assert body["severity"] == "critical"
    assert body["title"] == "[CRITICAL] 3 incidents, north"


def test_a_regional_storm_pages_once_for_the_parent_not_for_each_terminal(
    settings: Settings, fleet: Fleet, receiver: Receiver, routes_file: Path
) -> None:
    children = [
        fleet.open(tid, "terminal_offline", "critical", when=at(i))
        for i, tid in enumerate(("N-01", "N-02", "N-03"))
    ]
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(3))
        parent = fleet.open(
            "region:Center",
            "terminal_offline",
            "critical",
            when=at(5),
            region="Center",
            is_group=True,
            title="Region Center offline",
        )
        fleet.group(parent, children, at(5))
        worker.run_once(at(5))
        worker.run_once(at(40))
    assert incident_ids(receiver, "/north") == [[parent]]
    body = receiver.received("/north")[0].body
    assert body["incidents"][0]["children"] == 3
    assert "Terminals affected: 3" in body["text"]


def test_it_sends_a_complete_message_with_place_evidence_money_and_links(
    settings: Settings, fleet: Fleet, receiver: Receiver, routes_file: Path
) -> None:
    incident = fleet.open(
        "N-01", "cash_acceptor_jam", "critical", complaints=2, money_minor=150_050
    )
    fleet.evidence(incident, "shutter jammedClosed")
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        worker.run_once(at(31))
    (got,) = receiver.received("/north")
    item = got.body["incidents"][0]
    assert got.body["title"] == "[CRITICAL] Cash acceptor jam: Kiosk N-01 (N-01)"
    assert item["name"] == "Kiosk N-01"
    assert item["address"] == "Tverskaya 01"
    assert item["map_url"].startswith("https://www.openstreetmap.org/?mlat=55.75120")
    assert item["evidence"] == ["shutter jammedClosed"]
    assert item["complaints"] == 2
    assert item["money_at_risk_minor"] == 150_050
    assert item["url"] == f"https://tw.example/incidents/{incident}"
    assert item["ack_url"] == f"https://tw.example/incidents/{incident}#ack-note"
    text = got.body["text"]
    assert "Since: 2026-05-04 12:00 MSK (0 min ago)" in text
    assert "money at risk: 1 500.50 RUB" in text
    assert "Evidence: shutter jammedClosed" in text
    assert got.headers["Idempotency-Key"].startswith("termwatch-")


def test_nothing_is_sent_during_a_silence_and_an_open_incident_pages_when_it_ends(
    settings: Settings, fleet: Fleet, receiver: Receiver, routes_file: Path
) -> None:
    fleet.silence(at(minutes=30), when=at(0), tid="N-01")
    fleet.silence(at(minutes=30), when=at(0), region="South")
    kept = fleet.open("N-01", "cash_acceptor_jam", "critical", silenced=True)
    fixed = fleet.open("S-01", "cash_acceptor_jam", "critical", silenced=True)
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        worker.run_once(at(31))
        worker.run_once(at(minutes=20))
        fleet.resolve(fixed, at(minutes=25))
        worker.run_once(at(minutes=25))
        assert receiver.received() == []
        fleet.silence_ends(at(minutes=30))
        worker.run_once(at(minutes=30))
        worker.run_once(at(minutes=31))
    assert incident_ids(receiver, "/north") == [[kept]]
    assert receiver.received("/south") == []  # resolved while silenced: never paged


def test_a_silence_stops_the_repeats_of_a_paged_incident_until_it_ends(
    settings: Settings, fleet: Fleet, receiver: Receiver, tmp_path: Path
) -> None:
    repeating = ROUTES.replace("repeat_interval: 0", "repeat_interval: 10m")
    routes_file = write_routes(tmp_path, repeating.format(url=receiver.url("")))
    fleet.open("N-01", "cash_acceptor_jam", "critical")
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        worker.run_once(at(30))
        fleet.silence(at(hours=1), when=at(minutes=5), tid="N-01")
        for minute in (5, 10, 20, 30, 59):
            worker.run_once(at(minutes=minute))
        fleet.silence_ends(at(hours=1))
        worker.run_once(at(hours=1))
        worker.run_once(at(hours=1, seconds=31))
    assert [r.body["event"] for r in receiver.received("/north")] == ["opened", "repeated"]


def test_quiet_hours_hold_major_incidents_until_morning_but_critical_pages_at_once(
    settings: Settings, fleet: Fleet, receiver: Receiver, routes_file: Path
) -> None:
    night = at(hours=11)  # 23:00 in Moscow
    printer = fleet.open("N-01", "printer_jam", "major", when=night)
    cash = fleet.open("N-02", "cash_acceptor_jam", "critical", when=night)
    with running_worker(settings, routes_file) as worker:
        worker.run_once(night)
        worker.run_once(night + timedelta(seconds=31))
        assert incident_ids(receiver, "/north") == [[cash]]
        worker.run_once(at(hours=18, minutes=59))  # 06:59 in Moscow
        assert len(receiver.received("/north")) == 1
        worker.run_once(at(hours=19))  # 07:00: quiet hours are over
    assert incident_ids(receiver, "/north") == [[cash], [printer]]


def test_a_flapping_incident_opened_and_resolved_within_group_wait_sends_nothing(
    settings: Settings, fleet: Fleet, receiver: Receiver, routes_file: Path
) -> None:
    flap = fleet.open("N-01", "printer_jam", "major", when=at(0))
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        fleet.resolve(flap, at(8))
        worker.run_once(at(8))
        fleet.reopen(flap, at(12))
        fleet.resolve(flap, at(20))
        worker.run_once(at(20))
        worker.run_once(at(minutes=5))
    assert receiver.received() == []


def test_an_incident_on_an_offline_terminal_or_marked_inhibited_does_not_page(
    settings: Settings, fleet: Fleet, receiver: Receiver, routes_file: Path
) -> None:
    offline = fleet.open("N-01", "terminal_offline", "critical")
    fleet.open("N-01", "printer_fault", "major")
    fleet.open("N-02", "printer_jam", "major", details={"inhibited_by": "cash_acceptor_fault"})
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        worker.run_once(at(31))
    assert incident_ids(receiver, "/north") == [[offline]]


def test_without_a_routes_file_incidents_are_written_to_the_notify_log(
    settings: Settings, fleet: Fleet, tmp_path: Path
) -> None:
    notify_log = tmp_path / "notify.log"
    incident = fleet.open("N-01", "cash_acceptor_jam", "critical")
    with running_worker(settings.with_(notify_log=notify_log), None) as worker:
        worker.run_once(at(0))
        report = worker.run_once(at(31))
    assert [(a.target, a.result) for a in report.attempts] == [("log", "sent")]
    text = notify_log.read_text(encoding="utf-8")
    assert "[CRITICAL] Cash acceptor jam: Kiosk N-01 (N-01)" in text
    assert f"https://tw.example/incidents/{incident}" in text
