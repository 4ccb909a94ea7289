"""Two collectors on one shared subscription, each running the rules, against a burst of
faults: every fault opens exactly one incident and each storm one group."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from collector import traffic
from collector.service import Collector
from rules.engine import RuleEngine
from terminals.contract import Operation, encode
from termwatch.db import Row
from termwatch.settings import MqttUrl, Settings
from tests.rules_support import Fleet

Conn = psycopg.Connection[Row]
T0 = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)
TIDS = [f"D{i:03d}" for i in range(40)]


def _forget_session(url: MqttUrl, client_id: str) -> None:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.connect(url.host, url.port, clean_start=True)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def pair(settings: Settings, clean_db: str) -> Iterator[list[Collector]]:
    shared = settings.with_(share_group=f"g-{settings.topic_root}")
    collectors = []
    engines = []
    for name in ("a", "b"):
        engine = RuleEngine(shared, clean_db)
        engines.append(engine)
        collector = Collector(
            shared.with_(client_id=f"{settings.topic_root}-{name}"), hooks=[engine]
        )
        collector.start()
        collectors.append(collector)
    for collector in collectors:
        assert collector.wait_ready(10)
    yield collectors
    for collector in collectors:
        collector.stop()
    for engine in engines:
        engine.close()
    assert settings.mqtt_url is not None
    for name in ("a", "b"):
        _forget_session(settings.mqtt_url, f"{settings.topic_root}-{name}")


def _failed_payment(tid: str, ts: datetime, msg_id: str, seq: int) -> Operation:
    return traffic.operation(tid, ts, msg_id, seq, payment="timeout", receipt="skipped")


def _publish_burst(url: MqttUrl, root: str) -> int:
    """Per terminal: healthy, paper out, two timed-out payments, a heartbeat. Returns how
    many messages were published."""
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect(url.host, url.port)
    client.loop_start()
    sent = []
    try:
        for i, tid in enumerate(TIDS):
            t = T0 + timedelta(seconds=i)

            s10, s20, s30, s40 = (t + timedelta(seconds=n) for n in (10, 20, 30, 40))
            messages = [
                ("status", traffic.status(tid, t, f"{tid}-1", 1)),
                ("status", traffic.status(tid, s10, f"{tid}-2", 2, paper="out")),
                ("operations", _failed_payment(tid, s20, f"{tid}-3", 3)),
                ("operations", _failed_payment(tid, s30, f"{tid}-4", 4)),
                ("heartbeat", traffic.heartbeat(tid, s40, f"{tid}-5", 5)),
            ]
            for kind, message in messages:
                sent.append(client.publish(f"{root}/{tid}/{kind}", encode(message), qos=1))
        for info in sent:
            info.wait_for_publish(10)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()
    return len(sent)


def _wait_for(db: Conn, query: str, expected: int, timeout_s: float = 30.0) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        row = db.execute(query).fetchone()
        value = int(row["n"]) if row else 0
        if value >= expected or time.monotonic() > deadline:
            return value
        time.sleep(0.05)  # polling a condition another process brings about


def test_two_collectors_sharing_the_load_open_each_incident_once(
    db: Conn, settings: Settings, pair: list[Collector]
) -> None:
    fleet = Fleet(db)
    for i, tid in enumerate(TIDS):
        fleet.register(tid, region="East" if i % 2 else "West")
    assert settings.mqtt_url is not None
    total = _publish_burst(settings.mqtt_url, settings.topic_root)
    deadline = time.monotonic() + 30
    while sum(c.processed for c in pair) < total and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the collectors' own counters
    assert sum(c.processed for c in pair) == total
    assert all(c.processed > 0 for c in pair), "the shared subscription did not split the load"
    opened = _wait_for(db, "SELECT count(*) AS n FROM incidents WHERE NOT is_group", 2 * len(TIDS))
    for collector in pair:
        collector.stop()  # hooks run on the writer's thread: after stop, all have run
    assert opened == 2 * len(TIDS)
    per_key = db.execute(
        "SELECT tid, kind, count(*) AS n FROM incidents GROUP BY tid, kind HAVING count(*) > 1"
    ).fetchall()
    assert per_key == []
    kinds = db.execute(
        "SELECT kind, count(*) AS n FROM incidents WHERE NOT is_group GROUP BY kind ORDER BY kind"
    ).fetchall()
    assert [(r["kind"], r["n"]) for r in kinds] == [
        ("payment_failures", len(TIDS)),
        ("printer_paper_out", len(TIDS)),
    ]
    groups = db.execute(
        "SELECT tid, kind FROM incidents WHERE is_group ORDER BY tid, kind"
    ).fetchall()
    assert [(g["tid"], g["kind"]) for g in groups] == [
        ("region:East", "payment_failures"),
        ("region:East", "printer_paper_out"),
        ("region:West", "payment_failures"),
        ("region:West", "printer_paper_out"),
    ]
    logged = db.execute(
        "SELECT incident_id, count(*) AS n FROM incident_log WHERE action = 'opened'"
        " GROUP BY incident_id HAVING count(*) > 1"
    ).fetchall()
    assert logged == []
    ungrouped = db.execute(
        "SELECT count(*) AS n FROM incidents WHERE NOT is_group AND parent_id IS NULL"
    ).fetchone()
    assert ungrouped == {"n": 0}
