"""The embedded PostgreSQL and MQTT broker: they start, keep their data, restart on it, stop."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from termwatch.embedded import EmbeddedBroker, EmbeddedPostgres, port_open
from termwatch.settings import MqttUrl


@pytest.fixture(scope="module")
def pg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedded-pg")


@pytest.fixture
def postgres(pg_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(pg_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_it_keeps_committed_rows_across_a_restart_on_the_same_directory(pg_dir: Path) -> None:
    server = EmbeddedPostgres(pg_dir)
    server.start()
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS kept")
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('before restart')")
    port = server.port
    server.stop()
    assert not port_open("127.0.0.1", port)

    again = EmbeddedPostgres(pg_dir)
    again.start()
    try:
        with psycopg.connect(again.dsn("postgres")) as conn:
            rows = conn.execute("SELECT v FROM kept").fetchall()
        assert rows == [("before restart",)]
        assert again.port == port  # the remembered port is reused while it is free
    finally:
        again.stop()


def test_it_ships_the_contrib_extensions_and_unicode_case_mapping(
    postgres: EmbeddedPostgres,
) -> None:
    with psycopg.connect(postgres.dsn("postgres"), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS extensions_check")
    assert postgres.ensure_database("extensions_check") is True
    assert postgres.ensure_database("extensions_check") is False
    with psycopg.connect(postgres.dsn("extensions_check"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        row = conn.execute("SELECT lower('МОСКВА'), similarity('Tverskaya', 'Tverskaja')")
        lowered, similarity = row.fetchone() or (None, None)
    assert lowered == "москва"
    assert similarity is not None
    assert similarity > 0.3


def test_it_adopts_a_server_left_running_by_a_process_that_died(
    postgres: EmbeddedPostgres, pg_dir: Path
) -> None:
    # A second handle on the same directory stands for the next run after a crash.
    successor = EmbeddedPostgres(pg_dir)
    successor.start()
    assert successor.port == postgres.port
    with psycopg.connect(successor.dsn("postgres")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def _retained_payload(url: MqttUrl, topic: str) -> bytes | None:
    """The retained message on ``topic``, or None when the broker holds none."""
    got = threading.Event()
    payloads: list[bytes] = []
    sentinel = f"{topic}-sentinel"

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.topic == topic:
            payloads.append(bytes(message.payload))
        elif message.topic == sentinel:
            got.set()

    def on_subscribe(client: mqtt.Client, *args: object) -> None:
        # Retained messages are sent on subscription, before the sentinel published after it.
        client.publish(sentinel, b"x", qos=1)

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.connect(url.host, url.port)
    client.loop_start()
    try:
        client.subscribe([(topic, 1), (sentinel, 1)])
        assert got.wait(10), "the broker did not deliver the sentinel"
    finally:
        client.disconnect()
        client.loop_stop()
    return payloads[0] if payloads else None


def _publish_retained(url: MqttUrl, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(url.host, url.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed")
def test_the_mosquitto_broker_keeps_retained_messages_across_a_restart(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "broker", kind="mosquitto")
    broker.start()
    try:
        _publish_retained(broker.url, "terminals/T-1/availability", b"online")
    finally:
        broker.stop()
    assert (tmp_path / "broker" / "mosquitto.db").is_file()

    broker.start()
    try:
        assert _retained_payload(broker.url, "terminals/T-1/availability") == b"online"
    finally:
        broker.stop()


def test_the_amqtt_broker_delivers_messages_when_mosquitto_is_absent(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "broker", kind="amqtt")
    broker.start()
    try:
        _publish_retained(broker.url, "terminals/T-2/availability", b"offline")
        assert _retained_payload(broker.url, "terminals/T-2/availability") == b"offline"
        port = broker.url.port
    finally:
        broker.stop()
    assert not port_open("127.0.0.1", port)


def test_a_broker_left_running_by_a_crashed_run_is_replaced(tmp_path: Path) -> None:
    first = EmbeddedBroker(tmp_path / "broker", kind="amqtt")
    first.start()
    old_port = first.url.port
    # A new handle, as after a crash: it stops the leftover and takes over its files.
    second = EmbeddedBroker(tmp_path / "broker", kind="amqtt")
    second.start()
    try:
        assert second.url.port == old_port
        _publish_retained(second.url, "terminals/T-3/availability", b"online")
        assert _retained_payload(second.url, "terminals/T-3/availability") == b"online"
    finally:
        second.stop()
        first.stop()


def test_it_rejects_an_unknown_broker_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind must be"):
        EmbeddedBroker(tmp_path, kind="rabbitmq")
