"""A small fleet in the real database for the API, console and status tests, and the proof
that the read side is served by indexes (never a scan of history).

Rows are written the way the collector and the rule engine write them: registry rows,
``terminal_state`` and ``device_state`` (current state), ``operations`` (history) and
``incidents``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import uvicorn
from psycopg.types.json import Jsonb
from starlette.applications import Starlette

from termwatch.db import Row

NOW = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)  # 11:00 in Moscow
AGENT = "agent-token-0001"
ENGINEER = "engineer-token-0001"
ADMIN = "admin-token-0001"
TOKENS = {"agent": AGENT, "engineer": ENGINEER, "admin": ADMIN}

Conn = psycopg.Connection[Row]


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port in a thread; yield its base URL.

    The app's lifespan runs as in production; the server stops when the block ends.
    """
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def add_terminal(
    conn: Conn,
    tid: str,
    *,
    name: str = "Kiosk",
    address: str = "Tverskaya St 12",
    city: str = "Moscow",
    region: str = "Moscow",
    service_group: str = "msk-centre",
) -> None:
    conn.execute(
        "INSERT INTO terminals (tid, name, address, city, region, lat, lon, model, service_group)"
        " VALUES (%s, %s, %s, %s, %s, 55.76, 37.61, 'KX-200', %s)",
        (tid, name, address, city, region, service_group),
    )


def set_state(
    conn: Conn,
    tid: str,
    *,
    online: bool = True,
    last_seen: datetime = NOW - timedelta(seconds=30),
    changed_at: datetime = NOW - timedelta(days=2),
    service_mode: bool = False,
) -> None:
    conn.execute(
        "INSERT INTO terminal_state (tid, first_seen, last_seen, last_received_at, online,"
        " online_changed_at, offline_reason, service_mode, app)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'kiosk 2.3.1')",
        (
            tid,
            NOW - timedelta(days=30),
            last_seen,
            last_seen,
            online,
            changed_at,
            None if online else "heartbeat",
            service_mode,
        ),
    )


def set_devices(conn: Conn, tid: str, fields: dict[tuple[str, str], tuple[str, datetime]]) -> None:
    """``{(device, field): (value, since)}``."""
    for (device, field), (value, since) in fields.items():
        conn.execute(
            "INSERT INTO device_state (tid, device, field, value, since, ts)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (tid, device, field, value, since, NOW - timedelta(seconds=30)),
        )


def healthy_devices(since: datetime = NOW - timedelta(days=1)) -> dict[tuple[str, str], Any]:
    return {
        ("printer", "device"): ("online", since),
        ("printer", "paper"): ("full", since),
        ("cashAcceptor", "device"): ("online", since),
        ("cashAcceptor", "acceptor"): ("ok", since),
        ("cashAcceptor", "stacker.replenishment"): ("ok", since),
        ("cardReader", "device"): ("online", since),
    }


def add_operation(
    conn: Conn,
    tid: str,
    op_id: str,
    ts: datetime,
    *,
    amount_minor: int = 50000,
    outcome: str = "completed",
    steps: Sequence[dict[str, Any]] | None = None,
    account_last4: str | None = "4567",
) -> None:
    """An operation as the collector stores it (failed step and money at risk derived)."""
    if steps is None:
        steps = [
            {"step": "cashAccepted", "result": "success", "amount_minor": amount_minor},
            {"step": "paymentSent", "result": "success", "host_ref": f"AUTH-{op_id[-4:]}"},
            {"step": "receiptPrinted", "result": "success"},
        ]
    failed = next((s for s in steps if s["result"] not in ("success", "skipped")), None)
    cash = next(
        (
            s.get("amount_minor", amount_minor)
            for s in steps
            if s["step"] == "cashAccepted" and s["result"] == "success"
        ),
        0,
    )
    sent = next((s for s in steps if s["step"] == "paymentSent"), None)
    at_risk = 0 if sent is not None and sent["result"] == "success" else cash
    conn.execute(
        "INSERT INTO operations (tid, msg_id, ts, op_id, kind, service, account_last4,"
        " amount_minor, currency, outcome, started, failed_step, failed_result, failed_error,"
        " cash_accepted_minor, money_at_risk_minor, steps)"
        " VALUES (%s, %s, %s, %s, 'payment', 'mobile', %s, %s, 'RUB', %s, %s, %s, %s, %s,"
        " %s, %s, %s)",
        (
            tid,
            f"m-{op_id}",
            ts,
            op_id,
            account_last4,
            amount_minor,
            outcome,
            ts - timedelta(seconds=40),
            failed["step"] if failed else None,
            failed["result"] if failed else None,
            failed.get("error") if failed else None,
            cash,
            at_risk,
            Jsonb(list(steps)),
        ),
    )


