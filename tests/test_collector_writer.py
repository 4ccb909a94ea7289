"""The writer on its own (no broker): batches from an inbox, commits, acknowledges, hooks."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from prometheus_client import REGISTRY

from collector import traffic
from collector.clock import EventClock
from collector.decode import Decoded, decode
from collector.hooks import StoredBatch
from collector.inbox import Inbox, Received
from collector.writer import Writer
from terminals.contract import encode
from termwatch.db import Row, connect
from termwatch.settings import Settings

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
WALL = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def received(settings: Settings, n: int, tid: str = "T-1") -> Received:
    payload = encode(traffic.heartbeat(tid, T0 + timedelta(seconds=n), f"h{n}"))
    result = decode(f"{settings.topic_root}/{tid}/heartbeat", payload, settings.topic_root, WALL)
    assert isinstance(result, Decoded)
    return Received(result, mid=n + 1, qos=1, generation=1, payload=payload)


class Acks:
    """Records acknowledgements, and what the database held when each came."""

    def __init__(self, dsn: str) -> None:
        self.mids: list[int] = []
        self.stored_then: list[int] = []
        self._dsn = dsn
        self.done = threading.Condition()

    def __call__(self, items: Sequence[Received]) -> int:
        with connect(self._dsn) as conn:
            row = conn.execute("SELECT count(*) AS n FROM heartbeats").fetchone()
        assert row is not None
        with self.done:
            self.mids.extend(i.mid for i in items)
            self.stored_then.append(int(row["n"]))
            self.done.notify_all()
        return len(items)


class Failing:
    def __init__(self) -> None:
        self.calls = 0

    def after_commit(self, batch: StoredBatch) -> None:
        self.calls += 1
        raise RuntimeError("rule bug")

    def tick(self, now: datetime) -> None:
        raise RuntimeError("rule bug")


@pytest.fixture
def inbox() -> Inbox:
    return Inbox(1000)


@pytest.fixture
def acks(clean_db: str) -> Acks:
    return Acks(clean_db)


def run_writer(settings: Settings, inbox: Inbox, acks: Acks, **kw: object) -> Iterator[Writer]:
    writer = Writer(settings, inbox, acks, EventClock(), **kw)  # type: ignore[arg-type]
    writer.start()
    try:
        yield writer
    finally:
        assert writer.stop(10)


def test_it_acknowledges_a_batch_only_once_it_is_committed(
    settings: Settings, inbox: Inbox, acks: Acks
) -> None:
    for writer in run_writer(settings, inbox, acks):
        for n in range(5):
            inbox.put(received(settings, n))
        assert writer.wait_processed(5, 10)
    assert sorted(acks.mids) == [1, 2, 3, 4, 5]
    assert acks.stored_then[-1] == 5  # visible to another connection when acknowledged


def test_it_keeps_a_message_the_database_refuses_as_rejected_and_stores_the_rest(
    settings: Settings, inbox: Inbox, acks: Acks, db: psycopg.Connection[Row]
) -> None:
    # A value no JSON payload can carry past decode(), built directly: the database's
    # refusal is the last line of defence.
    message = traffic.heartbeat("T-1", T0, "h99", app="kiosk\x00")
    topic = f"{settings.topic_root}/T-1/heartbeat"
    bad = Received(
        Decoded("heartbeat", topic, "T-1", message, message.ts), 100, 1, 1, encode(message)
    )
    before = (
        REGISTRY.get_sample_value("termwatch_rejected_messages_total", {"reason": "unstorable"})
        or 0.0
    )
    for writer in run_writer(settings, inbox, acks):
        for n in range(3):
            inbox.put(received(settings, n))
        inbox.put(bad)
        for n in range(3, 6):
            inbox.put(received(settings, n))
        assert writer.wait_processed(7, 10)
    assert sorted(acks.mids) == [1, 2, 3, 4, 5, 6, 100]
    assert db.execute("SELECT count(*) AS n FROM heartbeats").fetchone() == {"n": 6}
    row = db.execute("SELECT kind, tid, reason, payload_head FROM rejected_messages").fetchone()
    assert row is not None
    assert (row["kind"], row["tid"]) == ("heartbeat", "T-1")
    assert row["reason"].startswith("unstorable: ")
    assert bytes(row["payload_head"]) == bad.payload[:256]
    after = REGISTRY.get_sample_value("termwatch_rejected_messages_total", {"reason": "unstorable"})
    assert after == before + 1


def test_a_failing_hook_is_counted_and_storage_goes_on(
    settings: Settings, inbox: Inbox, acks: Acks, db: psycopg.Connection[Row]
) -> None:
    hook = Failing()
    labels = {"hook": "Failing"}
    before = REGISTRY.get_sample_value("termwatch_hook_errors_total", labels) or 0.0
    for writer in run_writer(settings, inbox, acks, hooks=[hook]):
        inbox.put(received(settings, 1))
        assert writer.wait_processed(1, 10)
        inbox.put(received(settings, 2))
        assert writer.wait_processed(2, 10)
    assert hook.calls == 2
    assert (REGISTRY.get_sample_value("termwatch_hook_errors_total", labels) or 0) >= before + 2
    assert db.execute("SELECT count(*) AS n FROM heartbeats").fetchone() == {"n": 2}


def test_it_hands_hooks_only_what_was_new(settings: Settings, inbox: Inbox, acks: Acks) -> None:
    batches: list[StoredBatch] = []

    class Keep:
        def after_commit(self, batch: StoredBatch) -> None:
            batches.append(batch)

        def tick(self, now: datetime) -> None:
            pass

    for writer in run_writer(settings, inbox, acks, hooks=[Keep()]):
        inbox.put(received(settings, 1))
        assert writer.wait_processed(1, 10)
        inbox.put(received(settings, 1))
        inbox.put(received(settings, 2))
        assert writer.wait_processed(3, 10)
    assert [h.id for b in batches for h in b.heartbeats] == ["h1", "h2"]
    assert all(b.now is not None for b in batches)


def test_the_inbox_holds_a_producer_back_when_full_and_drops_nothing(settings: Settings) -> None:
    inbox = Inbox(2)
    inbox.put(received(settings, 1))
    inbox.put(received(settings, 2))
    done = threading.Event()

    def produce() -> None:
        inbox.put(received(settings, 3))
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert not done.wait(0.2)  # blocked, not dropped
    first = inbox.take(1, 0.0, 1.0)
    assert done.wait(5)
    producer.join()
    rest = inbox.take(10, 0.0, 1.0)
    assert [r.mid for r in first + rest] == [2, 3, 4]


def test_the_inbox_returns_a_batch_at_its_size_or_after_the_linger(settings: Settings) -> None:
    inbox = Inbox(100)
    for n in range(5):
        inbox.put(received(settings, n))
    assert len(inbox.take(3, 10.0, 1.0)) == 3  # full batch: no linger
    assert len(inbox.take(3, 0.01, 1.0)) == 2  # the rest, once the linger ran out
    assert inbox.take(3, 0.01, 0.01) == []
