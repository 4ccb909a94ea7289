"""The read side of the API and console: current state, by index, never by scanning history.

Every query here is served by an index: ``terminals`` and ``terminal_state`` by primary key,
``device_state`` by its (tid, device, field) key, unresolved incidents by the partial unique
index ``incidents_one_open``, operations by ``operations_tid_ts`` within a bounded time
range (or ``operations_tid_op`` for one operation), complaints by ``complaints_tid_occurred``.
Functions take an open connection and return API models; they never write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg

from rules.correlation import EXPLAINS, SILENT_FAULT
from termwatch.db import Row
from termwatch.web import verdict
from termwatch.web.devices import StateRow
from termwatch.web.models import (
    ComplaintView,
    Incident,
    Operation,
    Step,
)
from termwatch.web.privacy import mask_digits

Conn = psycopg.Connection[Row]

#: How far back an amount-only search for the caller's operation looks.
AMOUNT_LOOKBACK: Final = timedelta(days=7)

OP_COLUMNS: Final = (
    "op_id, ts, kind, service, account_last4, amount_minor, currency, outcome, started,"
    " failed_step, failed_result, failed_error, cash_accepted_minor, money_at_risk_minor, steps"
)
INCIDENT_COLUMNS: Final = (
    "i.id, i.kind, i.tid, i.severity, i.status, i.title, i.opened_at, i.acknowledged_at,"
    " i.resolved_at, i.complaints, i.operations_affected, i.money_at_risk_minor,"
    " i.acknowledged_by, i.resolved_by, i.region, t.service_group, i.silenced, i.parent_id,"
    " i.last_fault_at, i.cleared_at"
)
COMPLAINT_COLUMNS: Final = (
    "id, ref, received_at, occurred_at, channel, category, tid, amount_minor, currency,"
    " customer_last4, text, matched_op_id, incident_id, verdict"
)
#: The same columns of complaints ``c``, for queries that join other tables.
C_COMPLAINT_COLUMNS: Final = ", ".join(f"c.{c.strip()}" for c in COMPLAINT_COLUMNS.split(","))
#: A complaint with the facts its verdict is rendered from (:mod:`termwatch.web.verdict`).
COMPLAINT_FACTS_SELECT: Final = (
    f"SELECT {C_COMPLAINT_COLUMNS}, {verdict.FACT_COLUMNS} FROM complaints c{verdict.FACT_JOINS}"
)
#: Incident kinds that explain each way an operation fails, best first: the kinds that
#: explain the complaint category the failure would give (rules.correlation.EXPLAINS).
_FAILURE_CATEGORY: Final = {
    "at_risk": "cash_not_credited",
    "failed": "payment_failed",
    "no_receipt": "no_receipt",
}


@dataclass(frozen=True, slots=True)
class OperationFilter:
    """Which operations of a terminal to list: near a time, of an amount, newest first.

    With ``around``, operations within ``window`` either side; with only ``amount_minor``,
    the last :data:`AMOUNT_LOOKBACK`; with neither, the newest ``limit``.
    """

    amount_minor: int | None = None
    around: datetime | None = None
    window: timedelta = timedelta(minutes=30)
    limit: int = 20

    @property
    def active(self) -> bool:
        return self.amount_minor is not None or self.around is not None


@dataclass(frozen=True, slots=True)
class TerminalRow:
    """The registry entry and current state of one terminal (either may be missing)."""

    tid: str
    registry: Row | None
    state: Row | None


Query = tuple[str, Any]


def _terminal_query(tid: str) -> Query:
    return (
        "SELECT t.tid AS reg_tid, t.name, t.address, t.city, t.region, t.lat, t.lon, t.model,"
        " t.service_group, s.tid AS state_tid, s.last_seen, s.online, s.online_changed_at,"
        " s.offline_reason, s.service_mode, s.service_mode_since, s.app,"
        " c.offset_s AS clock_offset_s"
        " FROM (SELECT %s::text AS tid) k"
        " LEFT JOIN terminals t ON t.tid = k.tid"
        " LEFT JOIN terminal_state s ON s.tid = k.tid"
        " LEFT JOIN terminal_clock c ON c.tid = k.tid",
        (tid,),
    )


def _terminal_from(tid: str, row: Row | None) -> TerminalRow | None:
    if row is None or (row["reg_tid"] is None and row["state_tid"] is None):
        return None
    registry = None
    if row["reg_tid"] is not None:
        registry = {
            k: row[k]
            for k in ("name", "address", "city", "region", "lat", "lon", "model", "service_group")
        }
    state = None
    if row["state_tid"] is not None:
        state = {
            k: row[k]
            for k in (
                "last_seen",
                "online",
                "online_changed_at",
                "offline_reason",
                "service_mode",
                "service_mode_since",
                "app",
                "clock_offset_s",
            )
        }
    return TerminalRow(tid=tid, registry=registry, state=state)


def _devices_query(tid: str) -> Query:
    return "SELECT device, field, value, since FROM device_state WHERE tid = %s", (tid,)


def _devices_from(rows: list[Row]) -> list[StateRow]:
    return [StateRow(r["device"], r["field"], r["value"], r["since"]) for r in rows]


def _open_incidents_query(tid: str) -> Query:
    return (
        f"SELECT {INCIDENT_COLUMNS} FROM incidents i LEFT JOIN terminals t ON t.tid = i.tid"
        " WHERE i.tid = %s AND i.status <> 'resolved' ORDER BY i.opened_at DESC",
        (tid,),
    )


def _operations_query(tid: str, wanted: OperationFilter, now: datetime) -> Query:
    where = ["tid = %(tid)s"]
    params: dict[str, Any] = {"tid": tid, "limit": wanted.limit}
    if wanted.around is not None:
        where.append("ts BETWEEN %(lo)s AND %(hi)s")
        params["lo"] = wanted.around - wanted.window
        params["hi"] = wanted.around + wanted.window
    elif wanted.amount_minor is not None:
        where.append("ts >= %(lo)s")
        params["lo"] = now - AMOUNT_LOOKBACK
    if wanted.amount_minor is not None:
        where.append("amount_minor = %(amount)s")
        params["amount"] = wanted.amount_minor
    return (
        f"SELECT {OP_COLUMNS} FROM operations WHERE {' AND '.join(where)}"
        " ORDER BY ts DESC LIMIT %(limit)s",
        params,
    )


def _recent_complaints_query(tid: str, now: datetime, limit: int = 5) -> Query:
    return (
        f"{COMPLAINT_FACTS_SELECT}"
        " WHERE c.tid = %s AND c.occurred_at >= %s ORDER BY c.occurred_at DESC LIMIT %s",
        (tid, now - timedelta(days=7), limit),
    )


def with_facts(rows: list[Row]) -> list[tuple[ComplaintView, verdict.VerdictFacts]]:
    """Complaints read with :data:`COMPLAINT_FACTS_SELECT`, each with its verdict's facts."""
    out = []
    for row in rows:
        found = complaint_from(row)
        out.append((found, verdict.facts_from(row, found)))
    return out


