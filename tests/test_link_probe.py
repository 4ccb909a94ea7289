"""A black-holed broker link (no reset, packets vanish) is found within seconds by the
collector's probe, and the event clock stands still until the link answers again."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from collector import mqtt
from collector.clock import EventClock
from collector.inbox import Inbox
from collector.mqtt import MqttSource
from termwatch.settings import Settings, parse_mqtt_url
from tests.fix_linkproxy import LinkProxy

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
