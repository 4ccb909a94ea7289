"""The collector through a database that fails: black-holed, refused, cut. Nothing is lost,
everything is stored soon after the database answers again, and no one restarts anything.

The database is reached through :mod:`tests.fix_proxy`; the timeouts are set short so the
tests stay bounded (the defaults are in termwatch/db.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import REGISTRY
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.servers import Broker, mosquitto
from collector import traffic
from collector.service import Collector
from termwatch.db import Row
from termwatch.settings import Settings
from tests.fix_proxy import Proxy, proxy

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
MESSAGES = 3000
#: Everything must be stored within this many seconds of the database answering again.
RECOVERY_S = 60.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with mosquitto(tmp_path) as running:
        yield running


@pytest.fixture
def pg_proxy(clean_db: str) -> Iterator[Proxy]:
    params = conninfo_to_dict(clean_db)
    with proxy(str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)) as p:
        yield p


def through(dsn: str, p: Proxy) -> str:
    params = conninfo_to_dict(dsn)
    params.update(host=p.host, port=str(p.port))
    return make_conninfo(**params)  # type: ignore[arg-type]


def gauge(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    assert value is not None, name
    return value


def stored(db: psycopg.Connection[Row]) -> int:
    row = db.execute(
        "SELECT count(DISTINCT (tid, msg_id)) AS n FROM (SELECT tid, msg_id FROM heartbeats"
        " UNION ALL SELECT tid, msg_id FROM operations UNION ALL SELECT tid, msg_id FROM events"
        " UNION ALL SELECT tid, msg_id FROM status_snapshots) AS m"
    ).fetchone()
    assert row is not None
    return int(row["n"])


def publish_all(broker: Broker, messages: list[tuple[str, bytes]]) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="faults-publisher")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(broker.url.host, broker.url.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def faulty_collector(settings: Settings, broker: Broker, p: Proxy) -> Collector:
    assert settings.database_url is not None
    local = settings.with_(
        database_url=through(settings.database_url, p),
        mqtt_url=broker.url,
        client_id=f"faults-{settings.topic_root}",
        db_connect_timeout_s=1,
        db_statement_timeout_ms=1000,
        db_idle_in_transaction_timeout_ms=2000,
        batch_size=200,
    )
    return Collector(local)


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def messages(root: str) -> list[tuple[str, bytes]]:
    stream = traffic.FleetTraffic(root, 50, T0, seed=3)
    return [next(stream) for _ in range(MESSAGES)]


def run_through_fault(
    settings: Settings,
    broker: Broker,
    p: Proxy,
    db: psycopg.Connection[Row],
    fault: Callable[[], None],
    caplog: pytest.LogCaptureFixture,
    fault_s: float = 8.0,
) -> None:
    """Publish half, fault while publishing the rest, heal, and count."""
    caplog.set_level(logging.INFO, logger="collector.writer")
    batch = messages(settings.topic_root)
    collector = faulty_collector(settings, broker, p)
    collector.start()
    try:
        assert collector.wait_ready(20)
        publish_all(broker, batch[: MESSAGES // 2])
        assert collector.wait_processed(MESSAGES // 2, 30)
        fault()
        publish_all(broker, batch[MESSAGES // 2 :])
        time.sleep(fault_s)  # the outage itself: nothing to wait for but time
        assert stored(db) < MESSAGES, "the fault did not stop storage"
        # The outage shows in the metrics while it lasts, not once per batch.
        assert wait_until(lambda: gauge("termwatch_queue_depth") >= MESSAGES // 2, 10)
        assert wait_until(lambda: gauge("termwatch_database_up") == 0, 10)
        assert gauge("termwatch_oldest_unacknowledged_seconds") >= 1
        assert not collector.writer.healthy(stall_s=1)
        p.pass_()
        healed = time.monotonic()
        assert collector.wait_processed(MESSAGES, RECOVERY_S), (
            f"stored {stored(db)} of {MESSAGES} in {RECOVERY_S:.0f} s after the database was back"
        )
        assert time.monotonic() - healed < RECOVERY_S
        assert gauge("termwatch_database_up") == 1
        assert gauge("termwatch_queue_depth") == 0
        assert gauge("termwatch_oldest_unacknowledged_seconds") == 0
    finally:
        collector.stop(10)
    assert stored(db) == MESSAGES
    writer_lines = [r.getMessage() for r in caplog.records if r.name == "collector.writer"]
    assert sum("database unavailable" in line for line in writer_lines) == 1, writer_lines
    assert sum("database is back" in line for line in writer_lines) == 1, writer_lines


@pytest.mark.faults
def test_a_black_holed_database_loses_nothing_and_ingest_resumes_by_itself(
    settings: Settings,
    broker: Broker,
    pg_proxy: Proxy,
    db: psycopg.Connection[Row],
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_through_fault(settings, broker, pg_proxy, db, pg_proxy.blackhole, caplog)
    # The server ended the session left idle in its transaction: no lock is held by it.
    assert wait_until(
        lambda: (
            (
                db.execute(
                    "SELECT count(*) AS n FROM pg_stat_activity"
                    " WHERE datname = current_database() AND state = 'idle in transaction'"
                ).fetchone()
                or {"n": 1}
            )["n"]
            == 0
        ),
        10,
    )


@pytest.mark.faults
def test_a_refused_database_loses_nothing(
    settings: Settings,
    broker: Broker,
    pg_proxy: Proxy,
    db: psycopg.Connection[Row],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse() -> None:
        pg_proxy.refuse()
        pg_proxy.cut()

    run_through_fault(settings, broker, pg_proxy, db, refuse, caplog, fault_s=4.0)
