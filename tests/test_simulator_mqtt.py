"""The simulator against the real broker: own connections, real last wills, complaints."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulator.engine import World
from simulator.links import Credentials, LinkError
from simulator.loadgen import run_bench
from simulator.publisher import PublishOptions, publish
from simulator.scenario import load_scenario
from simulator.sink import ApiRefused, ApiTarget, ComplaintSink
from simulator.timefmt import MINUTE
from termwatch.settings import MqttUrl
from tests.test_acl import build_passwd, start_shipped_mosquitto


class Listener:
    """Every message under some topic filters, as (topic, payload, retain)."""

    def __init__(self, url: MqttUrl, filters: list[str]) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"listener-{time.time_ns()}"
        )
        self.client.on_message = self._on_message
        if url.username is not None:
            self.client.username_pw_set(url.username, url.password)
        self.client.connect(url.host, url.port, 30)
        self.client.loop_start()
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.subscribe([(f, 1) for f in filters])
        assert subscribed.wait(5)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def wait_for(
        self, condition: Callable[[list[tuple[str, bytes]]], bool], seconds: float = 15
    ) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                snapshot = list(self.messages)
            if condition(snapshot):
                return snapshot
            time.sleep(0.05)
        raise AssertionError(f"condition not met; {len(snapshot)} messages received")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def listener(mqtt_url: MqttUrl, topic_root: str) -> Iterator[Listener]:
    got = Listener(mqtt_url, [f"{topic_root}/#"])
    yield got
    got.close()


def options(topic_root: str, **kw: object) -> PublishOptions:
    return PublishOptions(
        client_id=f"{topic_root}-{{tid}}",
        topic_root=topic_root,
        complaints_topic=f"{topic_root}/support/complaints",
        **kw,  # type: ignore[arg-type]
    )


def test_the_fleet_publishes_everything_and_a_network_loss_fires_the_real_last_will(
    mqtt_url: MqttUrl, topic_root: str, listener: Listener
) -> None:
    sc = load_scenario("tiny")
    expected = [
        e for e in World(sc, 7, topic_root).emissions() if e.action in ("publish", "complaint")
    ]
    world = World(sc, 7, topic_root)
    sink = ComplaintSink(None)
    stats = publish(world.emissions(), mqtt_url, options(topic_root), sc.start, sink)
    assert stats.unacked == 0
    assert stats.drops == 1
    got = listener.wait_for(lambda m: len(m) >= len(expected) + 7)  # 6 online, 1 offline
    payloads = {p for t, p in got if not t.endswith("/availability")}
    assert payloads == {e.payload for e in expected}
    availability = [(t.split("/")[1], p) for t, p in got if t.endswith("/availability")]
    # Each of the 5 terminals says online; T-000004 loses its network: the broker publishes
    # its will (offline), and it says online again when it is back.
    assert availability.count(("T-000004", b"offline")) == 1
    assert availability.count(("T-000004", b"online")) == 2
    assert {tid for tid, p in availability if p == b"online"} == {
        f"T-00000{n}" for n in range(1, 6)
    }
    order = [p for tid, p in availability if tid == "T-000004"]
    assert order == [b"online", b"offline", b"online"]
    assert sink.via_mqtt == len(world.complaints) > 0


class _Api(BaseHTTPRequestHandler):
    bodies: list[dict[str, object]]
    status = 201

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        assert self.path == "/api/v1/complaints"
        if self.headers["Authorization"] != "Bearer agent-token-123":
            self.send_response(401)
            self.end_headers()
            return
        self.bodies.append(body)
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"ref": body["ref"]}).encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[tuple[str, list[dict[str, object]]]]:
    bodies: list[dict[str, object]] = []
    handler = type("Handler", (_Api,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()
    server.server_close()


def test_complaints_go_to_the_http_api_when_it_answers(
    mqtt_url: MqttUrl, topic_root: str, api: tuple[str, list[dict[str, object]]]
) -> None:
    url, bodies = api
    sc = load_scenario("tiny").with_duration(30 * MINUTE)
    world = World(sc, 7, topic_root)
    sink = ComplaintSink(ApiTarget(url, "agent-token-123"))
    publish(world.emissions(), mqtt_url, options(topic_root), sc.start, sink)
    assert sink.via_api == len(bodies) == len(world.complaints) > 0
    assert sink.via_mqtt == 0
    assert [b["ref"] for b in bodies] == [
        c.ref for c in sorted(world.complaints, key=lambda c: c.received_at)
    ]


def test_a_refused_api_token_stops_the_run(
    mqtt_url: MqttUrl, topic_root: str, api: tuple[str, list[dict[str, object]]]
) -> None:
    url, _ = api
    sc = load_scenario("tiny")
    with pytest.raises(ApiRefused, match="401"):
        publish(
            World(sc, 7, topic_root).emissions(),
            mqtt_url,
            options(topic_root),
            sc.start,
            ComplaintSink(ApiTarget(url, "wrong-token")),
        )


def test_an_unreachable_api_sends_complaints_over_mqtt(mqtt_url: MqttUrl, topic_root: str) -> None:
    sc = load_scenario("tiny").with_duration(30 * MINUTE)
    world = World(sc, 7, topic_root)
    sink = ComplaintSink(ApiTarget("http://127.0.0.1:9", "agent-token-123", timeout_s=1))
    publish(world.emissions(), mqtt_url, options(topic_root), sc.start, sink)
    assert sink.via_api == 0
    assert sink.via_mqtt == len(world.complaints) > 0


def test_the_publisher_keeps_pace_with_the_requested_speed(
    mqtt_url: MqttUrl, topic_root: str
) -> None:
    sc = load_scenario("tiny").with_duration(10 * MINUTE)
    started = time.monotonic()
    stats = publish(
        World(sc, 7, topic_root).emissions(),
        mqtt_url,
        options(topic_root, speed=1200.0),
        sc.start,
        ComplaintSink(None),
    )
    elapsed = time.monotonic() - started
    # The last message is due (sim_now - start) / 1200 s after the first; never earlier.
    assert elapsed >= (stats.sim_now - sc.start) / 1000 / 1200 >= 0.45
    assert stats.lag_s < 0.5


def test_load_mode_publishes_at_the_target_rate(mqtt_url: MqttUrl, topic_root: str) -> None:
    got = Listener(mqtt_url, [f"{topic_root}-bench/#"])
    try:
        total, window = run_bench(mqtt_url, f"{topic_root}-bench", 1, 2, 2000.0, 0.5, 1)
        assert 800 <= total <= 1400
        assert window >= 0.45
        got.wait_for(lambda m: len(m) == total)
    finally:
        got.close()


@pytest.mark.skipif(
    shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None,
    reason="mosquitto is not installed",
)
def test_each_terminal_logs_in_with_its_own_password_on_the_shipped_broker(
    tmp_path: Path,
) -> None:
    """--password-template against deploy/mosquitto as docker-compose runs it: the password
    file built by build-passwd.sh from tid:password lines, the shipped ACL and listeners."""
    template = "{tid}-sim-7f3a"
    sc = load_scenario("tiny").with_duration(30 * MINUTE)
    passwords = {"termwatch": "tw-secret-1", "crm": "crm-secret-1"}
    passwords.update({tid: template.format(tid=tid) for tid in sc.tids()})
    running, ports = start_shipped_mosquitto(tmp_path, build_passwd(tmp_path, passwords))
    reader: Listener | None = None
    try:
        termwatch = MqttUrl("127.0.0.1", ports.internal_port, "termwatch", "tw-secret-1")
        reader = Listener(termwatch, ["terminals/#", "support/complaints"])
        expected = [e for e in World(sc, 7).emissions() if e.action in ("publish", "complaint")]
        # The terminals' listener, as from the host; complaints go as the CRM's account.
        url = MqttUrl("127.0.0.1", ports.terminal_port, "crm", "crm-secret-1")
        own = PublishOptions(credentials=Credentials(template))
        stats = publish(World(sc, 7).emissions(), url, own, sc.start, ComplaintSink(None))
        assert stats.unacked == 0
        assert stats.drops == 1
        got = reader.wait_for(lambda m: len(m) >= len(expected) + 7)  # 6 online, 1 offline
        assert {p for t, p in got if not t.endswith("/availability")} == {
            e.payload for e in expected
        }
        assert sum(1 for t, _ in got if t == "support/complaints") > 0
        assert ("terminals/T-000004/availability", b"offline") in got  # its will, allowed too
        wrong = PublishOptions(credentials=Credentials("{tid}-guessed"))
        with pytest.raises(LinkError, match="refused T-00000"):
            publish(World(sc, 7).emissions(), url, wrong, sc.start, ComplaintSink(None))
    finally:
        if reader is not None:
            reader.close()
        running.stop()
