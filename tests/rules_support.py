"""Test support for the rules: write rows as the collector does, and build its batches.

:class:`Fleet` stores contract messages into the real tables (raw rows, current state,
state log) the way the collector's writer does after a commit, and returns the messages so
a test can hand them to the rule engine in a :class:`StoredBatch` with an event time it
chooses.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import psycopg

from collector.hooks import AvailabilityChange, StoredBatch
from terminals.contract import (
    Devices,
    Event,
    Heartbeat,
    Operation,
    Status,
    Step,
    devices_from_payload,
)
from termwatch.db import Row

MSK = timezone(timedelta(hours=3))
T0 = datetime(2026, 5, 4, 10, 0, tzinfo=MSK)
Conn = psycopg.Connection[Row]


def at(seconds: float) -> datetime:
    """``T0`` plus some seconds."""
    return T0 + timedelta(seconds=seconds)


class Fleet:
    """Writes what the collector would write for each message; returns the message."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self._ids = itertools.count(1)

    def _id(self, tid: str) -> str:
        return f"{tid}-{next(self._ids)}"

    # -- registry ---------------------------------------------------------------------

    def register(
        self,
        tid: str,
        *,
        region: str = "North",
        city: str = "Moscow",
        address: str | None = None,
        name: str | None = None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO terminals (tid, name, address, city, region, service_group)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (
                tid,
                name or f"{city}, kiosk {tid}",
                address or f"{city}, Lenina street {abs(hash(tid)) % 170 + 1}, mall",
                city,
                region,
                f"team-{region.lower()}",
            ),
        )

    # -- current state ----------------------------------------------------------------

    def _seen(self, tid: str, ts: datetime, *, heartbeat: int | None = None) -> None:
        self.conn.execute(
            "INSERT INTO terminal_state (tid, first_seen, last_seen, last_received_at,"
            " heartbeat_interval_s, last_heartbeat_at, online, online_changed_at)"
            " VALUES (%(tid)s, %(ts)s, %(ts)s, now(), COALESCE(%(hb)s, 60),"
            " CASE WHEN %(hb)s::int IS NULL THEN NULL ELSE %(ts)s END, true, %(ts)s)"
            " ON CONFLICT (tid) DO UPDATE SET last_seen = GREATEST(terminal_state.last_seen,"
            " EXCLUDED.last_seen), last_received_at = now(),"
            " heartbeat_interval_s = COALESCE(%(hb)s, terminal_state.heartbeat_interval_s),"
            " last_heartbeat_at = CASE WHEN %(hb)s::int IS NULL"
            "   THEN terminal_state.last_heartbeat_at ELSE %(ts)s END,"
            " online = CASE WHEN terminal_state.offline_reason = 'availability'"
            "   AND NOT terminal_state.online THEN terminal_state.online ELSE true END,"
            " online_changed_at = CASE WHEN terminal_state.online THEN"
            "   terminal_state.online_changed_at ELSE %(ts)s END",
            {"tid": tid, "ts": ts, "hb": heartbeat},
        )

    def _apply_devices(self, tid: str, ts: datetime, devices: Devices) -> None:
        for device, field, value in devices.fields():
            row = self.conn.execute(
                "SELECT value, ts FROM device_state WHERE tid = %s AND device = %s AND field = %s",
                (tid, device, field),
            ).fetchone()
            if row is not None and row["ts"] > ts:
                continue  # an older snapshot never rolls the state back
            if row is None or row["value"] != value:
                self.conn.execute(
                    "INSERT INTO device_state (tid, device, field, value, since, ts)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tid, device, field)"
                    " DO UPDATE SET value = EXCLUDED.value, since = EXCLUDED.since,"
                    " ts = EXCLUDED.ts",
                    (tid, device, field, value, ts, ts),
                )
                self.conn.execute(
                    "INSERT INTO device_state_log (tid, device, field, value, ts)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (tid, device, field, value, ts),
                )
            else:
                self.conn.execute(
                    "UPDATE device_state SET ts = %s WHERE tid = %s AND device = %s AND field = %s",
                    (ts, tid, device, field),
                )

    # -- messages ---------------------------------------------------------------------

    def status(self, tid: str, ts: datetime, devices: dict[str, Any]) -> Status:
        message = msgspec.convert(
            {"v": 1, "tid": tid, "id": self._id(tid), "ts": ts.isoformat(), "devices": devices},
            Status,
        )
        self.conn.execute(
            "INSERT INTO status_snapshots (tid, msg_id, ts, devices) VALUES (%s, %s, %s, %s)",
            (tid, message.id, ts, json.dumps(devices)),
        )
        self._seen(tid, ts)
        self._apply_devices(tid, ts, message.devices)
        return message

    def event(
        self, tid: str, ts: datetime, name: str, payload: dict[str, Any], device: str = "terminal"
    ) -> Event:
        message = Event(
            v=1, tid=tid, id=self._id(tid), ts=ts, device=device, name=name, payload=payload
        )
        self.conn.execute(
            "INSERT INTO events (tid, msg_id, ts, device, name, payload)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (tid, message.id, ts, device, name, json.dumps(payload)),
        )
        self._seen(tid, ts)
        if name == "Common.StatusChangedEvent":
            self._apply_devices(tid, ts, devices_from_payload(payload))
        if name == "Terminal.ServiceMode":
            entered = payload.get("state") == "entered"
            self.conn.execute(
                "UPDATE terminal_state SET service_mode = %s,"
                " service_mode_since = CASE WHEN %s THEN %s ELSE NULL END, engineer = %s"
                " WHERE tid = %s",
                (entered, entered, ts, payload.get("engineer") if entered else None, tid),
            )
        return message

    def operation(
        self,
        tid: str,
        ts: datetime,
        *,
        op_id: str | None = None,
        amount: int = 50_000,
        account: str | None = "*4567",
        cash: str = "success",
        sent: str = "success",
        receipt: str = "success",
        service: str = "mobile",
    ) -> Operation:
        """A payment; each step is ``result`` or ``result:error`` (``failed:paperOut``)."""
        steps = []
        for offset, (name, spec) in enumerate(
            (("cashAccepted", cash), ("paymentSent", sent), ("receiptPrinted", receipt))
        ):
            result, _, error = spec.partition(":")
            steps.append(
                Step(
                    step=name,
                    result=result,
                    ts=ts - timedelta(seconds=20 - 5 * offset),
                    amount_minor=amount if name == "cashAccepted" else None,
                    error=error or None,
                )
            )
        failed = next((s for s in steps if s.result not in ("success", "skipped")), None)
        if failed is None:
            outcome = "completed"
        elif failed.step == "receiptPrinted":
            outcome = "completedWithWarnings"
        else:
            outcome = "failed"
        message = Operation(
            v=1,
            tid=tid,
            id=self._id(tid),
            ts=ts,
            op_id=op_id or f"{tid}-op-{next(self._ids)}",
            kind="payment",
            service=service,
            account=account,
            amount_minor=amount,
            currency="RUB",
            outcome=outcome,
            started=ts - timedelta(seconds=30),
            steps=steps,
        )
        digits = "".join(c for c in account or "" if c.isdigit())
        self.conn.execute(
            "INSERT INTO operations (tid, msg_id, ts, op_id, kind, service, account_last4,"
            " amount_minor, currency, outcome, started, failed_step, failed_result,"
            " failed_error, cash_accepted_minor, money_at_risk_minor, steps)"
            " VALUES (%s, %s, %s, %s, 'payment', %s, %s, %s, 'RUB',"
            " %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                tid,
                message.id,
                ts,
                message.op_id,
                service,
                digits[-4:] or None,
                amount,
                outcome,
                message.started,
                failed.step if failed else None,
                failed.result if failed else None,
                failed.error if failed else None,
                message.cash_accepted_minor(),
                message.money_at_risk_minor(),
                msgspec.json.encode(steps).decode(),
            ),
        )
        self._seen(tid, ts)
        return message

    def heartbeat(self, tid: str, ts: datetime, interval_s: int = 60) -> Heartbeat:
        message = Heartbeat(v=1, tid=tid, id=self._id(tid), ts=ts, interval_s=interval_s)
        self.conn.execute(
            "INSERT INTO heartbeats (tid, msg_id, ts, interval_s) VALUES (%s, %s, %s, %s)",
            (tid, message.id, ts, interval_s),
        )
        self._seen(tid, ts, heartbeat=interval_s)
        return message

    def availability(self, tid: str, ts: datetime, state: str) -> AvailabilityChange:
        self.conn.execute(
            "INSERT INTO availability_log (tid, ts, state, source) VALUES (%s, %s, %s, 'mqtt')",
            (tid, ts, state),
        )
        self.conn.execute(
            "UPDATE terminal_state SET online = %s, online_changed_at = %s,"
            " offline_reason = CASE WHEN %s THEN NULL ELSE 'availability' END WHERE tid = %s",
            (state == "online", ts, state == "online", tid),
        )
        return AvailabilityChange(tid=tid, state=state, ts=ts, source="availability")


