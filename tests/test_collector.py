"""The collector against the real broker and database: storage, idempotency, state, bad input."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from prometheus_client import REGISTRY

from bench.servers import Broker, mosquitto
from collector import traffic
from collector.hooks import AvailabilityChange, StoredBatch
from collector.mqtt import default_client_id
from collector.service import Collector
from terminals.contract import encode
from termwatch.db import Row
from termwatch.settings import MqttUrl, Settings

Publish = Callable[..., None]
T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


class Recorder:
    """An AfterCommit hook that keeps what it is given."""

    def __init__(self) -> None:
        self.batches: list[StoredBatch] = []
        self.ticks: list[datetime] = []
        self.on_availability: Callable[[AvailabilityChange], None] | None = None
        self._changed = threading.Condition()

    def after_commit(self, batch: StoredBatch) -> None:
        with self._changed:
            self.batches.append(batch)
            self._changed.notify_all()
        if self.on_availability is not None:
            for change in batch.availability:
                self.on_availability(change)

    def tick(self, now: datetime) -> None:
        self.ticks.append(now)

    def operations(self) -> list[str]:
        return [op.id for b in self.batches for op in b.operations]

    def heartbeats(self) -> list[str]:
        return [h.id for b in self.batches for h in b.heartbeats]

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(condition, timeout_s)


def forget_session(url: MqttUrl, client_id: str) -> None:
    """Remove a persistent session from the shared test broker."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.connect(url.host, url.port, clean_start=True)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def publish(mqtt_url: MqttUrl) -> Iterator[Publish]:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect(mqtt_url.host, mqtt_url.port)
    client.loop_start()
    retained: set[str] = set()

    def send(topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        info = client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5)
        assert info.is_published()
        if retain:
            retained.add(topic)

    yield send
    for topic in retained:
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def collector(settings: Settings, recorder: Recorder) -> Iterator[Collector]:
    instance = Collector(settings, hooks=[recorder])
    instance.start()
    assert instance.wait_ready(10)
    yield instance
    instance.stop()
    assert settings.mqtt_url is not None
    forget_session(settings.mqtt_url, default_client_id(settings))


def counter(kind: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "termwatch_messages_total", {"kind": kind, "outcome": outcome}
    )
    return value or 0.0


def rejected_count(reason: str) -> float:
    return REGISTRY.get_sample_value("termwatch_rejected_messages_total", {"reason": reason}) or 0.0


def count(db: psycopg.Connection[Row], table: str) -> int:
    row = db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()
    assert row is not None
    return int(row["n"])


def test_it_stores_every_kind_of_message(
    collector: Collector,
    publish: Publish,
    settings: Settings,
    db: psycopg.Connection[Row],
    recorder: Recorder,
) -> None:
    root = settings.topic_root
    before = {k: counter(k, "stored") for k in ("status", "events", "operations", "heartbeat")}
    publish(f"{root}/T-1/status", encode(traffic.status("T-1", T0, "s1", 1, paper="low")))
    publish(
        f"{root}/T-1/events",
        encode(
            traffic.event(
                "T-1",
                T0 + timedelta(seconds=1),
                "e1",
                "Printer.MediaAutoRetractedEvent",
                {"result": "jammed"},
                seq=2,
            )
        ),
    )
    publish(
        f"{root}/T-1/operations",
        encode(traffic.operation("T-1", T0 + timedelta(seconds=2), "o1", 3)),
    )
    publish(
        f"{root}/T-1/heartbeat",
        encode(traffic.heartbeat("T-1", T0 + timedelta(seconds=3), "h1", 4, interval_s=30)),
    )
    publish(f"{root}/T-1/availability", "online")
    assert collector.wait_processed(5)

    assert count(db, "status_snapshots") == 1
    event = db.execute("SELECT device, name, payload FROM events").fetchone()
    assert event == {
        "device": "printer",
        "name": "Printer.MediaAutoRetractedEvent",
        "payload": {"result": "jammed"},
    }
    op = db.execute(
        "SELECT op_id, account_last4, outcome, cash_accepted_minor,"
        " money_at_risk_minor, failed_step FROM operations"
    ).fetchone()
    assert op == {
        "op_id": "o1-op",
        "account_last4": "4567",
        "outcome": "completed",
        "cash_accepted_minor": 50_000,
        "money_at_risk_minor": 0,
        "failed_step": None,
    }
    hb = db.execute("SELECT interval_s, app FROM heartbeats").fetchone()
    assert hb == {"interval_s": 30, "app": "kiosk 2.3.1"}
    terminal = db.execute("SELECT * FROM terminal_state WHERE tid = 'T-1'").fetchone()
    assert terminal is not None
    assert terminal["last_seen"] == T0 + timedelta(seconds=3)
    assert terminal["heartbeat_interval_s"] == 30
    assert terminal["online"] is True
    assert terminal["last_seq"] == 4
    assert terminal["seq_gaps"] == 0
    for kind, value in before.items():
        assert counter(kind, "stored") == value + 1
    assert recorder.operations() == ["o1"]


