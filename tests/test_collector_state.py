"""Current state and missing heartbeats, written in one transaction per batch, against the
real database (the collector's state module called directly, as the writer calls it)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from collector import liveness, state, store, traffic
from collector.decode import Decoded, decode
from collector.statecache import StateCache
from terminals.contract import encode
from termwatch.db import Row, connect

ROOT = "terminals"
T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
WALL = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def msg(kind: str, message: Any, tid: str = "T-1") -> Decoded:
    result = decode(f"{ROOT}/{tid}/{kind}", encode(message), ROOT, WALL)
    assert isinstance(result, Decoded), result
    return result


def word(state_word: str, ts: datetime, tid: str = "T-1") -> Decoded:
    result = decode(f"{ROOT}/{tid}/availability", state_word.encode(), ROOT, WALL, clock_now=ts)
    assert isinstance(result, Decoded)
    return result


def status(ts: datetime, msg_id: str, tid: str = "T-1", **fields: Any) -> Decoded:
    return msg("status", traffic.status(tid, ts, msg_id, **fields), tid)


def event(
    ts: datetime, msg_id: str, name: str, payload: dict[str, Any], tid: str = "T-1"
) -> Decoded:
    return msg("events", traffic.event(tid, ts, msg_id, name, payload), tid)


def heartbeat(ts: datetime, msg_id: str, tid: str = "T-1", **kw: Any) -> Decoded:
    return msg("heartbeat", traffic.heartbeat(tid, ts, msg_id, **kw), tid)


@pytest.fixture
def conn(clean_db: str) -> Iterator[psycopg.Connection[Row]]:
    """A connection prepared as the writer prepares its own."""
    with connect(clean_db, autocommit=True) as c:
        store.prepare(c)
        state.prepare(c)
        yield c


def apply(
    conn: psycopg.Connection[Row], messages: Sequence[Decoded], cache: StateCache | None = None
) -> state.StateResult:
    with conn.transaction():
        result = state.apply(conn, messages, WALL, cache)
    if cache is not None:
        cache.update(result.written)
    return result


def field(db: psycopg.Connection[Row], name: str, tid: str = "T-1") -> dict[str, Any]:
    device, _, key = name.partition(".")
    row = db.execute(
        "SELECT value, since, ts FROM device_state WHERE tid = %s AND device = %s AND field = %s",
        (tid, device, key),
    ).fetchone()
    assert row is not None, name
    return row


def log(db: psycopg.Connection[Row], name: str, tid: str = "T-1") -> list[tuple[str, datetime]]:
    device, _, key = name.partition(".")
    rows = db.execute(
        "SELECT value, ts FROM device_state_log WHERE tid = %s AND device = %s AND field = %s"
        " ORDER BY ts",
        (tid, device, key),
    ).fetchall()
    return [(r["value"], r["ts"]) for r in rows]


def terminal(db: psycopg.Connection[Row], tid: str = "T-1") -> dict[str, Any]:
    row = db.execute("SELECT * FROM terminal_state WHERE tid = %s", (tid,)).fetchone()
    assert row is not None
    return row


def test_it_records_since_as_the_time_a_field_entered_its_value(
    conn: psycopg.Connection[Row], db: psycopg.Connection[Row]
) -> None:
    apply(conn, [status(at(0), "s1", paper="full")])
    apply(conn, [status(at(10), "s2", paper="full")])
    apply(conn, [status(at(20), "s3", paper="low")])
    assert field(db, "printer.paper")["value"] == "low"
    assert field(db, "printer.paper")["since"] == at(20)
    assert field(db, "printer.device")["since"] == at(0)
    assert log(db, "printer.paper") == [("full", at(0)), ("low", at(20))]
    assert terminal(db)["status_ts"] == at(20)


def test_it_never_rolls_a_field_back_with_an_older_snapshot(
    conn: psycopg.Connection[Row], db: psycopg.Connection[Row]
) -> None:
    apply(conn, [status(at(10), "s2", paper="low")])
    apply(conn, [status(at(5), "s1", paper="out")])
    apply(conn, [event(at(7), "e1", "Printer.PaperThresholdEvent", {"threshold": "out"})])
    assert field(db, "printer.paper") == {"value": "low", "since": at(10), "ts": at(10)}
    assert log(db, "printer.paper") == [("low", at(10))]
    assert terminal(db)["status_ts"] == at(10)
    assert terminal(db)["last_seen"] == at(10)


def test_it_applies_several_updates_of_one_field_in_a_batch_in_time_order(
    conn: psycopg.Connection[Row], db: psycopg.Connection[Row]
) -> None:
    apply(
        conn,
        [
            event(at(30), "e3", "Printer.PaperThresholdEvent", {"threshold": "out"}),
            status(at(10), "s1", paper="full"),
            event(at(20), "e2", "Printer.PaperThresholdEvent", {"threshold": "low"}),
        ],
    )
    assert field(db, "printer.paper") == {"value": "out", "since": at(30), "ts": at(30)}
    assert log(db, "printer.paper") == [("full", at(10)), ("low", at(20)), ("out", at(30))]


def test_it_takes_partial_changes_from_events_newer_than_the_last_snapshot(
    conn: psycopg.Connection[Row], db: psycopg.Connection[Row]
) -> None:
    apply(conn, [status(at(0), "s1")])
    apply(
        conn,
        [
            event(
                at(5),
                "e1",
                "Common.StatusChangedEvent",
                {"devices": {"cashAcceptor": {"transport": "inoperative"}}},
            ),
            event(
                at(6),
                "e2",
                "CashManagement.ShutterStatusChangedEvent",
                {"position": "center", "shutter": "jammedOpen"},
            ),
            event(
                at(7),
                "e3",
                "Storage.StorageThresholdEvent",
                {"unit": "stacker", "replenishment": "full"},
            ),
            event(at(8), "e4", "Printer.TonerThresholdEvent", {"state": "low"}),
        ],
    )
    assert field(db, "cashAcceptor.transport")["value"] == "inoperative"
    assert field(db, "cashAcceptor.shutter") == {"value": "jammedOpen", "since": at(6), "ts": at(6)}
    assert field(db, "cashAcceptor.stacker.replenishment")["value"] == "full"
    assert field(db, "printer.toner")["value"] == "low"
    assert field(db, "printer.paper")["value"] == "full"  # missing from the events: unchanged


def test_it_reads_back_state_another_writer_changed_instead_of_trusting_its_cache(
    conn: psycopg.Connection[Row], db: psycopg.Connection[Row]
) -> None:
    cache = StateCache()
    apply(conn, [status(at(0), "s1", paper="low")], cache)
    with db.transaction():  # what a second collector would do
        db.execute(
            "UPDATE device_state SET value = 'out', since = %s, ts = %s"
            " WHERE tid = 'T-1' AND device = 'printer' AND field = 'paper'",
            (at(5), at(5)),
        )
        db.execute("UPDATE terminal_state SET status_ts = %s WHERE tid = 'T-1'", (at(5),))
    apply(conn, [status(at(10), "s2", paper="out")], cache)
    assert field(db, "printer.paper") == {"value": "out", "since": at(5), "ts": at(5)}
    assert log(db, "printer.paper") == [("low", at(0))]


def test_it_keeps_heartbeat_interval_application_and_sequence_gaps(
    conn: psycopg.Connection[Row], db: psycopg.Connection[Row]
) -> None:
    apply(conn, [heartbeat(at(0), "h1", seq=1, interval_s=30, app="kiosk 2.3.1")])
    apply(conn, [heartbeat(at(30), "h2", seq=2), heartbeat(at(60), "h5", seq=5)])
    apply(conn, [heartbeat(at(45), "h3", seq=3, interval_s=90)])  # late: no gap closed
    apply(
        conn,
        [event(at(70), "b1", "Terminal.Boot", {"app": "kiosk 2.4.0", "reason": "update"})],
    )
    row = terminal(db)
    assert row["first_seen"] == at(0)
    assert row["last_seen"] == at(70)
    assert row["last_heartbeat_at"] == at(60)
    assert row["heartbeat_interval_s"] == 60
    assert (row["last_seq"], row["seq_gaps"]) == (5, 2)
    assert row["app"] == "kiosk 2.4.0"


def test_it_keeps_service_mode_and_the_engineer_on_site(
    conn: psycopg.Connection[Row], db: psycopg.Connection[Row]
) -> None:
    entered = {"state": "entered", "engineer": "Petrov"}
    apply(conn, [event(at(0), "m1", "Terminal.ServiceMode", entered)])
    row = terminal(db)
    assert (row["service_mode"], row["service_mode_since"], row["engineer"]) == (
        True,
        at(0),
        "Petrov",
    )
    apply(conn, [event(at(600), "m2", "Terminal.ServiceMode", {"state": "left"})])
    row = terminal(db)
    assert (row["service_mode"], row["service_mode_since"], row["engineer"]) == (
        False,
        at(600),
        None,
    )


def test_it_turns_availability_words_into_changes_and_repeats_into_duplicates(
    conn: psycopg.Connection[Row], db: psycopg.Connection[Row]
) -> None:
    first = apply(conn, [heartbeat(at(0), "h1"), word("offline", at(5))])
    assert first.changed_words == {1}
    assert [(c.state, c.source) for c in first.availability] == [("offline", "availability")]
    repeat = apply(conn, [word("offline", at(6))])
    assert repeat.changed_words == set()
    back = apply(conn, [word("online", at(9))])
    assert back.changed_words == {0}
    row = terminal(db)
    assert (row["online"], row["online_changed_at"], row["offline_reason"]) == (True, at(9), None)
    rows = db.execute("SELECT ts, state, source FROM availability_log ORDER BY ts").fetchall()
    assert [(r["ts"], r["state"], r["source"]) for r in rows] == [
        (at(5), "offline", "availability"),
        (at(9), "online", "availability"),
    ]


def test_it_marks_a_silent_terminal_offline_and_back_online_when_telemetry_resumes(
    conn: psycopg.Connection[Row], db: psycopg.Connection[Row]
) -> None:
    apply(conn, [heartbeat(at(0), "h1", tid="T-1", interval_s=60)])
    apply(conn, [heartbeat(at(100), "h1", tid="T-2", interval_s=60)])
    assert liveness.mark_silent(conn, at(179)) == []
    changes = liveness.mark_silent(conn, at(200))
    assert [(c.tid, c.state, c.ts, c.source) for c in changes] == [
        ("T-1", "offline", at(180), "heartbeat")
    ]
    assert liveness.mark_silent(conn, at(201)) == []
    row = terminal(db)
    assert (row["online"], row["offline_reason"], row["online_changed_at"]) == (
        False,
        "heartbeat",
        at(180),
    )
    late = apply(conn, [heartbeat(at(150), "h-late")])  # older than the verdict
    assert late.availability == []
    resumed = apply(conn, [heartbeat(at(300), "h2")])
    assert [(c.state, c.ts, c.source) for c in resumed.availability] == [
        ("online", at(300), "heartbeat")
    ]
    assert terminal(db)["online"] is True
    states = db.execute("SELECT tid, state, ts FROM availability_log ORDER BY ts").fetchall()
    assert [(r["tid"], r["state"], r["ts"]) for r in states] == [
        ("T-1", "offline", at(180)),
        ("T-1", "online", at(300)),
    ]


def test_a_terminal_whose_clock_runs_behind_is_judged_by_its_corrected_time(
    conn: psycopg.Connection[Row], db: psycopg.Connection[Row]
) -> None:
    # T-SLOW's clock is ten minutes behind the fleet: its heartbeat at fleet time 1000 says 400
    apply(conn, [heartbeat(at(400), "h1", tid="T-SLOW", interval_s=20)])
    apply(conn, [heartbeat(at(1000), "h1", tid="T-OK", interval_s=20)])
    liveness.record_offsets(conn, {"T-SLOW": timedelta(seconds=-600)}, at(1000))
    assert liveness.mark_silent(conn, at(1059)) == []
    changes = liveness.mark_silent(conn, at(1061))
    assert sorted((c.tid, c.ts) for c in changes) == [("T-OK", at(1060)), ("T-SLOW", at(1060))]
    offsets = db.execute("SELECT tid, offset_s FROM terminal_clock").fetchall()
    assert [(r["tid"], r["offset_s"]) for r in offsets] == [("T-SLOW", -600.0)]
    liveness.record_offsets(conn, {}, at(1100), cleared=["T-SLOW"])  # its clock is right
    assert db.execute("SELECT count(*) AS n FROM terminal_clock").fetchone() == {"n": 0}


def test_collectors_of_a_shared_group_keep_each_others_offsets(
    conn: psycopg.Connection[Row], db: psycopg.Connection[Row]
) -> None:
    liveness.record_offsets(conn, {"T-A": timedelta(hours=2)}, at(0))  # collector one
    liveness.record_offsets(conn, {"T-B": timedelta(minutes=-9)}, at(1))  # collector two
    rows = db.execute("SELECT tid, offset_s FROM terminal_clock ORDER BY tid").fetchall()
    assert [(r["tid"], r["offset_s"]) for r in rows] == [("T-A", 7200.0), ("T-B", -540.0)]


def test_a_slow_clock_terminal_comes_back_online_by_its_corrected_time(
    conn: psycopg.Connection[Row], db: psycopg.Connection[Row]
) -> None:
    apply(conn, [heartbeat(at(0), "h1", tid="T-1", interval_s=60)])
    [change] = liveness.mark_silent(conn, at(200))
    assert change.ts == at(180)
    # back, with a clock ten minutes slow: its heartbeat says 300 - 600 s
    slow = {"T-1": timedelta(seconds=-600)}
    with conn.transaction():
        back = state.apply(conn, [heartbeat(at(-300), "h2")], WALL, offsets=slow)
    assert [(c.state, c.ts) for c in back.availability] == [("online", at(300))]
    assert terminal(db)["online"] is True


def test_it_gives_a_terminal_that_said_online_a_full_heartbeat_window(
    conn: psycopg.Connection[Row],
) -> None:
    apply(conn, [heartbeat(at(0), "h1", interval_s=60), word("offline", at(10))])
    apply(conn, [word("online", at(500))])
    assert liveness.mark_silent(conn, at(600)) == []
    assert [c.ts for c in liveness.mark_silent(conn, at(700))] == [at(680)]