def complaints_with_facts(
    conn: Conn, ids: list[int]
) -> dict[int, tuple[ComplaintView, verdict.VerdictFacts]]:
    """Complaints ``ids`` with their verdicts' facts, by id (one query by primary key)."""
    if not ids:
        return {}
    rows = conn.execute(f"{COMPLAINT_FACTS_SELECT} WHERE c.id = ANY(%s)", (ids,)).fetchall()
    return {c.id: (c, f) for c, f in with_facts(rows)}


def failure_of(op: Operation) -> str | None:
    """How ``op`` went wrong for its customer: ``at_risk`` (cash taken, payment not made),
    ``failed``, ``no_receipt`` (paid, receipt not printed), or None."""
    results = {s.step: s.result for s in op.steps}
    if op.money_at_risk_minor > 0:
        return "at_risk"
    if op.outcome == "failed" or results.get("paymentSent") in ("failed", "timeout"):
        return "failed"
    if results.get("receiptPrinted") in ("failed", "timeout"):
        return "no_receipt"
    return None


@dataclass(frozen=True, slots=True)
class OperationContext:
    """What is already known about one operation: complaints on it, what explains it."""

    complaints: list[tuple[ComplaintView, verdict.VerdictFacts]]
    explained_by: Incident | None


#: How close to an operation an incident's episode must be to explain it (clock skew).
EXPLAIN_SLACK: Final = timedelta(minutes=2)