def heartbeat_bytes(tid: str, ts: datetime, msg_id: str, **kw: Any) -> bytes:
    return encode(traffic.heartbeat(tid, ts, msg_id, **kw))


def test_it_stores_a_repeated_message_once_and_counts_the_duplicate(
    collector: Collector,
    publish: Publish,
    settings: Settings,
    db: psycopg.Connection[Row],
    recorder: Recorder,
) -> None:
    stored, duplicate = counter("heartbeat", "stored"), counter("heartbeat", "duplicate")
    payload = heartbeat_bytes("T-1", T0, "h1")
    publish(f"{settings.topic_root}/T-1/heartbeat", payload)
    assert collector.wait_processed(1)
    publish(f"{settings.topic_root}/T-1/heartbeat", payload)
    publish(f"{settings.topic_root}/T-1/heartbeat", payload)
    assert collector.wait_processed(3)
    assert count(db, "heartbeats") == 1
    assert counter("heartbeat", "stored") == stored + 1
    assert counter("heartbeat", "duplicate") == duplicate + 2
    assert [h.id for b in recorder.batches for h in b.heartbeats] == ["h1"]


def test_it_keeps_bad_input_as_rejected_and_goes_on(
    collector: Collector, publish: Publish, settings: Settings, db: psycopg.Connection[Row]
) -> None:
    root = settings.topic_root
    good = traffic.heartbeat("T-1", T0, "h1")
    body = {"v": 1, "tid": "T-1", "id": "h1", "ts": "2026-05-04T10:00:00+00:00"}
    cases = [
        (f"{root}/T-1/heartbeat", b"{not json", "malformed_json"),
        (
            f"{root}/T-1/heartbeat",
            b'{"v":1,"tid":"T-1","id":7,"ts":"2026-05-04T10:00:00Z"}',
            "wrong_type",
        ),
        (f"{root}/T-1/operations", encode(good), "missing_field"),
        (f"{root}/T-1/heartbeat", encode(good) + b" " * (64 * 1024), "too_large"),
        (f"{root}/T-9/heartbeat", encode(good), "spoofed_tid"),
        (f"{root}/T-1/commands", encode(good), "unknown_topic"),
        (
            f"{root}/T-1/heartbeat",
            heartbeat_bytes("T-1", datetime.now(UTC) + timedelta(days=2), "h2"),
            "future_ts",
        ),
        (f"{root}/T-1/heartbeat", json.dumps({**body, "v": 2}).encode(), "unsupported_version"),
    ]
    before = {reason: rejected_count(reason) for _, _, reason in cases}
    rejected_status = counter("operations", "rejected")
    for topic, payload, _ in cases:
        publish(topic, payload)
    publish(f"{root}/T-1/heartbeat", encode(good))
    assert collector.wait_processed(len(cases) + 1)
    rows = db.execute(
        "SELECT topic, kind, tid, reason, payload_head FROM rejected_messages ORDER BY id"
    ).fetchall()
    assert [r["reason"].split(":")[0] for r in rows] == [reason for _, _, reason in cases]
    for row, (topic, payload, _) in zip(rows, cases, strict=True):
        assert row["topic"] == topic
        assert bytes(row["payload_head"]) == payload[:256]
    assert rows[4]["tid"] == "T-9"
    assert rows[5]["kind"] == "unknown"
    for reason, value in before.items():
        assert rejected_count(reason) == value + 1
    assert counter("operations", "rejected") == rejected_status + 1
    assert count(db, "heartbeats") == 1


