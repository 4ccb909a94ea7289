"""Repeat, escalation, acknowledgement and resolved messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from notify.receiver import Receiver
from termwatch.db import Row
from termwatch.settings import Settings
from tests.test_notify_support import Fleet, at, running_worker, write_routes

ROUTES = """
targets:
  team: {{webhook: "{url}/team"}}
  lead: {{webhook: "{url}/lead"}}
default:
  targets: [team]
  group_wait: 0s
  repeat_interval: 10m
  escalate: {{after: 15m, targets: [lead]}}
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def fleet(db: psycopg.Connection[Row]) -> Fleet:
    f = Fleet(db)
    f.terminal("T-01", "north")
    f.terminal("T-02", "north")
    return f


@pytest.fixture
def routes_file(tmp_path: Path, receiver: Receiver) -> Path:
    return write_routes(tmp_path, ROUTES.format(url=receiver.url("")))


def events(receiver: Receiver, path: str) -> list[str]:
    return [r.body["event"] for r in receiver.received(path)]


def test_an_unacknowledged_critical_incident_is_paged_again_every_repeat_interval(
    settings: Settings, fleet: Fleet, receiver: Receiver, routes_file: Path
) -> None:
    fleet.open("T-01", "cash_acceptor_jam", "critical")
    fleet.open("T-02", "printer_jam", "major")  # not repeated: repeats are for critical
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        worker.run_once(at(minutes=9))
        assert [len(r.body["incidents"]) for r in receiver.received("/team")] == [2]
        worker.run_once(at(minutes=10))
        worker.run_once(at(minutes=14))
        worker.run_once(at(minutes=20))
    assert events(receiver, "/team") == ["opened", "repeated", "repeated"]
    repeated = receiver.received("/team")[1].body
    assert [i["kind"] for i in repeated["incidents"]] == ["cash_acceptor_jam"]
    assert repeated["title"].startswith("Still not acknowledged: [CRITICAL]")


def test_an_incident_not_acknowledged_within_the_delay_is_escalated_once(
    settings: Settings, fleet: Fleet, receiver: Receiver, routes_file: Path
) -> None:
    incident = fleet.open("T-02", "printer_jam", "major")
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        worker.run_once(at(minutes=14, seconds=59))
        assert receiver.received("/lead") == []
        worker.run_once(at(minutes=15))
        worker.run_once(at(minutes=40))
    assert events(receiver, "/lead") == ["escalated"]
    body = receiver.received("/lead")[0].body
    assert body["audience"] == "escalation"
    assert [i["id"] for i in body["incidents"]] == [incident]
    assert events(receiver, "/team") == ["opened"]


def test_acknowledging_an_incident_stops_its_repeats_and_its_escalation(
    settings: Settings, fleet: Fleet, receiver: Receiver, routes_file: Path
) -> None:
    incident = fleet.open("T-01", "cash_acceptor_jam", "critical")
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        worker.run_once(at(minutes=10))
        fleet.acknowledge(incident, "ivanov", at(minutes=12))
        worker.run_once(at(minutes=12))
        worker.run_once(at(minutes=20))
        worker.run_once(at(hours=2))
    assert events(receiver, "/team") == ["opened", "repeated"]
    assert receiver.received("/lead") == []


def test_a_repeat_due_at_the_moment_of_acknowledgement_is_not_sent(
    settings: Settings, fleet: Fleet, receiver: Receiver, tmp_path: Path
) -> None:
    slow = ROUTES.replace("group_wait: 0s", "group_wait: 1m")
    routes_file = write_routes(tmp_path, slow.format(url=receiver.url("")))
    incident = fleet.open("T-01", "cash_acceptor_jam", "critical")
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        worker.run_once(at(minutes=1))
        fleet.acknowledge(incident, "ivanov", at(minutes=11))
        worker.run_once(at(minutes=11))
    assert events(receiver, "/team") == ["opened"]


def test_a_resolved_message_goes_to_everyone_who_was_paged(
    settings: Settings, fleet: Fleet, receiver: Receiver, routes_file: Path
) -> None:
    paged = fleet.open("T-01", "cash_acceptor_jam", "critical")
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        worker.run_once(at(minutes=15))
        fleet.resolve(paged, at(minutes=16), by="petrov")
        worker.run_once(at(minutes=16))
        worker.run_once(at(hours=1))
    assert events(receiver, "/team") == ["opened", "repeated", "resolved"]
    assert events(receiver, "/lead") == ["escalated", "resolved"]
    resolved = receiver.received("/team")[-1].body
    assert resolved["title"] == "Resolved: [CRITICAL] Cash acceptor jam: Kiosk T-01 (T-01)"
    assert "Resolved: 2026-05-04 09:16 UTC by petrov" in resolved["text"]
    assert "Acknowledge:" not in resolved["text"]


def test_a_reopened_incident_is_paged_again_and_its_clocks_restart(
    settings: Settings, fleet: Fleet, receiver: Receiver, routes_file: Path
) -> None:
    incident = fleet.open("T-02", "printer_jam", "major")
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        fleet.resolve(incident, at(minutes=5))
        worker.run_once(at(minutes=5))
        fleet.reopen(incident, at(minutes=10))
        worker.run_once(at(minutes=10))
        worker.run_once(at(minutes=20))  # 15 minutes after the first page, 10 after the second
        assert receiver.received("/lead") == []
        worker.run_once(at(minutes=25))
    assert events(receiver, "/team") == ["opened", "resolved", "opened"]
    assert events(receiver, "/lead") == ["escalated"]