def operation_context(conn: Conn, tid: str, op: Operation) -> OperationContext:
    """The complaints registered on ``op`` (oldest first) and the incident that explains it:
    one that has ``op`` as evidence, else one of a kind that explains how ``op`` failed
    whose episode covers its time (best kind first). Two indexed reads, one round trip."""
    failure = failure_of(op)
    kinds = [*EXPLAINS.get(_FAILURE_CATEGORY.get(failure or "", ""), ()), SILENT_FAULT]
    # An incident opens after the failures that prove it (payments failing), so one that
    # has the operation as evidence may have opened later; others must cover its time.
    incident_sql = (
        f"SELECT * FROM (SELECT {INCIDENT_COLUMNS},"
        " EXISTS (SELECT 1 FROM incident_evidence e WHERE e.incident_id = i.id"
        "   AND e.kind = 'operation' AND e.ref = %(op)s) AS linked"
        " FROM incidents i LEFT JOIN terminals t ON t.tid = i.tid"
        " WHERE i.tid = %(tid)s AND NOT i.is_group"
        " ORDER BY i.opened_at DESC LIMIT 50) found"
        " WHERE linked OR opened_at <= %(hi)s"
    )
    params = {"tid": tid, "op": op.op_id, "hi": op.ts + EXPLAIN_SLACK}
    with conn.pipeline():
        complaints = conn.execute(
            f"{COMPLAINT_FACTS_SELECT} WHERE c.tid = %s AND c.matched_op_id = %s"
            " ORDER BY c.received_at LIMIT 5",
            (tid, op.op_id),
        )
        incidents = conn.execute(incident_sql, params)
    candidates = incidents.fetchall()
    best: Row | None = next((r for r in candidates if r["linked"]), None)
    if best is None and failure is not None:
        covering = [
            r
            for r in candidates
            if r["kind"] in kinds
            and (r["resolved_at"] is None or r["resolved_at"] >= op.ts - EXPLAIN_SLACK)
        ]
        if covering:
            best = min(covering, key=lambda r: kinds.index(r["kind"]))
    return OperationContext(
        complaints=with_facts(complaints.fetchall()),
        explained_by=incident_from(best) if best is not None else None,
    )


def terminal(conn: Conn, tid: str) -> TerminalRow | None:
    """The registry entry and ``terminal_state`` of ``tid``; None when neither exists."""
    return _terminal_from(tid, conn.execute(*_terminal_query(tid)).fetchone())


def device_rows(conn: Conn, tid: str) -> list[StateRow]:
    """The current value of every device field of ``tid``."""
    return _devices_from(conn.execute(*_devices_query(tid)).fetchall())


def open_incidents(conn: Conn, tid: str) -> list[Incident]:
    """Unresolved incidents of ``tid``, newest first."""
    return [incident_from(r) for r in conn.execute(*_open_incidents_query(tid)).fetchall()]


def operations(conn: Conn, tid: str, wanted: OperationFilter, now: datetime) -> list[Operation]:
    """Operations of ``tid`` chosen by ``wanted``, newest first."""
    rows = conn.execute(*_operations_query(tid, wanted, now)).fetchall()
    return [operation_from(r) for r in rows]


@dataclass(frozen=True, slots=True)
class CardRows:
    """Everything the terminal card reads, in one round trip (:func:`card_rows`)."""

    terminal: TerminalRow | None
    devices: list[StateRow]
    incidents: list[Incident]
    operations: list[Operation]
    complaints: list[tuple[ComplaintView, verdict.VerdictFacts]]


def card_rows(conn: Conn, tid: str, wanted: OperationFilter, now: datetime) -> CardRows:
    """The five reads of the terminal card, sent together in pipeline mode.

    One round trip instead of five: while the collector keeps both cores busy, each round
    trip may wait for the scheduler, so their number shows in the tail latency.
    """
    queries = [
        _terminal_query(tid),
        _devices_query(tid),
        _open_incidents_query(tid),
        _operations_query(tid, wanted, now),
        _recent_complaints_query(tid, now),
    ]
    with conn.pipeline():
        cursors = [conn.execute(sql, params) for sql, params in queries]
    found, devices, incidents, ops, complaints = (c.fetchall() for c in cursors)
    return CardRows(
        terminal=_terminal_from(tid, found[0] if found else None),
        devices=_devices_from(devices),
        incidents=[incident_from(r) for r in incidents],
        operations=[operation_from(r) for r in ops],
        complaints=with_facts(complaints),
    )