def test_it_keeps_only_the_last_four_digits_of_an_account_and_the_money_at_risk(
    collector: Collector, publish: Publish, settings: Settings, db: psycopg.Connection[Row]
) -> None:
    op = traffic.operation("T-1", T0, "o1", account="+79161234567", payment="timeout")
    publish(f"{settings.topic_root}/T-1/operations", encode(op))
    assert collector.wait_processed(1)
    row = db.execute(
        "SELECT account_last4, outcome, failed_step, failed_result, failed_error,"
        " cash_accepted_minor, money_at_risk_minor, steps FROM operations"
    ).fetchone()
    assert row is not None
    assert row["account_last4"] == "4567"
    assert "9161234567" not in json.dumps(row["steps"])
    assert (row["outcome"], row["failed_step"], row["failed_result"], row["failed_error"]) == (
        "failed",
        "paymentSent",
        "timeout",
        "hostTimeout",
    )
    assert (row["cash_accepted_minor"], row["money_at_risk_minor"]) == (50_000, 50_000)


def test_it_records_availability_changes_and_counts_a_retained_repeat_as_duplicate(
    collector: Collector,
    publish: Publish,
    settings: Settings,
    db: psycopg.Connection[Row],
    recorder: Recorder,
) -> None:
    topic = f"{settings.topic_root}/T-1/availability"
    stored, duplicate = counter("availability", "stored"), counter("availability", "duplicate")
    publish(f"{settings.topic_root}/T-1/heartbeat", heartbeat_bytes("T-1", T0, "h1"))
    publish(topic, "offline", retain=True)
    publish(topic, "offline", retain=True)
    assert collector.wait_processed(3)
    row = db.execute("SELECT online, offline_reason FROM terminal_state").fetchone()
    assert row == {"online": False, "offline_reason": "availability"}
    publish(topic, "online", retain=True)
    assert collector.wait_processed(4)
    assert counter("availability", "stored") == stored + 2
    assert counter("availability", "duplicate") == duplicate + 1
    changes = [(c.tid, c.state) for b in recorder.batches for c in b.availability]
    assert changes == [("T-1", "offline"), ("T-1", "online")]
    assert count(db, "availability_log") == 2