def batch(now: datetime, *messages: Any) -> StoredBatch:
    """A batch as the collector hands it over, with the event clock at ``now``."""
    out = StoredBatch(now=now)
    for message in messages:
        if isinstance(message, Status):
            out.status.append(message)
        elif isinstance(message, Event):
            out.events.append(message)
        elif isinstance(message, Operation):
            out.operations.append(message)
        elif isinstance(message, Heartbeat):
            out.heartbeats.append(message)
        elif isinstance(message, AvailabilityChange):
            out.availability.append(message)
        else:
            raise TypeError(f"not a message: {message!r}")
    return out


def incidents(conn: Conn, **where: Any) -> list[Row]:
    """Incident rows matching column = value filters, oldest first."""
    clauses = " AND ".join(f"{k} = %({k})s" for k in where) or "true"
    return conn.execute(f"SELECT * FROM incidents WHERE {clauses} ORDER BY id", where).fetchall()


def log_actions(conn: Conn, incident_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT action FROM incident_log WHERE incident_id = %s ORDER BY id", (incident_id,)
    ).fetchall()
    return [r["action"] for r in rows]


def wall_now() -> datetime:
    return datetime.now(UTC)


HEALTHY: dict[str, Any] = {
    "printer": {"device": "online", "paper": "full", "media": "notPresent", "toner": "full"},
    "cashAcceptor": {
        "device": "online",
        "acceptor": "ok",
        "banknoteReader": "ok",
        "shutter": "closed",
        "transport": "ok",
        "stacker": {"status": "ok", "replenishment": "ok", "count": 10, "capacity": 600},
    },
}
