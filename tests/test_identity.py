"""One id, one message; one op_id, one operation: whatever the ``ts`` a resend carries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from collector import traffic
from collector.clock import EventClock
from collector.decode import Decoded, decode
from collector.hooks import StoredBatch
from collector.inbox import Inbox, Received
from collector.writer import Writer
from terminals.contract import Heartbeat, Operation, encode
from termwatch.db import Row
from termwatch.settings import Settings

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
WALL = datetime(2026, 5, 4, 10, 5, tzinfo=UTC)


class Keep:
    def __init__(self) -> None:
        self.batches: list[StoredBatch] = []

    def after_commit(self, batch: StoredBatch) -> None:
        self.batches.append(batch)

    def tick(self, now: datetime) -> None:
        pass


def item(settings: Settings, kind: str, message: Heartbeat | Operation, mid: int) -> Received:
    payload = encode(message)
    topic = f"{settings.topic_root}/{message.tid}/{kind}"
    result = decode(topic, payload, settings.topic_root, WALL)
    assert isinstance(result, Decoded), result
    return Received(result, mid=mid, qos=1, generation=1, payload=payload)


@pytest.fixture
def writer(settings: Settings) -> Iterator[tuple[Writer, Inbox, Keep]]:
    inbox, keep = Inbox(100), Keep()
    writer = Writer(settings, inbox, lambda items: len(items), EventClock(), hooks=[keep])
    writer.start()
    try:
        yield writer, inbox, keep
    finally:
        assert writer.stop(10)


def test_a_heartbeat_resent_with_another_ts_is_stored_once(
    settings: Settings, writer: tuple[Writer, Inbox, Keep], db: psycopg.Connection[Row]
) -> None:
    w, inbox, keep = writer
    inbox.put(item(settings, "heartbeat", traffic.heartbeat("T-1", T0, "h1"), 1))
    assert w.wait_processed(1, 10)
    # A later batch, and one batch carrying the id twice: never a second row.
    later = T0 + timedelta(seconds=7)
    inbox.put(item(settings, "heartbeat", traffic.heartbeat("T-1", later, "h1"), 2))
    assert w.wait_processed(2, 10)
    inbox.put(item(settings, "heartbeat", traffic.heartbeat("T-1", later, "h2"), 3))
    inbox.put(item(settings, "heartbeat", traffic.heartbeat("T-1", T0, "h2"), 4))
    assert w.wait_processed(4, 10)
    rows = db.execute("SELECT msg_id, ts FROM heartbeats ORDER BY msg_id").fetchall()
    assert [(r["msg_id"], r["ts"]) for r in rows] == [("h1", T0), ("h2", later)]
    assert [h.id for b in keep.batches for h in b.heartbeats] == ["h1", "h2"]


def test_an_operation_is_one_operation_by_op_id(
    settings: Settings, writer: tuple[Writer, Inbox, Keep], db: psycopg.Connection[Row]
) -> None:
    w, inbox, keep = writer
    first = traffic.operation("T-1", T0, "m1", op_id="OP-1")
    inbox.put(item(settings, "operations", first, 1))
    assert w.wait_processed(1, 10)
    # The same id with a new ts, and the same operation under a new id and ts.
    again = traffic.operation("T-1", T0 + timedelta(seconds=3), "m1", op_id="OP-1")
    renamed = traffic.operation("T-1", T0 + timedelta(seconds=9), "m2", op_id="OP-1")
    inbox.put(item(settings, "operations", again, 2))
    inbox.put(item(settings, "operations", renamed, 3))
    assert w.wait_processed(3, 10)
    rows = db.execute("SELECT op_id, msg_id, ts FROM operations").fetchall()
    assert [(r["op_id"], r["msg_id"], r["ts"]) for r in rows] == [("OP-1", "m1", T0)]
    assert [o.id for b in keep.batches for o in b.operations] == ["m1"]
