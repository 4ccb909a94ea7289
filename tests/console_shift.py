"""A shift's worth of trouble in the real database, for the console's page tests: a printer
out of paper, a payment host timing out with cash taken, a regional storm over both, a
complaint registered through the writer (so its stored verdict is English), events as
evidence, and an incident's history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rules.intake import ComplaintIntake
from terminals.contract import Complaint
from termwatch.settings import Settings
from tests.test_api_fleet import (
    NOW,
    Conn,
    add_incident,
    add_operation,
    add_terminal,
    healthy_devices,
    paper_out_terminal,
    set_devices,
    set_state,
)

TIMEOUT_STEPS: list[dict[str, Any]] = [
    {"step": "cashAccepted", "result": "success", "amount_minor": 890000},
    {"step": "paymentSent", "result": "timeout", "error": "hostTimeout"},
]


@dataclass(frozen=True, slots=True)
class Shift:
    printer_incident: int
    payments_incident: int
    region_incident: int
    complaint_id: int


def a_shift(db: Conn, settings: Settings) -> Shift:
    printer = paper_out_terminal(db)
    add_terminal(db, "T-000034", name="Kiosk", address="Baumana St 5", city="Kazan",
                 region="Kazan", service_group="volga-field")  # fmt: skip
    set_state(db, "T-000034")
    devices = healthy_devices()
    devices[("printer", "media")] = ("jammed", NOW - timedelta(minutes=50))
    set_devices(db, "T-000034", devices)
    add_operation(db, "T-000034", "op-8900", NOW - timedelta(minutes=20), amount_minor=890000,
                  outcome="failed", steps=TIMEOUT_STEPS)  # fmt: skip
    add_operation(db, "T-000034", "op-ok", NOW - timedelta(minutes=40))
    region = db.execute(
        "INSERT INTO incidents (tid, kind, severity, status, title, region, opened_at,"
        " last_fault_at, is_group, complaints, money_at_risk_minor)"
        " VALUES ('region:Kazan', 'payment_failures', 'critical', 'open',"
        " 'Payments failing in region Kazan', 'Kazan', %s, %s, true, 1, 890000) RETURNING id",
        (NOW - timedelta(minutes=16), NOW - timedelta(minutes=16)),
    ).fetchone()
    assert region is not None
    payments = add_incident(db, "T-000034", "payment_failures", severity="critical",
                            title="Payments failing", opened_at=NOW - timedelta(minutes=15),
                            region="Kazan")  # fmt: skip
    add_incident(db, "T-000034", "printer_jam", title="Printer jammed", region="Kazan")
    db.execute("UPDATE incidents SET parent_id = %s WHERE id = %s", (region["id"], payments))
    db.execute(
        "INSERT INTO events (tid, msg_id, ts, device, name, payload)"
        " VALUES ('T-000034', 'ev-1', %s, 'printer', 'Printer.MediaPresentedEvent', '{}')",
        (NOW - timedelta(minutes=50),),
    )
    db.execute(
        "INSERT INTO incident_evidence (incident_id, kind, ref, ts, summary) VALUES"
        " (%(p)s, 'operation', 'op-8900', %(t)s, 'payment timed out'),"
        " (%(p)s, 'event', 'ev-1', %(e)s, 'media jammed'),"
        " (%(p)s, 'status', 's-1', %(e)s, 'printer media jammed')",
        {"p": payments, "t": NOW - timedelta(minutes=20), "e": NOW - timedelta(minutes=50)},
    )
    db.execute(
        "INSERT INTO incident_log (incident_id, at, action, actor, note) VALUES"
        " (%(p)s, %(t)s, 'updated', 'rules', 'complaint attached'),"
        " (%(p)s, %(t)s, 'opened', 'rules', 'payments failing: 3 of 5')",
        {"p": payments, "t": NOW - timedelta(minutes=15)},
    )
    complaint = Complaint(
        ref="CRM-2026-000777",
        received_at=NOW - timedelta(minutes=5),
        channel="phone",
        category="cash_not_credited",
        tid="T-000034",
        occurred_at=NOW - timedelta(minutes=21),
        amount_minor=890000,
        customer="+7 916 000-12-34",
        text="put in 8900, nothing credited",
    )
    result = ComplaintIntake(settings).submit(db, complaint, NOW - timedelta(minutes=5))
    db.execute(
        "UPDATE incidents SET complaints = complaints + 1, money_at_risk_minor = 890000,"
        " operations_affected = 1 WHERE id = %s",
        (payments,),
    )
    db.execute(
        "INSERT INTO incident_evidence (incident_id, kind, ref, ts, summary)"
        " VALUES (%s, 'complaint', %s, %s, 'complaint') ON CONFLICT DO NOTHING",
        (payments, complaint.ref, complaint.received_at),
    )
    return Shift(printer, payments, int(region["id"]), result.id)
