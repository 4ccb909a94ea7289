"""The tuned paho client (bulk PUBACKs, buffered reads) against the real broker.

It relies on paho 2.x internals; these tests fail if a paho release changes them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.client import BufferedSocket, FastClient, MalformedPublish, parse_publish
from termwatch.settings import MqttUrl

TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Message:
    topic: bytes
    payload: bytes
    mid: int
    qos: int


class Subscriber:
    """A persistent-session FastClient that hands every message to a queue, unacknowledged;
    through paho's reader, or through the in-place PUBLISH parser when ``raw``."""

    def __init__(self, url: MqttUrl, client_id: str, topic: str, *, raw: bool) -> None:
        self.messages: queue.Queue[Message] = queue.Queue()
        self.subscribed = threading.Event()
        self.client = FastClient(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.manual_ack_set(True)
        self.in_place = 0  # messages that came through the in-place parser
        self.client.on_message = lambda c, u, m: self.messages.put(
            Message(m.topic.encode(), bytes(m.payload), m.mid, m.qos)
        )
        if raw:
            self.client.on_publish_raw = self._raw
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 600
        props.ReceiveMaximum = 65535
        self.client.connect(url.host, url.port, clean_start=False, properties=props)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert self.subscribed.wait(TIMEOUT_S)

    def _raw(self, topic: bytes, payload: bytes, mid: int, qos: int) -> None:
        self.in_place += 1
        self.messages.put(Message(topic, payload, mid, qos))

    def take(self, n: int) -> list[Message]:
        return [self.messages.get(timeout=TIMEOUT_S) for _ in range(n)]

    def close(self) -> None:
        assert self.client.sync(TIMEOUT_S)
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mqtt_url: MqttUrl) -> Iterator[paho.Client]:
    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(1000)
    client.connect(mqtt_url.host, mqtt_url.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def publish(client: paho.Client, topic: str, payloads: list[bytes]) -> None:
    infos = [client.publish(topic, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(TIMEOUT_S)


def forget(url: MqttUrl, client_id: str) -> None:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.connect(url.host, url.port, clean_start=True)
    client.disconnect()


@pytest.mark.parametrize("raw", [False, True], ids=["paho-reader", "in-place"])
def test_acknowledged_messages_are_not_delivered_again_and_the_others_are(
    mqtt_url: MqttUrl, topic_root: str, publisher: paho.Client, raw: bool
) -> None:
    topic, client_id = f"{topic_root}/acks", f"{topic_root}-sub"
    first = Subscriber(mqtt_url, client_id, topic, raw=raw)
    try:
        publish(publisher, topic, [f"m{i}".encode() for i in range(10)])
        got = first.take(10)
        assert [m.payload for m in got] == [f"m{i}".encode() for i in range(10)]
        assert {m.qos for m in got} == {1}
        first.client.ack_many([m.mid for m in got[:6]])  # m6..m9 left unacknowledged
        publish(publisher, topic, [b"marker-1"])
        assert first.take(1)[0].payload == b"marker-1"
        first.client.ack_many([])
    finally:
        first.close()
    second = Subscriber(mqtt_url, client_id, topic, raw=raw)
    try:
        publish(publisher, topic, [b"marker-2"])
        again = [m.payload for m in second.take(6)]
        assert again == [b"m6", b"m7", b"m8", b"m9", b"marker-1", b"marker-2"]
    finally:
        second.close()
        forget(mqtt_url, client_id)


@pytest.mark.parametrize("raw", [False, True], ids=["paho-reader", "in-place"])
def test_it_reads_a_burst_of_messages_whole_and_in_order(
    mqtt_url: MqttUrl, topic_root: str, publisher: paho.Client, raw: bool
) -> None:
    topic, client_id = f"{topic_root}/burst", f"{topic_root}-burst"
    sub = Subscriber(mqtt_url, client_id, topic, raw=raw)
    try:
        assert isinstance(sub.client.socket(), BufferedSocket)
        # Sizes that straddle the 256 KiB read buffer, including packets larger than it.
        payloads = [(f"{i:05d}-" + "x" * (i % 700)).encode() for i in range(3000)]
        payloads[1000:1000] = [b"y" * 300_000, b"z" * 70_000]
        publish(publisher, topic, payloads)
        got = sub.take(len(payloads))
        assert [m.payload for m in got] == payloads
        assert {m.topic for m in got} == {topic.encode()}
        assert (sub.in_place > len(payloads) // 2) if raw else (sub.in_place == 0)
        sub.client.ack_many([m.mid for m in got])
    finally:
        sub.close()
        forget(mqtt_url, client_id)


def test_it_parses_publish_packets_with_v5_properties_and_refuses_broken_ones() -> None:
    topic, payload = b"terminals/T-1/status", b'{"v":1}'
    properties = bytes([0x03, 0x00, 0x04]) + b"json"  # content type "json"
    body = len(topic).to_bytes(2, "big") + topic + (7).to_bytes(2, "big")
    packet = body + bytes([len(properties)]) + properties + payload
    assert parse_publish(0x32, packet, v5=True) == (topic, payload, 7, 1)
    assert parse_publish(
        0x30, len(topic).to_bytes(2, "big") + topic + b"\x00" + payload, v5=True
    ) == (
        topic,
        payload,
        0,
        0,
    )
    assert parse_publish(0x3B, body + payload, v5=False) == (topic, payload, 7, 1)  # dup, retain
    with pytest.raises(MalformedPublish):
        parse_publish(0x32, b"\x00\x30abc", v5=False)
    with pytest.raises(MalformedPublish):
        parse_publish(0x32, body + bytes([0x7F]), v5=True)


def test_it_refuses_per_topic_callbacks_at_the_call_site() -> None:
    client = FastClient(CallbackAPIVersion.VERSION2, client_id="refuse-callbacks")
    with pytest.raises(TypeError, match="on_message"):
        client.message_callback_add("terminals/#", lambda *a: None)
