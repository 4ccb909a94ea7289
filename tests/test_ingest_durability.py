"""Nothing lost, nothing doubled: a ``termwatch collector`` killed mid-stream and restarted.

These tests run their own Mosquitto (on a free port, queue limits lifted as docs/collector.md
asks of a deployment): the shared test broker keeps Mosquitto's default of 1000 queued
messages per client, beyond which a broker drops QoS 1 messages for an absent subscriber.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.servers import Broker, free_port, mosquitto
from collector import traffic
from collector.service import Collector
from terminals.contract import encode
from termwatch.db import Row
from termwatch.settings import Settings
from tests.fix_proc import Lines

MESSAGES = 10_000
DEADLINE_S = 60.0
T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto(tmp_path) as running:
        yield running


class CollectorProcess:
    """``termwatch collector`` in a subprocess, its log lines read as they come."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "termwatch.cli", "collector"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.proc.stderr is not None
        self.log = Lines(self.proc.stderr)

    def wait_for(self, text: str) -> None:
        self.log.wait_for(text, DEADLINE_S)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(DEADLINE_S)


def collector_env(settings: Settings, broker: Broker) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMWATCH_")}
    assert settings.database_url is not None
    env.update(
        TERMWATCH_DATABASE_URL=settings.database_url,
        TERMWATCH_MQTT_URL=f"mqtt://{broker.url.host}:{broker.url.port}",
        TERMWATCH_TOPIC_ROOT=settings.topic_root,
        TERMWATCH_CLIENT_ID=f"durability-{settings.topic_root}",
        TERMWATCH_METRICS=f"127.0.0.1:{free_port()}",
        TERMWATCH_PII_KEY=settings.pii_key,
        TERMWATCH_LOG_LEVEL="INFO",
    )
    return env


def stored(db: psycopg.Connection[Row]) -> tuple[int, int]:
    """(rows, distinct message ids) over the telemetry tables."""
    row = db.execute(
        "SELECT count(*) AS n, count(DISTINCT (tid, msg_id)) AS d FROM ("
        " SELECT tid, msg_id FROM heartbeats UNION ALL SELECT tid, msg_id FROM operations"
        " UNION ALL SELECT tid, msg_id FROM events UNION ALL SELECT tid, msg_id"
        " FROM status_snapshots) AS m"
    ).fetchone()
    assert row is not None
    return int(row["n"]), int(row["d"])


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll a condition another process decides (the collector), up to a deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def publish_in_background(broker: Broker, messages: list[tuple[str, bytes]]) -> threading.Thread:
    """Publish every message at QoS 1 from a thread; it ends once the broker has them all."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="durability-publisher")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(broker.url.host, broker.url.port)
    client.loop_start()

    def run() -> None:
        try:
            infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
            for info in infos:
                info.wait_for_publish(DEADLINE_S)
        finally:
            client.disconnect()
            client.loop_stop()

    thread = threading.Thread(target=run, name="publisher")
    thread.start()
    return thread


def test_a_collector_killed_mid_stream_loses_and_doubles_nothing(
    settings: Settings, broker: Broker, db: psycopg.Connection[Row]
) -> None:
    stream = traffic.FleetTraffic(settings.topic_root, 200, T0, seed=7)
    messages = [next(stream) for _ in range(MESSAGES)]
    env = collector_env(settings, broker)
    first = CollectorProcess(env)
    second: CollectorProcess | None = None
    try:
        first.wait_for("subscribed to")
        publisher = publish_in_background(broker, messages)
        wait_until(lambda: stored(db)[0] >= MESSAGES // 5, "the first messages to be stored")
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(DEADLINE_S)
        at_kill = stored(db)[0]
        assert at_kill < MESSAGES, "the collector was killed after the stream, not in the middle"
        second = CollectorProcess(env)
        publisher.join(DEADLINE_S)
        assert not publisher.is_alive()
        wait_until(lambda: stored(db)[0] >= MESSAGES, f"{MESSAGES} messages stored")
        assert stored(db) == (MESSAGES, MESSAGES)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert second.proc.returncode == 0, "".join(second.log.output)
    assert stored(db) == (MESSAGES, MESSAGES)


def test_it_subscribes_again_after_the_broker_restarts(
    settings: Settings, tmp_path: Path, db: psycopg.Connection[Row]
) -> None:
    with mosquitto(tmp_path) as first_broker:
        local = settings.with_(mqtt_url=first_broker.url)
        collector = Collector(local)
        collector.start()
        try:
            assert collector.wait_ready(10)
            topic = f"{settings.topic_root}/T-1/heartbeat"
            send(first_broker, topic, encode(traffic.heartbeat("T-1", T0, "h1")))
            assert collector.wait_processed(1)
        except BaseException:
            collector.stop()
            raise
    # The broker is gone (and, without persistence, so is the session); same port again.
    try:
        wait_until(lambda: not collector.source.subscribed.is_set(), "the collector to notice")
        with mosquitto(tmp_path, port=first_broker.url.port) as second_broker:
            assert collector.wait_ready(20)
            later = encode(traffic.heartbeat("T-1", T0 + timedelta(minutes=1), "h2"))
            send(second_broker, topic, later)
            assert collector.wait_processed(2)
    finally:
        collector.stop()
    assert stored(db) == (2, 2)


def send(broker: Broker, topic: str, payload: bytes) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.connect(broker.url.host, broker.url.port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(DEADLINE_S)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()
