"""A poison message costs one message: values PostgreSQL would refuse are rejected by the
decoder with their reason, before the batch, and the valid traffic beside them is stored."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import REGISTRY

from bench.servers import Broker, mosquitto
from collector.decode import INVALID_VALUE, MALFORMED_JSON, Rejected, decode
from collector.service import Collector
from collector.writer import RateLimitedLog
from termwatch.db import Row
from termwatch.settings import Settings

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
POISON = ("1e999999", "-1e999999", "1e-999999", '"\\ud800"', "1e400")


def status(tid: str, msg_id: str, extra: str, seq: int = 1) -> bytes:
    body = {
        "v": 1,
        "tid": tid,
        "id": msg_id,
        "ts": (T0 + timedelta(milliseconds=seq)).isoformat(),
        "seq": seq,
        "devices": {"printer": {"state": "ok"}, "acme": {"deep": ["X"]}},
    }
    return json.dumps(body).replace('"X"', extra).encode()


@pytest.mark.parametrize("value", POISON)
def test_the_decoder_rejects_a_value_postgresql_cannot_store_in_any_nested_field(
    value: str,
) -> None:
    result = decode("r/T-1/status", status("T-1", "m1", value), "r", NOW)
    assert isinstance(result, Rejected)
    assert result.reason in (INVALID_VALUE, MALFORMED_JSON)


def test_the_decoder_still_takes_ordinary_numbers() -> None:
    result = decode("r/T-1/status", status("T-1", "m1", "1.5e3"), "r", NOW)
    assert not isinstance(result, Rejected)


def test_reject_lines_are_rate_limited_and_say_how_many_were_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.ratelimit")
    limited = RateLimitedLog(logger, 10.0)
    with caplog.at_level(logging.WARNING, logger="test.ratelimit"):
        logged = [limited.warn("bad row", now=100.0 + i * 0.1) for i in range(50)]
        assert limited.warn("bad row", now=111.0)
    assert logged.count(True) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "bad row",
        "bad row (and 49 more since the last line)",
    ]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto(tmp_path) as running:
        yield running


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("termwatch_rejected_messages_total", {"reason": reason}) or 0


def test_one_terminal_sending_poison_beside_the_fleet_costs_only_its_own_messages(
    settings: Settings, broker: Broker, db: psycopg.Connection[Row]
) -> None:
    root = settings.topic_root
    valid = [
        (f"{root}/T-{i % 50}/status", status(f"T-{i % 50}", f"ok-{i}", '"fine"', seq=i + 1))
        for i in range(2500)
    ]
    poison = [
        (f"{root}/B-1/status", status("B-1", f"bad-{i}", POISON[i % len(POISON)], seq=i + 1))
        for i in range(250)
    ]
    mixed = [m for pair in zip(valid[::10], poison, strict=True) for m in pair]
    traffic = [*mixed, *[m for i, m in enumerate(valid) if i % 10]]
    unstorable = rejected("unstorable")
    kept_per_minute = 100
    collector = Collector(
        settings.with_(
            mqtt_url=broker.url,
            client_id=f"poison-{root}",
            rejected_per_terminal_per_min=kept_per_minute,
        )
    )
    invalid = rejected("invalid_value") + rejected("malformed_json")
    collector.start()
    client = paho.Client(CallbackAPIVersion.VERSION2)
    try:
        assert collector.wait_ready(10)
        client.max_inflight_messages_set(1000)
        client.connect(broker.url.host, broker.url.port)
        client.loop_start()
        infos = [client.publish(topic, payload, qos=1) for topic, payload in traffic]
        for info in infos:
            info.wait_for_publish(30)
        assert collector.wait_processed(len(traffic), 60)
    finally:
        client.disconnect()
        client.loop_stop()
        collector.stop()
    row = db.execute("SELECT count(*) AS n FROM status_snapshots").fetchone()
    assert row is not None
    assert row["n"] == len(valid)
    row = db.execute("SELECT count(*) AS n FROM rejected_messages WHERE tid = 'B-1'").fetchone()
    assert row is not None
    # Kept up to the terminal's budget (the test runs within a minute or two of wall time),
    # while the metric counts every one.
    assert kept_per_minute <= row["n"] <= 2 * kept_per_minute
    assert rejected("invalid_value") + rejected("malformed_json") - invalid == len(poison)
    # Refused by the decoder with a reason, never sent to the database to be refused there.
    assert rejected("unstorable") == unstorable


def test_rejects_with_60_kb_topics_cost_at_most_2_kb_each_and_old_ones_are_pruned(
    db: psycopg.Connection[Row],
) -> None:
    from collector import store

    long_topic = "terminals/B-0001/" + secrets.token_hex(30_000)  # incompressible
    result = decode(long_topic, b"{}", "terminals", NOW)
    assert isinstance(result, Rejected)
    with db.transaction():
        store.insert_rejected(db, [result] * 2000)
    row = db.execute(
        "SELECT max(pg_column_size(r.*)) AS biggest, count(*) AS n FROM rejected_messages r"
    ).fetchone()
    assert row is not None
    assert row["n"] == 2000
    assert row["biggest"] <= 2048
    db.execute("UPDATE rejected_messages SET received_at = now() - interval '20 days'")
    with db.transaction():
        assert store.prune_rejected(db, datetime.now(UTC) - timedelta(days=14)) == 2000
