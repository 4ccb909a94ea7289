"""Shared fixtures: the real database and broker, and settings pointing at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rules.engine import RuleEngine
from termwatch.settings import MqttUrl, Settings
from tests.fix_db import clean_db, db, db_dsn, empty_database, pg_server_dsn
from tests.fix_linkproxy import link_proxy
from tests.fix_mqtt import mqtt_url, topic_root
from tests.served_api import client, served

__all__ = [
    "clean_db",
    "client",
    "db",
    "db_dsn",
    "empty_database",
    "link_proxy",
    "mqtt_url",
    "pg_server_dsn",
    "served",
    "topic_root",
]


@pytest.fixture
def settings(clean_db: str, mqtt_url: MqttUrl, topic_root: str) -> Settings:
    """Settings for one test: its own empty database state and its own topic root."""
    return Settings(
        database_url=clean_db,
        mqtt_url=mqtt_url,
        topic_root=topic_root,
        pii_key="test-pii-key-0123456789",
        flush_ms=10,
    )


@pytest.fixture
def engine(settings: Settings, clean_db: str) -> Iterator[RuleEngine]:
    """A rule engine on the test's database, with the default rules."""
    engine = RuleEngine(settings, clean_db)
    yield engine
    engine.close()
