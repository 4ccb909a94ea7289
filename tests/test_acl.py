"""The shipped Mosquitto configuration, password tooling and ACL, on a real Mosquitto.

Each test starts Mosquitto with a copy of deploy/mosquitto/mosquitto.conf whose paths and
ports are adapted to a temporary directory (every other directive is the shipped one), the
shipped ACL, and a password file built by the shipped deploy/mosquitto/build-passwd.sh.
A message that must NOT arrive is shown absent by a later sentinel on an allowed topic:
the broker delivers one publisher's messages in order, so once the sentinel is in, the
forbidden message would have been too.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from termwatch.embedded import free_port, port_open

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"
WAIT_S = 10.0

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None,
    reason="mosquitto is not installed",
)

PASSWORDS = {
    "termwatch": "tw-secret-1",
    "crm": "crm-secret-1",
    "T-A": "terminal-a-pass",
    "T-B": "terminal-b-pass",
}


@dataclass(frozen=True, slots=True)
class Broker:
    terminal_port: int  # the listener published to terminals and the CRM
    internal_port: int  # the listener on the compose network, for termwatch's processes


def without_tls(lines: list[str]) -> list[str]:
    """The lines outside the TLS listener block (its certificates are tested on their own,
    in test_mqtt_tls.py)."""
    begin = next(i for i, line in enumerate(lines) if line.startswith("# BEGIN TLS listener"))
    end = next(i for i, line in enumerate(lines) if line.startswith("# END TLS listener"))
    return lines[:begin] + lines[end + 1 :]


def adapted_conf(workdir: Path, passwd: Path, terminal_port: int, internal_port: int) -> Path:
    """A copy of the shipped mosquitto.conf with local paths and ports; other lines as shipped.

    Raises AssertionError when a line the adaptation relies on is no longer in the file.
    """
    replacements = {
        "password_file /mosquitto/auth/passwd": f"password_file {passwd}",
        "password_file /mosquitto/auth/passwd-services": f"password_file {passwd}-services",
        "acl_file /mosquitto/config/acl": f"acl_file {DEPLOY / 'acl'}",
        "persistence_location /mosquitto/data/": f"persistence_location {workdir}/",
        "listener 1883": f"listener {terminal_port} 127.0.0.1",
        "listener 1884": f"listener {internal_port} 127.0.0.1",
    }
    lines = without_tls((DEPLOY / "mosquitto.conf").read_text(encoding="utf-8").splitlines())
    missing = set(replacements) - {line.strip() for line in lines}
    assert not missing, f"mosquitto.conf no longer has {sorted(missing)}"
    adapted = [replacements.get(line.strip(), line) for line in lines]
    # Mosquitto started as root drops to user "mosquitto", which cannot read a pytest
    # temporary directory; the container keeps the shipped behaviour.
    adapted.append("user root")
    conf = workdir / "mosquitto.conf"
    conf.write_text("\n".join(adapted) + "\n", encoding="utf-8")
    return conf


def build_passwd(workdir: Path, passwords: dict[str, str]) -> Path:
    """A password file built by the shipped tooling: service accounts + hashed terminals."""
    services = {"termwatch", "crm", "simulator"}
    terminals = workdir / "terminals.passwd"
    terminals.write_text(
        "".join(f"{u}:{p}\n" for u, p in passwords.items() if u not in services),
        encoding="utf-8",
    )
    subprocess.run(["mosquitto_passwd", "-U", str(terminals)], check=True)
    passwd = workdir / "passwd"
    env = {
        "PATH": os.environ["PATH"],
        "MQTT_TERMWATCH_PASSWORD": passwords["termwatch"],
        "MQTT_CRM_PASSWORD": passwords.get("crm", ""),
    }
    subprocess.run(
        ["sh", str(DEPLOY / "build-passwd.sh"), str(passwd), str(terminals)],
        check=True,
        env=env,
        capture_output=True,
    )
    return passwd


@dataclass
class RunningMosquitto:
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(WAIT_S)


def start_shipped_mosquitto(workdir: Path, passwd: Path) -> tuple[RunningMosquitto, Broker]:
    """Mosquitto on two free ports with the adapted shipped configuration.

    Raises AssertionError with Mosquitto's output when it exits or does not listen in time.
    """
    broker = Broker(free_port(), free_port())
    conf = adapted_conf(workdir, passwd, broker.terminal_port, broker.internal_port)
    log = workdir / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=out, stderr=out)
    running = RunningMosquitto(proc, log)
    deadline = time.monotonic() + WAIT_S
    while not (
        port_open("127.0.0.1", broker.terminal_port)
        and port_open("127.0.0.1", broker.internal_port)
    ):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                running.stop()
            raise AssertionError(f"mosquitto did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return running, broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    running, ports = start_shipped_mosquitto(tmp_path, build_passwd(tmp_path, PASSWORDS))
    try:
        yield ports
    finally:
        running.stop()


class Probe:
    """One MQTT client whose connects, subscriptions and publications are awaited."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None = None,
        client_id: str = "",
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.port = port
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connect_code: ReasonCode | None = None
        self._acks: dict[int, threading.Event] = {}
        self._codes: dict[int, list[ReasonCode]] = {}
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.on_subscribe = self._on_ack
        self.client.on_publish = self._on_publish

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, code: Any, props: Any
    ) -> None:
        self.connect_code = code
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, *args: Any) -> None:
        self.disconnected.set()

    def _on_ack(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        self._codes[mid] = list(codes)
        self._acks.setdefault(mid, threading.Event()).set()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, code: Any, props: Any
    ) -> None:
        self._on_ack(client, userdata, mid, [code], props)

    def connect(self) -> ReasonCode:
        """Connect and return the broker's CONNACK reason."""
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self.connected.wait(WAIT_S), "no CONNACK"
        assert self.connect_code is not None
        return self.connect_code

    def _await(self, mid: int) -> list[ReasonCode]:
        event = self._acks.setdefault(mid, threading.Event())
        assert event.wait(WAIT_S), f"no acknowledgement for message {mid}"
        return self._codes[mid]

    def subscribe(self, topic: str) -> ReasonCode:
        """Subscribe at QoS 1 and return the SUBACK reason."""
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        return self._await(mid)[0]

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK reason (MQTT 5: 'Not authorized' on denial)."""
        info = self.client.publish(topic, payload, qos=1)
        return self._await(info.mid)[0]

    def received_until(self, sentinel_topic: str) -> list[tuple[str, bytes]]:
        """Every message received up to and including the first one on ``sentinel_topic``."""
        got: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + WAIT_S
        while True:
            message = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            got.append((message.topic, bytes(message.payload)))
            if message.topic == sentinel_topic:
                return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    made: list[Probe] = []
    yield made
    for probe in made:
        probe.close()


def connected(probes: list[Probe], port: int, username: str, client_id: str = "") -> Probe:
    probe = Probe(port, username, PASSWORDS[username], client_id=client_id)
    probes.append(probe)
    assert probe.connect() == "Success"
    return probe


def test_a_terminal_cannot_publish_under_another_terminals_topic_while_termwatch_receives_its_own(
    broker: Broker, probes: list[Probe]
) -> None:
    termwatch = connected(probes, broker.internal_port, "termwatch")
    assert termwatch.subscribe("terminals/#") == "Granted QoS 1"
    terminal_a = connected(probes, broker.terminal_port, "T-A")

    assert terminal_a.publish("terminals/T-B/status", b"spoofed by A") == "Not authorized"
    assert terminal_a.publish("terminals/T-A/events", b"A's own event") == "Success"
    assert terminal_a.publish("terminals/T-A/heartbeat", b"sentinel") == "Success"

    got = termwatch.received_until("terminals/T-A/heartbeat")
    assert got == [
        ("terminals/T-A/events", b"A's own event"),
        ("terminals/T-A/heartbeat", b"sentinel"),
    ]


def test_a_terminal_reads_nothing_and_cannot_forge_complaints(
    broker: Broker, probes: list[Probe]
) -> None:
    termwatch = connected(probes, broker.internal_port, "termwatch")
    assert termwatch.subscribe("support/complaints") == "Granted QoS 1"
    assert termwatch.subscribe("terminals/T-B/#") == "Granted QoS 1"
    terminal_a = connected(probes, broker.terminal_port, "T-A")
    terminal_b = connected(probes, broker.terminal_port, "T-B")
    crm = connected(probes, broker.terminal_port, "crm")
    # Mosquitto 2.0 grants the subscriptions and applies the read ACL at delivery.
    terminal_a.subscribe("terminals/#")
    terminal_a.subscribe("support/complaints")

    assert terminal_a.publish("support/complaints", b"forged") == "Not authorized"
    assert crm.publish("support/complaints", b"from the CRM") == "Success"
    assert terminal_b.publish("terminals/T-B/heartbeat", b"sentinel") == "Success"
    got = termwatch.received_until("terminals/T-B/heartbeat")
    assert got == [
        ("support/complaints", b"from the CRM"),
        ("terminals/T-B/heartbeat", b"sentinel"),
    ]

    # The broker has routed both messages; a round trip on A's own connection comes back
    # after anything it had sent A before, so A's empty queue means nothing was sent.
    assert terminal_a.publish("terminals/T-A/heartbeat", b"round trip") == "Success"
    assert terminal_a.messages.empty()


def test_collectors_may_share_one_subscription_under_the_termwatch_account(
    broker: Broker, probes: list[Probe]
) -> None:
    first = connected(probes, broker.internal_port, "termwatch", client_id="collector-1")
    second = connected(probes, broker.internal_port, "termwatch", client_id="collector-2")
    both = first.messages
    second.messages = both  # one queue for what either session receives
    for collector in (first, second):
        assert collector.subscribe("$share/termwatch/terminals/#") == "Granted QoS 1"
    terminal_b = connected(probes, broker.terminal_port, "T-B")

    sent = {f"hb-{i}".encode() for i in range(20)}
    for payload in sorted(sent):
        assert terminal_b.publish("terminals/T-B/heartbeat", payload) == "Success"

    received: list[bytes] = []
    while set(received) != sent:
        received.append(bytes(both.get(timeout=WAIT_S).payload))
    assert set(received) == sent
    # Both sessions stay connected under the same account: each has a client id of its own.
    assert not first.disconnected.is_set()
    assert not second.disconnected.is_set()


def test_a_terminal_cannot_take_over_another_terminals_session_by_client_id(
    broker: Broker, probes: list[Probe]
) -> None:
    termwatch = connected(probes, broker.internal_port, "termwatch")
    assert termwatch.subscribe("terminals/#") == "Granted QoS 1"
    terminal_b = connected(probes, broker.terminal_port, "T-B", client_id="T-B")

    # A claims B's client id; the terminal listener replaces it with A's username.
    connected(probes, broker.terminal_port, "T-A", client_id="T-B")

    assert terminal_b.publish("terminals/T-B/heartbeat", b"still here") == "Success"
    assert termwatch.received_until("terminals/T-B/heartbeat") == [
        ("terminals/T-B/heartbeat", b"still here")
    ]
    assert not terminal_b.disconnected.is_set()


@pytest.mark.parametrize(
    ("username", "password"),
    [("T-A", "wrong-password"), ("T-Z", "no-such-terminal"), (None, None)],
    ids=["bad password", "unknown terminal", "anonymous"],
)
def test_it_refuses_clients_without_valid_credentials(
    broker: Broker, probes: list[Probe], username: str | None, password: str | None
) -> None:
    probe = Probe(broker.terminal_port, username, password)
    probes.append(probe)
    code = probe.connect()
    assert code.is_failure
    assert code in ("Not authorized", "Bad user name or password")


def test_a_terminal_can_publish_only_the_contracts_topics_under_its_own_id(
    broker: Broker, probes: list[Probe]
) -> None:
    termwatch = connected(probes, broker.internal_port, "termwatch")
    assert termwatch.subscribe("terminals/#") == "Granted QoS 1"
    terminal_a = connected(probes, broker.terminal_port, "T-A")
    for kind in ("status", "events", "operations", "heartbeat", "availability"):
        assert terminal_a.publish(f"terminals/T-A/{kind}", kind.encode()) == "Success"
    assert terminal_a.publish("terminals/T-A/" + "x" * 1000, b"junk") == "Not authorized"
    assert terminal_a.publish("terminals/T-A/status/more", b"junk") == "Not authorized"


AUTOSAVE_CHANGES = 50


def test_a_broker_sigkill_loses_at_most_the_changes_since_the_last_autosave(
    tmp_path: Path,
) -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    passwd = build_passwd(tmp_path, PASSWORDS)

    def collector_session(port: int) -> tuple[mqtt.Client, queue.Queue[bytes]]:
        got: queue.Queue[bytes] = queue.Queue()
        subscribed = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id="termwatch-collector-terminals",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.username_pw_set("termwatch", PASSWORDS["termwatch"])
        client.on_message = lambda _c, _u, m: got.put(bytes(m.payload))
        client.on_subscribe = lambda *_a: subscribed.set()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        client.connect("127.0.0.1", port, clean_start=False, properties=props)
        client.loop_start()
        client.subscribe("terminals/#", qos=1)
        assert subscribed.wait(WAIT_S)
        return client, got

    first, ports = start_shipped_mosquitto(tmp_path, passwd)
    try:
        collector, _ = collector_session(ports.internal_port)
        collector.disconnect()
        collector.loop_stop()
        terminal = Probe(ports.terminal_port, "T-A", PASSWORDS["T-A"])
        assert terminal.connect() == "Success"
        sent = [f"hb-{i}".encode() for i in range(300)]
        for payload in sent:
            assert terminal.publish("terminals/T-A/heartbeat", payload) == "Success"
        terminal.close()
    finally:
        first.proc.kill()
        first.proc.wait(WAIT_S)
    second, ports = start_shipped_mosquitto(tmp_path, passwd)
    try:
        collector, got = collector_session(ports.internal_port)
        received: list[bytes] = []
        try:
            while len(received) < len(sent):
                received.append(got.get(timeout=WAIT_S))
        except queue.Empty:
            pass
        collector.disconnect()
        collector.loop_stop()
    finally:
        second.stop()
    # The shipped config saves every 50 changes: at most the last 49 acknowledged messages
    # can be lost (with the former autosave_interval 60 seconds, all 300 were).
    missing = set(sent) - set(received)
    assert missing <= set(sent[-AUTOSAVE_CHANGES:]), f"{len(set(received))} of {len(sent)}"


def test_a_terminal_account_cannot_kick_the_collector_off_the_internal_listener(
    broker: Broker, probes: list[Probe]
) -> None:
    collector_id = "termwatch-collector-terminals"
    collector = connected(probes, broker.internal_port, "termwatch", client_id=collector_id)
    assert collector.subscribe("terminals/#") == "Granted QoS 1"

    intruder = Probe(broker.internal_port, "T-A", PASSWORDS["T-A"], client_id=collector_id)
    probes.append(intruder)
    assert intruder.connect() != "Success"
    # Nor on the terminals' listener: there the client id becomes the username.
    connected(probes, broker.terminal_port, "T-A", client_id=collector_id)

    terminal_b = connected(probes, broker.terminal_port, "T-B")
    assert terminal_b.publish("terminals/T-B/heartbeat", b"sentinel") == "Success"
    assert collector.received_until("terminals/T-B/heartbeat") == [
        ("terminals/T-B/heartbeat", b"sentinel")
    ]
    assert not collector.disconnected.is_set()
