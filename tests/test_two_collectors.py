"""Two ``termwatch collector`` processes on one shared subscription of the real Mosquitto.

The broker hands each message to one member of the group, so one terminal's messages (and
redeliveries of one message) can reach both collectors. The database is the arbiter: every
message is stored once, a repeated message id is counted as a duplicate by whichever
collector gets it, and a fault reported through both collectors opens one incident.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from prometheus_client.parser import text_string_to_metric_families

from termwatch.db import Row
from termwatch.embedded import free_port
from termwatch.settings import Settings
from tests.fix_proc import Lines

DEADLINE_S = 30.0
TERMINALS = 20
HEARTBEATS = 15  # per terminal
RESENT = 60  # heartbeats published a second time, as a terminal's resend would


@dataclass
class CollectorProcess:
    proc: subprocess.Popen[str]
    metrics_port: int
    log: Lines

    def wait_for(self, text: str) -> None:
        self.log.wait_for(text, DEADLINE_S)

    def messages(self, kind: str) -> dict[str, float]:
        """termwatch_messages_total{kind=...} by outcome, from this process's /metrics."""
        body = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics").text
        found: dict[str, float] = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                if sample.name == "termwatch_messages_total" and sample.labels["kind"] == kind:
                    found[sample.labels["outcome"]] = sample.value
        return found


@pytest.fixture
def collectors(settings: Settings) -> Iterator[list[CollectorProcess]]:
    assert settings.mqtt_url is not None
    assert settings.database_url is not None
    group = f"g{secrets.token_hex(4)}"
    started: list[CollectorProcess] = []
    for i in (1, 2):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERMWATCH_")}
        port = free_port()
        env.update(
            TERMWATCH_DATABASE_URL=settings.database_url,
            TERMWATCH_MQTT_URL=f"mqtt://{settings.mqtt_url.host}:{settings.mqtt_url.port}",
            TERMWATCH_TOPIC_ROOT=settings.topic_root,
            TERMWATCH_SHARE_GROUP=group,
            TERMWATCH_CLIENT_ID=f"{settings.topic_root}-collector-{i}",
            TERMWATCH_METRICS=f"127.0.0.1:{port}",
            TERMWATCH_PII_KEY=settings.pii_key,
            TERMWATCH_FLUSH_MS="10",
            TERMWATCH_LOG_LEVEL="INFO",
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "termwatch.cli", "collector"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert proc.stderr is not None
        started.append(CollectorProcess(proc, port, Lines(proc.stderr)))
    try:
        for collector in started:
            collector.wait_for("subscribed to $share/")
        yield started
    finally:
        for collector in started:
            collector.proc.terminate()
        for collector in started:
            collector.proc.wait(DEADLINE_S)
        for i in (1, 2):
            drop_session(settings, f"{settings.topic_root}-collector-{i}")


def drop_session(settings: Settings, client_id: str) -> None:
    """End the persistent session a collector left at the shared broker (it would go on
    queuing ``support/complaints`` for nobody)."""
    assert settings.mqtt_url is not None
    done = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.on_connect = lambda *args: done.set()
    client.connect(settings.mqtt_url.host, settings.mqtt_url.port, clean_start=True)
    client.loop_start()
    try:
        assert done.wait(DEADLINE_S), f"no CONNACK for {client_id}"
    finally:
        client.disconnect()
        client.loop_stop()


def publish_all(settings: Settings, messages: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 and return once the broker acknowledged every message."""
    assert settings.mqtt_url is not None
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(100)
    client.connect(settings.mqtt_url.host, settings.mqtt_url.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(DEADLINE_S)
    finally:
        client.disconnect()
        client.loop_stop()


def heartbeat(tid: str, n: int, ts: datetime) -> bytes:
    return (
        f'{{"v":1,"tid":"{tid}","id":"{tid}-hb-{n}","ts":"{ts.isoformat()}",'
        f'"seq":{n},"interval_s":60,"app":"kiosk 2.3.1"}}'
    ).encode()


def paper_out(tid: str, n: int, ts: datetime) -> bytes:
    return (
        f'{{"v":1,"tid":"{tid}","id":"{tid}-st-{n}","ts":"{ts.isoformat()}","seq":{n},'
        '"devices":{"printer":{"device":"online","paper":"out","media":"notPresent"}}}'
    ).encode()


def wait_processed(collectors: list[CollectorProcess], kind: str, total: int) -> None:
    """Poll both processes' counters (other processes: no event to wait on) until
    ``total`` messages of ``kind`` were committed between them."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        done = sum(
            counts.get("stored", 0) + counts.get("duplicate", 0) + counts.get("rejected", 0)
            for counts in (c.messages(kind) for c in collectors)
        )
        if done >= total:
            return
        if time.monotonic() > deadline:
            output = "".join(line for c in collectors for line in c.log.output)
            pytest.fail(f"{done} of {total} {kind} messages processed:\n{output}")
        time.sleep(0.1)


def test_two_collectors_on_one_shared_subscription_store_every_message_once(
    settings: Settings, collectors: list[CollectorProcess], db: psycopg.Connection[Row]
) -> None:
    root = settings.topic_root
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    unique = [
        (f"{root}/T-{t:03d}/heartbeat", heartbeat(f"T-{t:03d}", n, t0 + timedelta(minutes=n)))
        for n in range(1, HEARTBEATS + 1)
        for t in range(TERMINALS)
    ]
    resent = unique[:: len(unique) // RESENT][:RESENT]
    publish_all(settings, unique + resent)

    wait_processed(collectors, "heartbeat", len(unique) + len(resent))

    row = db.execute(
        "SELECT count(*) AS n, count(DISTINCT (tid, msg_id)) AS distinct_ids FROM heartbeats"
    ).fetchone()
    assert row == {"n": len(unique), "distinct_ids": len(unique)}
    per_collector = [c.messages("heartbeat") for c in collectors]
    assert sum(c.get("stored", 0) for c in per_collector) == len(unique)
    assert sum(c.get("duplicate", 0) for c in per_collector) == len(resent)
    # The load was shared: each collector stored part of it.
    assert all(c.get("stored", 0) > 0 for c in per_collector), per_collector


def test_a_fault_reported_through_both_collectors_opens_one_incident(
    settings: Settings, collectors: list[CollectorProcess], db: psycopg.Connection[Row]
) -> None:
    root = settings.topic_root
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    tids = [f"P-{t:03d}" for t in range(TERMINALS)]
    # Each terminal reports paper out several times; consecutive messages go to
    # alternating members of the group, so both collectors see every terminal's fault.
    messages = [
        (f"{root}/{tid}/status", paper_out(tid, n, t0 + timedelta(seconds=10 * n)))
        for n in range(1, 5)
        for tid in tids
    ]
    publish_all(settings, messages)

    wait_processed(collectors, "status", len(messages))
    deadline = time.monotonic() + DEADLINE_S
    while True:  # the rules run after each commit, in the collectors' processes
        rows = db.execute(
            "SELECT tid, count(*) AS n FROM incidents"
            " WHERE kind = 'printer_paper_out' AND NOT is_group GROUP BY tid"
        ).fetchall()
        if len(rows) == len(tids) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert {r["tid"]: r["n"] for r in rows} == dict.fromkeys(tids, 1)
    per_collector = [c.messages("status") for c in collectors]
    assert all(c.get("stored", 0) > 0 for c in per_collector), per_collector