def test_it_records_missing_heartbeats_by_the_event_clock(
    settings: Settings, publish: Publish, db: psycopg.Connection[Row], recorder: Recorder
) -> None:
    offline = threading.Event()
    recorder.on_availability = lambda change: offline.set()
    instance = Collector(settings, hooks=[recorder])
    instance.start()
    try:
        assert instance.wait_ready(10)
        root = settings.topic_root
        publish(f"{root}/T-1/heartbeat", heartbeat_bytes("T-1", T0, "h1", interval_s=60))
        for tid in ("T-2", "T-3", "T-4"):  # the fleet's clock moves on without T-1
            publish(f"{root}/{tid}/heartbeat", heartbeat_bytes(tid, T0 + timedelta(minutes=5), "h"))
        assert offline.wait(10)
        row = db.execute(
            "SELECT online, offline_reason, online_changed_at FROM terminal_state WHERE tid = 'T-1'"
        ).fetchone()
        assert row == {
            "online": False,
            "offline_reason": "heartbeat",
            "online_changed_at": T0 + timedelta(minutes=3),
        }
        assert recorder.ticks
        assert max(recorder.ticks) >= T0 + timedelta(minutes=5)
    finally:
        instance.stop()
        assert settings.mqtt_url is not None
        forget_session(settings.mqtt_url, default_client_id(settings))


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto of this test's own: ``support/complaints`` is one topic for everybody on
    the shared broker, so complaint tests must not share it."""
    with mosquitto(tmp_path) as broker:
        yield broker


def send(broker: Broker, topic: str, payload: bytes) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.connect(broker.url.host, broker.url.port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(5)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def test_it_does_not_subscribe_to_complaints_without_a_sink(
    settings: Settings, own_broker: Broker, db: psycopg.Connection[Row]
) -> None:
    instance = Collector(settings.with_(mqtt_url=own_broker.url))
    instance.start()
    try:
        assert instance.wait_ready(10)
        assert "support/complaints" not in instance.source.topics
        send(own_broker, "support/complaints", json.dumps(COMPLAINT).encode())
        send(own_broker, f"{settings.topic_root}/T-1/heartbeat", heartbeat_bytes("T-1", T0, "h"))
        assert instance.wait_processed(1)
        # Delivery is in order: had the complaint come, it would have been handled first.
        assert instance.processed == 1
        assert count(db, "heartbeats") == 1
        assert count(db, "rejected_messages") == 0
    finally:
        instance.stop()


COMPLAINT = {
    "ref": "CRM-2026-000123",
    "received_at": "2026-05-04T11:02:00+03:00",
    "channel": "phone",
    "category": "no_receipt",
    "tid": "T-1",
    "occurred_at": "2026-05-04T10:30:00+03:00",
    "amount_minor": 50000,
    "currency": "RUB",
    "customer": "+79161234567",
    "text": "paid 500, no receipt",
}


def test_it_stores_complaints_through_the_intake_once_per_ref(
    settings: Settings, own_broker: Broker, db: psycopg.Connection[Row], recorder: Recorder
) -> None:
    from rules.intake import ComplaintIntake

    local = settings.with_(mqtt_url=own_broker.url)
    instance = Collector(local, hooks=[recorder], complaints=ComplaintIntake(local))
    instance.start()
    try:
        assert instance.wait_ready(10)
        assert "support/complaints" in instance.source.topics
        payload = json.dumps(COMPLAINT).encode()
        send(own_broker, "support/complaints", payload)
        send(own_broker, "support/complaints", payload)
        send(own_broker, "support/complaints", b'{"ref": "CRM-2"}')
        assert instance.wait_processed(3)
        row = db.execute("SELECT ref, tid, customer_last4 FROM complaints").fetchone()
        assert row == {"ref": "CRM-2026-000123", "tid": "T-1", "customer_last4": "4567"}
        assert count(db, "complaints") == 1
        assert _seen(recorder) == 1
        rejected = db.execute("SELECT kind, reason FROM rejected_messages").fetchone()
        assert rejected is not None
        assert rejected["kind"] == "complaints"
        assert rejected["reason"].startswith("missing_field")
    finally:
        instance.stop()


def _seen(recorder: Recorder) -> int:
    return sum(len(b.complaints) for b in recorder.batches)


def _wait(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll a condition that another component (the broker, other tests) decides."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_collectors_in_a_shared_group_split_the_messages_without_doubling_any(
    settings: Settings, publish: Publish, db: psycopg.Connection[Row]
) -> None:
    group = settings.with_(share_group=f"g{settings.topic_root[-8:]}")
    both = Recorder()  # one hook for the two collectors
    first = Collector(group.with_(client_id=f"{settings.topic_root}-a"), hooks=[both])
    second = Collector(group.with_(client_id=f"{settings.topic_root}-b"), hooks=[both])
    first.start()
    second.start()
    try:
        assert first.wait_ready(10)
        assert second.wait_ready(10)
        assert first.source.topics[0] == f"$share/{group.share_group}/{settings.topic_root}/#"
        for i in range(200):
            tid = f"T-{i % 20}"
            publish(
                f"{settings.topic_root}/{tid}/heartbeat",
                heartbeat_bytes(tid, T0 + timedelta(seconds=i), f"h{i}"),
            )
        assert both.wait_for(lambda: len(both.heartbeats()) >= 200)
        assert first.processed + second.processed == 200
        assert first.processed > 0
        assert second.processed > 0
        assert count(db, "heartbeats") == 200
    finally:
        first.stop()
        second.stop()
        assert settings.mqtt_url is not None
        forget_session(settings.mqtt_url, f"{settings.topic_root}-a")
        forget_session(settings.mqtt_url, f"{settings.topic_root}-b")


def test_it_leaves_messages_unacknowledged_while_the_database_is_unreachable(
    settings: Settings, publish: Publish, db: psycopg.Connection[Row]
) -> None:
    unreachable = settings.with_(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    blocked = Collector(unreachable)
    blocked.start()
    try:
        assert blocked.wait_ready(10)
        publish(f"{settings.topic_root}/T-1/heartbeat", heartbeat_bytes("T-1", T0, "h1"))
        assert _wait(lambda: len(blocked.inbox) == 1)
    finally:
        blocked.stop(timeout_s=0.5)
    healthy = Collector(settings)
    healthy.start()
    try:
        assert healthy.wait_processed(1)
        assert count(db, "heartbeats") == 1
    finally:
        healthy.stop()
        assert settings.mqtt_url is not None
        forget_session(settings.mqtt_url, default_client_id(settings))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_new_session_receives_the_retained_status_and_availability_of_terminals(
    settings: Settings, publish: Publish, db: psycopg.Connection[Row]
) -> None:
    root = settings.topic_root
    publish(f"{root}/T-7/status", encode(traffic.status("T-7", T0, "s1", paper="low")), retain=True)
    publish(f"{root}/T-7/availability", "online", retain=True)
    instance = Collector(settings)
    instance.start()
    try:
        assert instance.wait_processed(2)
        value = db.execute(
            "SELECT value FROM device_state WHERE tid = 'T-7' AND field = 'paper'"
        ).fetchone()
        assert value == {"value": "low"}
    finally:
        instance.stop()
        assert settings.mqtt_url is not None
        forget_session(settings.mqtt_url, default_client_id(settings))