def operation(conn: Conn, tid: str, op_id: str) -> Operation | None:
    """The newest report of operation ``op_id`` at ``tid``."""
    row = conn.execute(
        f"SELECT {OP_COLUMNS} FROM operations WHERE tid = %s AND op_id = %s"
        " ORDER BY ts DESC LIMIT 1",
        (tid, op_id),
    ).fetchone()
    return operation_from(row) if row else None


def recent_complaints(conn: Conn, tid: str, now: datetime, limit: int = 5) -> list[ComplaintView]:
    """Complaints about ``tid`` that happened in the last 7 days, newest first."""
    rows = conn.execute(*_recent_complaints_query(tid, now, limit)).fetchall()
    return [c for c, _ in with_facts(rows)]


def complaint(conn: Conn, complaint_id: int) -> ComplaintView | None:
    row = conn.execute(
        f"SELECT {COMPLAINT_COLUMNS} FROM complaints WHERE id = %s", (complaint_id,)
    ).fetchone()
    return complaint_from(row) if row else None


def incident_from(row: Row) -> Incident:
    return Incident(
        id=row["id"],
        kind=row["kind"],
        tid=row["tid"],
        severity=row["severity"],
        status=row["status"],
        title=row["title"],
        opened_at=row["opened_at"],
        acknowledged_at=row["acknowledged_at"],
        resolved_at=row["resolved_at"],
        complaints=row["complaints"],
        operations_affected=row["operations_affected"],
        money_at_risk_minor=row["money_at_risk_minor"],
        acknowledged_by=row["acknowledged_by"],
        resolved_by=row["resolved_by"],
        region=row["region"],
        service_group=row["service_group"],
        silenced=row["silenced"],
        parent_id=row["parent_id"],
        last_fault_at=row["last_fault_at"],
        cleared_at=row["cleared_at"],
    )


def operation_from(row: Row) -> Operation:
    steps = [_step(s) for s in row["steps"] or [] if isinstance(s, dict)]
    host_ref = None
    for raw in row["steps"] or []:
        if isinstance(raw, dict) and raw.get("step") == "paymentSent" and raw.get("host_ref"):
            host_ref = str(raw["host_ref"])
    return Operation(
        op_id=row["op_id"],
        ts=row["ts"],
        kind=row["kind"],
        service=row["service"],
        account_last4=row["account_last4"],
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        outcome=row["outcome"],
        started=row["started"],
        failed_step=row["failed_step"],
        failed_result=row["failed_result"],
        failed_error=row["failed_error"],
        cash_accepted_minor=row["cash_accepted_minor"],
        money_at_risk_minor=row["money_at_risk_minor"],
        host_ref=host_ref,
        steps=steps,
    )


def _step(raw: dict[str, Any]) -> Step:
    ts = raw.get("ts")
    parsed: datetime | None = None
    if isinstance(ts, str):
        try:
            parsed = datetime.fromisoformat(ts)
        except ValueError:
            parsed = None
    error = raw.get("error")
    return Step(
        step=str(raw.get("step", "")),
        result=str(raw.get("result", "")),
        ts=parsed if parsed is not None and parsed.tzinfo is not None else None,
        error=str(error) if error is not None else None,
    )


def complaint_from(row: Row) -> ComplaintView:
    return ComplaintView(
        id=row["id"],
        ref=row["ref"],
        received_at=row["received_at"],
        occurred_at=row["occurred_at"],
        channel=row["channel"],
        category=row["category"],
        tid=row["tid"],
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        customer_last4=row["customer_last4"],
        text=mask_digits(row["text"]),
        matched_op_id=row["matched_op_id"],
        incident_id=row["incident_id"],
        verdict=row["verdict"],
    )