def add_incident(
    conn: Conn,
    tid: str,
    kind: str,
    *,
    severity: str = "major",
    status: str = "open",
    title: str = "Printer out of paper",
    opened_at: datetime = NOW - timedelta(hours=2),
    region: str = "Moscow",
) -> int:
    row = conn.execute(
        "INSERT INTO incidents (tid, kind, severity, status, title, region, opened_at,"
        " last_fault_at, resolved_at, money_at_risk_minor)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0) RETURNING id",
        (
            tid,
            kind,
            severity,
            status,
            title,
            region,
            opened_at,
            opened_at,
            opened_at + timedelta(hours=1) if status == "resolved" else None,
        ),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def paper_out_terminal(conn: Conn, tid: str = "T-000042") -> int:
    """A terminal whose printer ran out of paper 2 hours ago, with an open incident and a
    morning of operations; the caller's 500-rouble payment at 10:31 Moscow time was
    credited but its receipt failed. Returns the incident id."""
    add_terminal(conn, tid, name="Tverskaya kiosk", address="Tverskaya St 12")
    set_state(conn, tid)
    devices = healthy_devices()
    devices[("printer", "paper")] = ("out", NOW - timedelta(hours=2))
    set_devices(conn, tid, devices)
    for i in range(12):
        add_operation(conn, tid, f"{tid}-op-{i:04d}", NOW - timedelta(minutes=10 * i + 3),
                      amount_minor=10000 + 1000 * i)  # fmt: skip
    add_operation(
        conn,
        tid,
        f"{tid}-op-caller",
        NOW - timedelta(minutes=29),  # 10:31 in Moscow
        outcome="completedWithWarnings",
        steps=[
            {"step": "cashAccepted", "result": "success", "amount_minor": 50000},
            {"step": "paymentSent", "result": "success", "host_ref": "AUTH-88231"},
            {"step": "receiptPrinted", "result": "failed", "error": "paperOut"},
        ],
    )
    return add_incident(conn, tid, "printer_paper_out")


# --- the read side is served by indexes ----------------------------------------------------


def _plan(conn: Conn, query: str, params: Sequence[object] | dict[str, object]) -> str:
    rows = conn.execute(f"EXPLAIN {query}", params).fetchall()
    return "\n".join(str(next(iter(r.values()))) for r in rows)


@pytest.fixture
def no_seqscan(db: Conn) -> Conn:
    db.execute("SET enable_seqscan = off")
    return db


def test_it_reads_a_terminals_operations_through_an_index(no_seqscan: Conn) -> None:
    from termwatch.web.read import OperationFilter, operations

    add_operation(no_seqscan, "T-1", "op-1", NOW)
    no_seqscan.execute("ANALYZE operations")
    plan = _plan(
        no_seqscan,
        "SELECT * FROM operations WHERE tid = %s AND ts BETWEEN %s AND %s"
        " AND amount_minor = %s ORDER BY ts DESC LIMIT 20",
        ("T-1", NOW - timedelta(minutes=30), NOW + timedelta(minutes=30), 50000),
    )
    assert "Index" in plan
    assert "Seq Scan" not in plan
    found = operations(no_seqscan, "T-1", OperationFilter(amount_minor=50000, around=NOW), NOW)
    assert [o.op_id for o in found] == ["op-1"]


def test_it_reads_open_incidents_through_the_partial_unique_index(no_seqscan: Conn) -> None:
    add_incident(no_seqscan, "T-1", "printer_paper_out")
    plan = _plan(
        no_seqscan,
        "SELECT * FROM incidents i WHERE i.tid = %s AND i.status <> 'resolved'",
        ("T-1",),
    )
    assert "Seq Scan" not in plan


def test_it_searches_terminals_by_words_through_the_full_text_index(no_seqscan: Conn) -> None:
    from termwatch.web.search import _WORDS_QUERY, SEARCH_TEXT, search

    add_terminal(no_seqscan, "T-1", address="ул. Тверская, д. 12")
    add_terminal(no_seqscan, "T-2", address="ул. Тверская, д. 120")
    plan = _plan(
        no_seqscan,
        f"SELECT * FROM terminals t WHERE to_tsvector('simple', {SEARCH_TEXT}) @@ {_WORDS_QUERY}",
        {"words": "Тверская 12"},
    )
    assert "terminals_search_words" in plan
    assert [hit.tid for hit in search(no_seqscan, "ТВЕРСКАЯ д. 12")] == ["T-1"]
    assert [hit.tid for hit in search(no_seqscan, "Твер 120")] == ["T-2"]


def test_it_searches_terminals_through_the_trigram_index_when_available(
    no_seqscan: Conn,
) -> None:
    from termwatch.web.search import SEARCH_TEXT

    has_trgm = no_seqscan.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone()
    if has_trgm is None:
        pytest.skip("pg_trgm is not installed on this server")
    add_terminal(no_seqscan, "T-1")
    plan = _plan(
        no_seqscan,
        f"SELECT * FROM terminals t WHERE {SEARCH_TEXT} LIKE lower(%s)",
        ("%tverskaya%",),
    )
    assert "terminals_search_trgm" in plan
