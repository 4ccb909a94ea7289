"""A simulated day of a small fleet, written straight into the database.

Thirteen registered terminals in three regions (one never seen) and one unregistered
terminal, with heartbeats, status snapshots, operations, events, device state changes,
offline periods, incidents (acknowledged, resolved, reopened, still open, a regional
parent), complaints matched and unmatched, and rejected messages: enough for every
dashboard panel to have something to show. Deterministic: the same rows every time.

The faults (hours after START):
- T-0002 offline 03:00-04:30; terminal_offline incident, acknowledged and resolved.
- T-0005 printer paper out 06:00-09:00; receipts fail; two no_receipt complaints.
- T-0007 cash acceptor jammed from 10:00, still open and acknowledged; failed deposits.
- T-0004 three complaints no device explains; silent_fault incident open from 12:00.
- T-0009 payment host timeouts 14:00-15:00 with cash accepted (money at risk).
- T-0011 printer jam from 16:00 that comes back three times, resolved at 20:00.
- T-0012 offline from 22:00 and still offline; incident open, not acknowledged.
- T-0006 in service mode now; T-0001 paper low (minor incident open).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row

START = datetime(2026, 5, 4, tzinfo=UTC)
END = START + timedelta(hours=24)
TERMINALS = [f"T-{n:04d}" for n in range(1, 14)]
NEVER_SEEN = "T-0013"
UNREGISTERED = "T-9999"
REGIONS = {
    "Moscow": (55.75, 37.62),
    "Kazan": (55.79, 49.12),
    "Novosibirsk": (55.03, 82.92),
}
HEALTHY_PRINTER = {"device": "online", "paper": "full", "media": "notPresent", "toner": "full"}
HEALTHY_ACCEPTOR: dict[str, object] = {
    "device": "online",
    "acceptor": "ok",
    "banknoteReader": "ok",
    "shutter": "closed",
    "transport": "ok",
    "stacker": {"status": "ok", "replenishment": "ok", "count": 120, "capacity": 600},
}


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


@dataclass(frozen=True, slots=True)
class Outage:
    tid: str
    start: float
    end: float | None  # hours after START; None: still going


OUTAGES = (Outage("T-0002", 3, 4.5), Outage("T-0012", 22, None))


def region_of(tid: str) -> str:
    return list(REGIONS)[(int(tid[2:]) - 1) % 3]


def fill(conn: psycopg.Connection[Any]) -> None:
    """Write the simulated day into the (emptied) database behind ``conn`` (autocommit)."""
    with conn.transaction():
        _registry(conn)
        _heartbeats_and_availability(conn)
        _status_and_devices(conn)
        _operations(conn)
        _events(conn)
        _incidents(conn)
        _complaints(conn)
        _rejected(conn)


def _registry(conn: psycopg.Connection[Any]) -> None:
    rows = []
    for tid in TERMINALS:
        region = region_of(tid)
        lat, lon = REGIONS[region]
        n = int(tid[2:])
        rows.append(
            (
                tid,
                f"Kiosk {n}",
                f"{n} Main street",
                region,
                region,
                lat + n * 0.01,
                lon - n * 0.01,
                "KX-200" if n % 2 else "KX-300",
                f"team-{region.lower()}",
                START - timedelta(days=30),
            )
        )
    conn.cursor().executemany(
        "INSERT INTO terminals (tid, name, address, city, region, lat, lon, model,"
        " service_group, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        rows,
    )


def _offline_at(tid: str, hours: float) -> bool:
    return any(
        o.tid == tid and o.start <= hours < (o.end if o.end is not None else 1e9) for o in OUTAGES
    )


def _seen() -> list[str]:
    return [t for t in TERMINALS if t != NEVER_SEEN] + [UNREGISTERED]


def _heartbeats_and_availability(conn: psycopg.Connection[Any]) -> None:
    beats = []
    for tid in _seen():
        for step in range(24 * 6):  # every 10 minutes
            hours = step / 6
            if _offline_at(tid, hours):
                continue
            beats.append(
                (tid, f"{tid}-hb-{step}", at(hours), 600, 86400 + step * 600, "kiosk 2.3.1")
            )
    conn.cursor().executemany(
        "INSERT INTO heartbeats (tid, msg_id, ts, interval_s, uptime_s, app)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        beats,
    )
    log = [(tid, START - timedelta(days=1), "online", "mqtt") for tid in _seen()]
    for outage in OUTAGES:
        log.append((outage.tid, at(outage.start), "offline", "heartbeat"))
        log.append((outage.tid, at(outage.start) + timedelta(minutes=1), "offline", "mqtt"))
        if outage.end is not None:
            log.append((outage.tid, at(outage.end), "online", "mqtt"))
    conn.cursor().executemany(
        "INSERT INTO availability_log (tid, ts, state, source) VALUES (%s, %s, %s, %s)", log
    )
    states = []
    for tid in _seen():
        offline = _offline_at(tid, 23.99)
        service = tid == "T-0006"
        states.append(
            (
                tid,
                START - timedelta(days=1),
                at(22) if offline else at(23.9),
                not offline,
                at(22) if offline else START - timedelta(days=1),
                "heartbeat" if offline else None,
                service,
                at(23) if service else None,
                "engineer-7" if service else None,
            )
        )
    conn.cursor().executemany(
        "INSERT INTO terminal_state (tid, first_seen, last_seen, last_received_at, online,"
        " online_changed_at, offline_reason, service_mode, service_mode_since, engineer)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [(s[0], s[1], s[2], s[2], *s[3:]) for s in states],
    )


# (tid, device, field, value, hours) changes of device state over the day.
CHANGES = (
    ("T-0005", "printer", "paper", "low", 5.0),
    ("T-0005", "printer", "paper", "out", 6.0),
    ("T-0005", "printer", "paper", "full", 9.0),
    ("T-0007", "cashAcceptor", "shutter", "jammedOpen", 10.0),
    ("T-0007", "cashAcceptor", "acceptor", "stop", 10.0),
    ("T-0011", "printer", "media", "jammed", 16.0),
    ("T-0011", "printer", "media", "notPresent", 16.5),
    ("T-0011", "printer", "media", "jammed", 17.0),
    ("T-0011", "printer", "media", "notPresent", 17.5),
    ("T-0011", "printer", "media", "jammed", 18.0),
    ("T-0011", "printer", "media", "notPresent", 18.5),
    ("T-0011", "printer", "media", "jammed", 19.0),
    ("T-0011", "printer", "media", "notPresent", 20.0),
    ("T-0001", "printer", "paper", "low", 21.0),
)


def _status_and_devices(conn: psycopg.Connection[Any]) -> None:
    snapshots = []
    for tid in _seen():
        for k, hours in enumerate((0.0, 6.0, 12.0, 18.0)):
            if _offline_at(tid, hours):
                continue
            devices = {"printer": HEALTHY_PRINTER, "cashAcceptor": HEALTHY_ACCEPTOR}
            snapshots.append((tid, f"{tid}-st-{k}", at(hours), json.dumps(devices)))
    conn.cursor().executemany(
        "INSERT INTO status_snapshots (tid, msg_id, ts, devices) VALUES (%s, %s, %s, %s::jsonb)",
        snapshots,
    )
    before = START - timedelta(days=1)
    log = []
    current: dict[tuple[str, str, str], tuple[str, datetime]] = {}
    for tid in _seen():
        for field, value in HEALTHY_PRINTER.items():
            log.append((tid, "printer", field, value, before))
            current[(tid, "printer", field)] = (value, before)
        for field, raw in HEALTHY_ACCEPTOR.items():
            if isinstance(raw, str):
                log.append((tid, "cashAcceptor", field, raw, before))
                current[(tid, "cashAcceptor", field)] = (raw, before)
    for tid, device, field, value, hours in CHANGES:
        log.append((tid, device, field, value, at(hours)))
        current[(tid, device, field)] = (value, at(hours))
    conn.cursor().executemany(
        "INSERT INTO device_state_log (tid, device, field, value, ts) VALUES (%s, %s, %s, %s, %s)",
        log,
    )
    conn.cursor().executemany(
        "INSERT INTO device_state (tid, device, field, value, since, ts)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        [(t, d, f, v, since, since) for (t, d, f), (v, since) in current.items()],
    )


def _operation(tid: str, hours: float) -> tuple[str, str | None, str | None, int, int, int]:
    """(outcome, failed_step, failed_error, amount, cash accepted, money at risk)."""
    amount = 10_000 + (int(tid[2:]) * 1_000) + int(hours * 100) % 5_000
    if tid == "T-0005" and 6 <= hours < 9:
        return ("completedWithWarnings", "receiptPrinted", "paperOut", amount, amount, 0)
    if tid == "T-0007" and hours >= 10:
        return ("failed", "cashAccepted", "shutterFail", amount, 0, 0)
    if tid == "T-0009" and 14 <= hours < 15:
        return ("failed", "paymentSent", "hostTimeout", amount, amount, amount)
    if tid == "T-0003" and int(hours) % 8 == 5:
        return ("cancelled", None, None, amount, 0, 0)
    return ("completed", None, None, amount, amount, 0)


def op_id(tid: str, step: int) -> str:
    return f"{tid}-op-{step:04d}"


def _operations(conn: psycopg.Connection[Any]) -> None:
    rows = []
    for tid in _seen():
        for step in range(48):  # every 30 minutes, at :07 and :37
            hours = step / 2 + 7 / 60
            if _offline_at(tid, hours):
                continue
            outcome, failed_step, error, amount, cash, risk = _operation(tid, hours)
            steps = [{"step": "cashAccepted", "result": "success" if cash else "failed"}]
            rows.append(
                (
                    tid,
                    f"{tid}-msg-op-{step}",
                    at(hours),
                    op_id(tid, step),
                    "payment",
                    "mobile",
                    "4567",
                    amount,
                    "RUB",
                    outcome,
                    at(hours) - timedelta(seconds=40),
                    failed_step,
                    "failed" if failed_step else None,
                    error,
                    cash,
                    risk,
                    json.dumps(steps),
                )
            )
    conn.cursor().executemany(
        "INSERT INTO operations (tid, msg_id, ts, op_id, kind, service, account_last4,"
        " amount_minor, currency, outcome, started, failed_step, failed_result, failed_error,"
        " cash_accepted_minor, money_at_risk_minor, steps)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
        rows,
    )


def _events(conn: psycopg.Connection[Any]) -> None:
    rows: list[tuple[str, str, datetime, str, str, str]] = []

    def event(tid: str, hours: float, device: str, name: str, payload: dict[str, Any]) -> None:
        rows.append((tid, f"{tid}-ev-{len(rows)}", at(hours), device, name, json.dumps(payload)))

    for tid in _seen():
        event(tid, 0.5, "terminal", "Terminal.Boot", {"app": "kiosk 2.3.1", "reason": "power"})
    event("T-0005", 6.0, "printer", "Printer.PaperThresholdEvent", {"threshold": "out"})
    event("T-0005", 9.0, "printer", "Printer.PaperThresholdEvent", {"threshold": "full"})
    for k in range(5):
        event("T-0007", 10 + k * 0.3, "cashAcceptor", "CashManagement.NoteErrorEvent",
              {"reason": "skewedNote"})  # fmt: skip
    event("T-0007", 10.0, "cashAcceptor", "CashManagement.ShutterStatusChangedEvent",
          {"shutter": "jammedOpen"})  # fmt: skip
    for hours in (16.0, 17.0, 18.0, 19.0):
        event("T-0011", hours, "printer", "Printer.MediaAutoRetractedEvent", {"result": "jammed"})
    event("T-0006", 23.0, "terminal", "Terminal.ServiceMode", {"state": "entered"})
    conn.cursor().executemany(
        "INSERT INTO events (tid, msg_id, ts, device, name, payload)"
        " VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
        rows,
    )


@dataclass(frozen=True, slots=True)
class IncidentRow:
    tid: str
    kind: str
    severity: str
    opened: float
    acked: float | None
    resolved: float | None
    cleared: float | None = None
    reopens: tuple[float, ...] = ()
    money_at_risk: int = 0


INCIDENTS = (
    IncidentRow("T-0002", "terminal_offline", "critical", 3.05, 3.33, 4.52, cleared=4.5),
    IncidentRow("T-0005", "printer_paper_out", "major", 6.02, 6.67, 9.08, cleared=9.0),
    IncidentRow("T-0007", "cash_acceptor_jam", "critical", 10.02, 10.25, None),
    IncidentRow("T-0004", "silent_fault", "major", 12.0, None, None),
    IncidentRow(
        "T-0009",
        "payment_failures",
        "critical",
        14.2,
        14.3,
        15.17,
        cleared=15.0,
        money_at_risk=25_000,
    ),
    IncidentRow(
        "T-0011",
        "printer_jam",
        "major",
        16.02,
        16.1,
        20.05,
        cleared=20.0,
        reopens=(17.0, 18.0, 19.0),
    ),
    IncidentRow("T-0012", "terminal_offline", "critical", 22.05, None, None),
    IncidentRow("T-0001", "printer_paper_out", "minor", 21.0, None, None),
    IncidentRow("T-0003", "printer_fault", "major", -30.0, -29.5, -20.0, cleared=-20.0),
)


def _incidents(conn: psycopg.Connection[Any]) -> None:
    cur = conn.cursor(row_factory=tuple_row)
    parent = cur.execute(
        "INSERT INTO incidents (tid, kind, severity, status, title, region, is_group,"
        " opened_at, last_fault_at) VALUES ('region:Kazan', 'terminal_offline', 'critical',"
        " 'resolved', 'Several terminals offline in Kazan', 'Kazan', true, %s, %s) RETURNING id",
        (at(3), at(4.5)),
    ).fetchone()
    assert parent is not None
    for row in INCIDENTS:
        status = "resolved" if row.resolved is not None else "acknowledged" if row.acked else "open"
        last_fault = at(row.cleared if row.cleared is not None else min(row.opened + 1, 23.9))
        found = cur.execute(
            "INSERT INTO incidents (tid, kind, severity, status, title, rule, region, parent_id,"
            " opened_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by,"
            " last_fault_at, cleared_at, reopen_count, money_at_risk_minor)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            (
                row.tid,
                row.kind,
                row.severity,
                status,
                f"{row.kind.replace('_', ' ')} on {row.tid}",
                row.kind,
                region_of(row.tid),
                parent[0] if row.tid == "T-0002" else None,
                at(row.opened),
                at(row.acked) if row.acked is not None else None,
                "alice" if row.acked is not None else None,
                at(row.resolved) if row.resolved is not None else None,
                "rules" if row.resolved is not None else None,
                last_fault,
                at(row.cleared) if row.cleared is not None else None,
                len(row.reopens),
                row.money_at_risk,
            ),
        ).fetchone()
        assert found is not None
        log = [(found[0], at(row.opened), "opened", "rules")]
        log += [(found[0], at(h), "reopened", "rules") for h in row.reopens]
        if row.acked is not None:
            log.append((found[0], at(row.acked), "acknowledged", "alice"))
        if row.resolved is not None:
            log.append((found[0], at(row.resolved), "resolved", "rules"))
        cur.executemany(
            "INSERT INTO incident_log (incident_id, at, action, actor) VALUES (%s, %s, %s, %s)",
            log,
        )


# (ref, tid, category, hours, matched operation step or None, incident kind or None, verdict)
COMPLAINTS = (
    ("CRM-1", "T-0005", "no_receipt", 6.2, 12, "printer_paper_out", "explained_by_incident"),
    ("CRM-2", "T-0005", "no_receipt", 7.2, 14, "printer_paper_out", "explained_by_incident"),
    (
        "CRM-3",
        "T-0007",
        "cash_not_credited",
        10.2,
        20,
        "cash_acceptor_jam",
        "explained_by_incident",
    ),
    ("CRM-4", "T-0009", "payment_failed", 14.2, 28, "payment_failures", "explained_by_incident"),
    ("CRM-5", "T-0009", "payment_failed", 14.7, 29, "payment_failures", "explained_by_incident"),
    ("CRM-6", "T-0004", "cash_not_credited", 11.0, None, "silent_fault", "silent_fault"),
    ("CRM-7", "T-0004", "payment_failed", 11.5, None, "silent_fault", "silent_fault"),
    ("CRM-8", "T-0004", "other", 11.8, 23, "silent_fault", "silent_fault"),
    ("CRM-9", "T-0008", "terminal_out_of_order", 13.0, None, None, "no_fault_found"),
    ("CRM-10", None, "other", 15.0, None, None, ""),
    ("CRM-11", "T-0010", "no_receipt", 18.0, 36, None, "operation_completed"),
)


def _complaints(conn: psycopg.Connection[Any]) -> None:
    cur = conn.cursor(row_factory=tuple_row)
    for ref, tid, category, hours, step, kind, verdict in COMPLAINTS:
        incident = None
        if kind is not None:
            found = cur.execute(
                "SELECT id FROM incidents WHERE tid = %s AND kind = %s", (tid, kind)
            ).fetchone()
            assert found is not None
            incident = found[0]
        cur.execute(
            "INSERT INTO complaints (ref, received_at, channel, category, tid, address,"
            " occurred_at, amount_minor, currency, customer_last4, customer_hash, text,"
            " matched_op_id, match_score, incident_id, verdict)"
            " VALUES (%s, %s, 'phone', %s, %s, %s, %s, %s, 'RUB', '4567', 'h', %s, %s, %s, %s, %s)",
            (
                ref,
                at(hours + 0.5),
                category,
                tid,
                None if tid else "near the metro",
                at(hours),
                15_000,
                f"complaint {ref}",
                op_id(tid, step) if tid and step is not None else None,
                0.9 if step is not None else None,
                incident,
                verdict,
            ),
        )


def _rejected(conn: psycopg.Connection[Any]) -> None:
    conn.cursor().executemany(
        "INSERT INTO rejected_messages (received_at, topic, kind, tid, reason, payload_head)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        [
            (at(2), "terminals/T-0003/status", "status", "T-0003", "invalid JSON", b"{oops"),
            (at(8), "terminals/T-0008/events", "events", "T-0009", "tid mismatch", b"{}"),
            (at(9), "terminals/bad tid/heartbeat", "heartbeat", None, "bad topic", b"{}"),
        ],
    )
