"""A black-holed broker link (no reset, packets vanish) is found within seconds by the
collector's probe, and the event clock stands still until the link answers again."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from collector import mqtt, traffic
from collector.clock import EventClock
from collector.hooks import AvailabilityChange
from collector.inbox import Inbox
from collector.mqtt import MqttSource
from collector.service import Collector
from terminals.contract import encode
from termwatch.db import Row
from termwatch.settings import MqttUrl, Settings, parse_mqtt_url
from tests.fix_linkproxy import LinkProxy
from tests.test_collector import Recorder, forget_session

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


class Wall:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_black_holed_link_freezes_the_clock_within_seconds(
    link_proxy: LinkProxy, topic_root: str
) -> None:
    wall = Wall()
    clock = EventClock(wall=wall, grace_s=0.0)
    settings = Settings(
        mqtt_url=parse_mqtt_url(f"mqtt://127.0.0.1:{link_proxy.port}", "TERMWATCH_MQTT_URL"),
        client_id=f"tw-probe-{uuid.uuid4().hex[:8]}",
        topic_root=topic_root,
    )
    source = MqttSource(settings, Inbox(1000), clock, complaints=False)
    source.start()
    try:
        assert source.subscribed.wait(10)
        assert source.probe_returned.wait(10)
        clock.observe([(f"T-{i}", T0) for i in range(3)])
        wall.t += 10
        source.probe_returned.clear()
        assert source.probe_returned.wait(10)
        assert clock.now() == T0 + timedelta(seconds=10)  # silent but proven link: runs on

        link_proxy.black_hole()
        started = time.monotonic()
        assert source.link_suspect.wait(mqtt.PROBE_TIMEOUT_S + 5)
        assert time.monotonic() - started < mqtt.PROBE_TIMEOUT_S + 3  # keepalive: ~45 s
        assert not source.link_alive.is_set()
        frozen = clock.now()
        assert frozen == T0 + timedelta(seconds=10)  # no run-on past the last probe
        wall.t += 3600  # an hour of black hole moves nothing
        assert clock.now() == frozen

        link_proxy.restore()
        assert source.link_alive.wait(60)
        assert not source.link_suspect.is_set()
        wall.t += 5
        source.probe_returned.clear()
        assert source.probe_returned.wait(10)
        now = clock.now()
        assert now is not None
        assert now > frozen  # the link answers: the clock goes on
    finally:
        source.stop()


def test_terminals_with_20_s_heartbeats_stay_online_while_the_link_is_black_holed(
    link_proxy: LinkProxy, settings: Settings, mqtt_url: MqttUrl, db: psycopg.Connection[Row]
) -> None:
    local = settings.with_(
        mqtt_url=parse_mqtt_url(f"mqtt://127.0.0.1:{link_proxy.port}", "TERMWATCH_MQTT_URL"),
        client_id=f"tw-hole-{uuid.uuid4().hex[:8]}",
    )
    recorder = Recorder()
    offline: list[AvailabilityChange] = []
    went_offline = threading.Event()

    def on_change(change: AvailabilityChange) -> None:
        if change.state == "offline":
            offline.append(change)
            went_offline.set()

    recorder.on_availability = on_change
    instance = Collector(local, hooks=[recorder])
    publisher = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    publisher.connect(mqtt_url.host, mqtt_url.port)
    publisher.loop_start()
    fleet = [f"T-{i:02d}" for i in range(20)]
    root = settings.topic_root

    def round_of_heartbeats(n: int) -> None:
        for tid in fleet:
            body = traffic.heartbeat(tid, T0 + timedelta(seconds=20 * n), f"h{n}", interval_s=20)
            info = publisher.publish(f"{root}/{tid}/heartbeat", encode(body), qos=1)
        info.wait_for_publish(5)

    instance.start()
    try:
        assert instance.wait_ready(10)
        assert instance.source.probe_returned.wait(10)
        for n in range(12):  # 20 s of event time every 0.5 s: the clock learns 40x
            round_of_heartbeats(n)
            time.sleep(0.5)  # paces the traffic; nothing is awaited here
        with recorder._changed:
            assert recorder._changed.wait_for(lambda: len(recorder.heartbeats()) >= 240, 20)
        assert instance.clock.rate > 10

        link_proxy.black_hole()
        round_of_heartbeats(12)  # sent, but vanishes on the way to the collector
        assert instance.source.link_suspect.wait(mqtt.PROBE_TIMEOUT_S + 5)
        # at 40x, three missed heartbeats take 1.5 s of run-on: none happens
        assert not went_offline.wait(5), offline
        rows = db.execute("SELECT count(*) AS n FROM terminal_state WHERE online").fetchone()
        assert rows == {"n": 20}
    finally:
        link_proxy.restore()
        publisher.disconnect()
        publisher.loop_stop()
        instance.stop()
        assert local.mqtt_url is not None
        forget_session(mqtt_url, local.client_id or "")
