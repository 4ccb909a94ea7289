"""Delivery to real local servers: webhook, Apprise json:// and mailto://, retries, restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from prometheus_client import REGISTRY

from notify.history import deliveries
from notify.receiver import Receiver
from notify.worker import NotifyWorker, RunReport
from termwatch.db import Row
from termwatch.settings import Settings
from tests.test_notify_support import (
    Fleet,
    SmtpServer,
    at,
    free_port,
    running_worker,
    write_routes,
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def fleet(db: psycopg.Connection[Row]) -> Fleet:
    f = Fleet(db)
    f.terminal("T-01", "north", name="Kiosk Tverskaya")
    return f


def routes(tmp_path: Path, targets: str, names: str, retry: str = "") -> Path:
    return write_routes(
        tmp_path,
        f"targets:\n{targets}\ndefault:\n  targets: [{names}]\n  group_wait: 0s\n"
        f"  repeat_interval: 0\n{retry}",
    )


RETRY = "retry: {attempts: 3, backoff: 10s, max_backoff: 1m}\n"


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_it_delivers_to_a_webhook_to_apprise_json_and_to_e_mail(
    settings: Settings,
    fleet: Fleet,
    receiver: Receiver,
    smtp: SmtpServer,
    tmp_path: Path,
) -> None:
    json_url = receiver.url("/apprise", scheme="json")
    routes_file = routes(
        tmp_path,
        f'  hook: {{webhook: "{receiver.url("/hook")}"}}\n'
        f'  json: {{apprise: "{json_url}"}}\n'
        f'  mail: {{apprise: "{smtp.url("north@example.com")}"}}\n',
        "hook, json, mail",
    )
    sent_before = sample("termwatch_notifications_total", {"target": "mailto", "result": "sent"})
    incident = fleet.open("T-01", "cash_acceptor_jam", "critical", money_minor=50_000)
    with running_worker(settings, routes_file) as worker:
        report = worker.run_once(at(0))
    assert sorted((a.target, a.result) for a in report.attempts) == [
        ("hook", "sent"), ("json", "sent"), ("mail", "sent"),
    ]  # fmt: skip
    (hook,) = receiver.received("/hook")
    assert hook.body["incidents"][0]["id"] == incident
    (apprise_json,) = receiver.received("/apprise")
    assert apprise_json.body["title"] == "[CRITICAL] Cash acceptor jam: Kiosk Tverskaya (T-01)"
    assert "Address: Tverskaya 01, Moscow" in apprise_json.body["message"]
    assert apprise_json.body["type"] == "failure"
    (mail,) = smtp.wait_for(1)
    assert smtp.box.recipients == [["north@example.com"]]
    assert mail["Subject"] == "[CRITICAL] Cash acceptor jam: Kiosk Tverskaya (T-01)"
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert b"money at risk: 500.00 RUB" in body
    assert f"https://tw.example/incidents/{incident}#ack-note".encode() in body
    after = sample("termwatch_notifications_total", {"target": "mailto", "result": "sent"})
    assert after == sent_before + 1


def test_a_target_that_fails_then_recovers_receives_the_message_once(
    settings: Settings, fleet: Fleet, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.respond("/flaky", status=503)
    receiver.respond("/apprise", status=502)
    routes_file = routes(
        tmp_path,
        f'  flaky: {{webhook: "{receiver.url("/flaky")}"}}\n'
        f'  json: {{apprise: "{receiver.url("/apprise", scheme="json")}"}}\n',
        "flaky, json",
        RETRY,
    )
    incident = fleet.open("T-01", "cash_acceptor_jam", "critical")
    with running_worker(settings, routes_file) as worker:
        first = worker.run_once(at(0))
        assert sorted(a.result for a in first.attempts) == ["retry", "retry"]
        assert worker.run_once(at(9)).attempts == []  # backoff: next try after 10 s
        receiver.respond("/flaky", status=200)
        receiver.respond("/apprise", status=200)
        second = worker.run_once(at(10))
        assert sorted(a.result for a in second.attempts) == ["sent", "sent"]
        assert worker.run_once(at(minutes=30)).attempts == []
    flaky = receiver.received("/flaky")
    assert [r.body["attempt"] for r in flaky] == [1, 2]
    assert len({r.headers["Idempotency-Key"] for r in flaky}) == 1
    assert len(receiver.received("/apprise")) == 2  # one refused, one accepted
    history = [(d["target"], d["result"], d["attempt"]) for d in deliveries(fleet.db, incident)]
    assert sorted(history) == [
        ("flaky", "retry", 1), ("flaky", "sent", 2), ("json", "retry", 1), ("json", "sent", 2),
    ]  # fmt: skip
    assert "HTTP 503" in next(d["error"] for d in deliveries(fleet.db, incident) if d["error"])


def test_a_target_down_for_good_is_recorded_failed_and_the_others_are_unaffected(
    settings: Settings, fleet: Fleet, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.respond("/gone", status=404)
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    routes_file = routes(
        tmp_path,
        f'  dead: {{webhook: "{dead}", timeout: 2s}}\n'
        f'  gone: {{webhook: "{receiver.url("/gone")}"}}\n'
        f'  good: {{webhook: "{receiver.url("/good")}"}}\n',
        "dead, gone, good",
        RETRY,
    )
    failed_before = sample(
        "termwatch_notifications_total", {"target": "webhook", "result": "failed"}
    )
    incident = fleet.open("T-01", "cash_acceptor_jam", "critical")
    with running_worker(settings, routes_file) as worker:
        first = worker.run_once(at(0))
        assert sorted((a.target, a.result) for a in first.attempts) == [
            ("dead", "retry"), ("gone", "failed"), ("good", "sent"),
        ]  # fmt: skip
        worker.run_once(at(10))
        last = worker.run_once(at(30))
        assert [(a.target, a.result) for a in last.attempts] == [("dead", "failed")]
        assert worker.run_once(at(hours=5)).attempts == []
    assert len(receiver.received("/good")) == 1
    history = deliveries(fleet.db, incident)
    dead_rows = [d for d in history if d["target"] == "dead"]
    assert [d["result"] for d in dead_rows] == ["retry", "retry", "failed"]
    assert dead_rows[-1]["error"].startswith("gave up after 3 attempts: cannot connect")
    assert [d["error"] for d in history if d["target"] == "gone"] == ["HTTP 404 Not Found"]
    failed_after = sample(
        "termwatch_notifications_total", {"target": "webhook", "result": "failed"}
    )
    assert failed_after == failed_before + 2


def test_after_a_restart_pending_notifications_are_delivered_once(
    settings: Settings, fleet: Fleet, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.respond("/down", status=503)
    routes_file = routes(
        tmp_path,
        f'  down: {{webhook: "{receiver.url("/down")}"}}\n'
        f'  up: {{webhook: "{receiver.url("/up")}"}}\n',
        "down, up",
        RETRY,
    )
    fleet.open("T-01", "cash_acceptor_jam", "critical")
    with running_worker(settings, routes_file) as before:
        before.run_once(at(0))  # "up" sent, "down" waits for a retry
    planned_only = fleet.open("T-01", "printer_jam", "major", when=at(5))
    with running_worker(settings, routes_file) as before:
        before.plan(at(5))  # stopped before it could deliver anything
    receiver.respond("/down", status=200)
    with running_worker(settings, routes_file) as after:
        after.run_once(at(20))
        after.run_once(at(minutes=10))
    with running_worker(settings, routes_file) as again:
        assert again.run_once(at(hours=1)).attempts == []
    up = [r.body["incidents"][0]["kind"] for r in receiver.received("/up")]
    assert sorted(up) == ["cash_acceptor_jam", "printer_jam"]
    down_ok = [r for r in receiver.received("/down") if r.body["attempt"] == 2]
    assert [r.body["incidents"][0]["kind"] for r in down_ok] == ["cash_acceptor_jam"]
    down_first = [r.body["incidents"][0]["id"] for r in receiver.received("/down")]
    assert down_first.count(planned_only) == 1


def test_two_workers_at_once_deliver_each_notification_once(
    settings: Settings, fleet: Fleet, receiver: Receiver, tmp_path: Path
) -> None:
    paths = [f"/h{n}" for n in range(8)]
    targets = "".join(f'  h{n}: {{webhook: "{receiver.url(p)}"}}\n' for n, p in enumerate(paths))
    routes_file = routes(tmp_path, targets, ", ".join(p[1:] for p in paths))
    for n in range(2, 6):
        fleet.terminal(f"T-{n:02d}", "north")
    for n in range(1, 6):
        fleet.open(f"T-{n:02d}", "cash_acceptor_jam", "critical")
    reports: list[RunReport] = []
    with running_worker(settings, routes_file) as one, running_worker(settings, routes_file) as two:
        one.plan(at(0))  # one message of five incidents, for eight targets
        start = threading.Barrier(2)

        def run(worker: NotifyWorker) -> None:
            start.wait()
            reports.append(worker.run_once(at(1)))

        threads = [threading.Thread(target=run, args=(w,)) for w in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sum(len(r.attempts) for r in reports) == 8
    assert sorted(r.path for r in receiver.received()) == paths
    assert all(len(r.body["incidents"]) == 5 for r in receiver.received())


def test_a_slow_target_does_not_delay_the_others(
    settings: Settings, fleet: Fleet, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.respond("/slow", delay=3.0)
    routes_file = routes(
        tmp_path,
        f'  slow: {{webhook: "{receiver.url("/slow")}", timeout: 2s}}\n'
        f'  fast: {{webhook: "{receiver.url("/fast")}"}}\n',
        "slow, fast",
        RETRY,
    )
    with running_worker(settings, routes_file, poll_s=0.05) as worker:
        worker.start()
        started = time.monotonic()
        fleet.open("T-01", "cash_acceptor_jam", "critical")
        assert receiver.wait_for(1, path="/fast", timeout=5)
        fast_latency = receiver.received("/fast")[0].at - started
        second_started = time.monotonic()
        fleet.open("T-01", "printer_jam", "major")
        assert receiver.wait_for(2, path="/fast", timeout=5)
        second_latency = receiver.received("/fast")[1].at - second_started
    assert fast_latency < 1.0
    assert second_latency < 1.0  # the slow target is still busy with the first message


def test_an_incident_reaches_the_webhook_within_two_seconds(
    settings: Settings, fleet: Fleet, receiver: Receiver, tmp_path: Path
) -> None:
    routes_file = routes(tmp_path, f'  hook: {{webhook: "{receiver.url("/hook")}"}}\n', "hook")
    with running_worker(settings, routes_file) as worker:
        worker.start()
        latencies = []
        for n in range(5):
            started = time.monotonic()
            fleet.open("T-01", f"kind_{n}", "critical")
            assert receiver.wait_for(n + 1, path="/hook", timeout=5)
            latencies.append(receiver.received("/hook")[n].at - started)
    assert max(latencies) <= 2.0


def test_the_outbox_gauges_count_what_waits_for_delivery(
    settings: Settings, fleet: Fleet, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.respond("/down", status=503)
    routes_file = routes(
        tmp_path, f'  down: {{webhook: "{receiver.url("/down")}"}}\n', "down", RETRY
    )
    fleet.open("T-01", "cash_acceptor_jam", "critical")
    with running_worker(settings, routes_file) as worker:
        worker.run_once(at(0))
        worker.plan(at(8))
        assert sample("termwatch_outbox_depth", {}) == 1
        assert sample("termwatch_outbox_age_seconds", {}) == 8
        receiver.respond("/down", status=200)
        worker.run_once(at(10))
        worker.plan(at(11))
    assert sample("termwatch_outbox_depth", {}) == 0
    assert sample("termwatch_outbox_age_seconds", {}) == 0


def test_the_wall_clock_is_the_default_and_times_are_recorded_with_it(
    settings: Settings, fleet: Fleet, receiver: Receiver, tmp_path: Path
) -> None:
    routes_file = routes(tmp_path, f'  hook: {{webhook: "{receiver.url("/hook")}"}}\n', "hook")
    incident = fleet.open("T-01", "cash_acceptor_jam", "critical")
    before = datetime.now(UTC)
    with running_worker(settings, routes_file) as worker:
        worker.start()
        assert receiver.wait_for(1, timeout=5)
    (entry,) = deliveries(fleet.db, incident)
    assert before <= entry["at"] <= datetime.now(UTC)


def test_a_worker_on_an_event_clock_waits_for_its_first_reading_then_pages_in_event_time(
    settings: Settings, fleet: Fleet, receiver: Receiver, tmp_path: Path
) -> None:
    routes_file = routes(tmp_path, f'  hook: {{webhook: "{receiver.url("/hook")}"}}\n', "hook")
    reading: list[datetime | None] = [None]  # what a collector's event clock says
    incident = fleet.open("T-01", "cash_acceptor_jam", "critical")
    with running_worker(settings, routes_file, clock=lambda: reading[0], poll_s=0.05) as worker:
        worker.start()
        reading[0] = at(minutes=3)
        assert receiver.wait_for(1, timeout=5)
    (entry,) = deliveries(fleet.db, incident)
    assert entry["at"] == at(minutes=3)
    assert "Since: 2026-05-04 09:00 UTC (3 min ago)" in receiver.received()[0].body["text"]
