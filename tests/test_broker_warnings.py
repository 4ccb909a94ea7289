"""A broker that cannot be reached or refuses the credentials is said at once, and again
while it lasts, by the collector's link (the one ``serve`` and ``collector`` run)."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import collector.mqtt
from collector.clock import EventClock
from collector.inbox import Inbox
from collector.mqtt import MqttSource
from termwatch.embedded import port_open
from termwatch.settings import Settings, parse_mqtt_url


class Warnings(logging.Handler):
    """The collector.mqtt warnings, with an event per count reached (nothing to poll)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.messages.append(record.getMessage())
            self._changed.notify_all()

    def wait_for(self, count: int, timeout_s: float) -> list[str]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.messages) >= count, timeout_s)
            return list(self.messages)


@pytest.fixture
def warnings() -> Iterator[Warnings]:
    handler = Warnings()
    logger = logging.getLogger("collector.mqtt")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def run_source(url: str) -> MqttSource:
    settings = Settings(mqtt_url=parse_mqtt_url(url, "TERMWATCH_MQTT_URL"), client_id="tw-warn")
    source = MqttSource(settings, Inbox(1000), EventClock(), complaints=False)
    source.start()
    return source


def test_an_unreachable_broker_is_warned_about_at_once_and_again(
    warnings: Warnings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector.mqtt, "BROKER_WARNING_EVERY_S", 1.0)
    port = free_port()
    source = run_source(f"mqtt://127.0.0.1:{port}")
    try:
        first = warnings.wait_for(1, timeout_s=5)
        assert first[0] == (
            f"the broker mqtt://127.0.0.1:{port} cannot be reached (Connection refused); retrying"
        )
        later = warnings.wait_for(2, timeout_s=10)
        assert len(later) >= 2
        assert later[1].startswith(f"the broker mqtt://127.0.0.1:{port} cannot be reached")
        assert later[1].endswith(" s; retrying")  # says for how long
    finally:
        source.stop()


@pytest.fixture
def broker_with_accounts(tmp_path: Path) -> Iterator[int]:
    """A Mosquitto on a free port that lets only the account collector:right in."""
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto and mosquitto_passwd are not installed")
    passwords = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "collector", "right"], check=True
    )
    passwords.chmod(0o600)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n"
        "persistence false\nuser root\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if port_open("127.0.0.1", port) or proc.poll() is not None:
                break
            threading.Event().wait(0.05)  # another process: nothing to wait on but its port
        assert proc.poll() is None, "mosquitto did not start"
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_broker_refusing_the_credentials_is_warned_about_with_what_to_check(
    warnings: Warnings, broker_with_accounts: int
) -> None:
    source = run_source(f"mqtt://collector:wrong@127.0.0.1:{broker_with_accounts}")
    try:
        (message, *_) = warnings.wait_for(1, timeout_s=10)
        assert message.startswith(
            f"the broker mqtt://collector:***@127.0.0.1:{broker_with_accounts}"
        )
        assert "refused the connection" in message
        assert message.endswith(
            "; check the user name and password in TERMWATCH_MQTT_URL; retrying"
        )
        assert "wrong" not in message
    finally:
        source.stop()


def test_the_right_credentials_connect_without_a_warning(
    warnings: Warnings, broker_with_accounts: int
) -> None:
    source = run_source(f"mqtt://collector:right@127.0.0.1:{broker_with_accounts}")
    try:
        assert source.subscribed.wait(10)
        assert warnings.messages == []
    finally:
        source.stop()
