"""Rules exactly once per stored message across a real database cut of the engine's link."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg

from collector import traffic
from collector.clock import EventClock
from collector.decode import Decoded, decode
from collector.hooks import StoredBatch
from collector.inbox import Inbox, Received
from collector.writer import Writer
from rules.engine import RuleEngine
from terminals.contract import Status, encode
from termwatch.db import Row
from termwatch.settings import Settings

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


class Judged:
    """Runs after the engine (hooks are called in order): tells the test a batch was judged."""

    def __init__(self) -> None:
        self.count = 0
        self.done = threading.Condition()

    def after_commit(self, batch: StoredBatch) -> None:
        with self.done:
            self.count += 1
            self.done.notify_all()

    def tick(self, now: datetime) -> None:
        pass

    def wait(self, count: int) -> bool:
        with self.done:
            return self.done.wait_for(lambda: self.count >= count, 10)


def item(settings: Settings, message: Status, mid: int) -> Received:
    payload = encode(message)
    topic = f"{settings.topic_root}/{message.tid}/status"
    result = decode(topic, payload, settings.topic_root, message.ts + timedelta(seconds=1))
    assert isinstance(result, Decoded)
    return Received(result, mid=mid, qos=1, generation=1, payload=payload)


def test_a_batch_whose_rules_lost_the_database_is_judged(
    settings: Settings, engine: RuleEngine, db: psycopg.Connection[Row]
) -> None:
    inbox, judged = Inbox(100), Judged()
    writer = Writer(settings, inbox, lambda items: len(items), EventClock(), hooks=[engine, judged])
    writer.start()
    try:
        inbox.put(item(settings, traffic.status("T-1", T0, "s1"), 1))
        assert judged.wait(1)
        conn = engine._conn
        assert conn is not None
        row = db.execute(
            "SELECT pg_terminate_backend(%s) AS ok", (conn.info.backend_pid,)
        ).fetchone()
        assert row == {"ok": True}
        inbox.put(
            item(settings, traffic.status("T-1", T0 + timedelta(seconds=5), "s2", paper="out"), 2)
        )
        assert judged.wait(2)
    finally:
        assert writer.stop(10)
    rows = db.execute("SELECT tid, kind, status FROM incidents").fetchall()
    assert [(r["tid"], r["kind"], r["status"]) for r in rows] == [
        ("T-1", "printer_paper_out", "open")
    ]
