"""Broker fixtures: the real Mosquitto, with a topic root of its own for every test.

The broker is ``TERMWATCH_TEST_MQTT_URL``, else the local one on 127.0.0.1:1883, else a
Mosquitto started for the session on a free port (when installed), else an embedded broker.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from termwatch.settings import MqttUrl, parse_mqtt_url


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def mqtt_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MqttUrl]:
    configured = os.environ.get("TERMWATCH_TEST_MQTT_URL")
    if configured:
        yield parse_mqtt_url(configured, "TERMWATCH_TEST_MQTT_URL")
        return
    if _port_open("127.0.0.1", 1883):
        yield MqttUrl("127.0.0.1", 1883)
        return
    from termwatch.embedded import EmbeddedBroker

    broker = EmbeddedBroker(Path(tmp_path_factory.mktemp("broker")))
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()


@pytest.fixture
def topic_root() -> str:
    """A topic root no other test uses, so tests sharing a broker do not see each other."""
    return f"tw-{secrets.token_hex(4)}"
