"""Complaint intake: store a complaint once, correlate it, attach it to what explains it.

Used by the HTTP API (:meth:`ComplaintIntake.submit`), by the collector for the MQTT topic
``support/complaints`` (:meth:`ComplaintIntake.store`, a :class:`collector.hooks.ComplaintSink`)
and by ``termwatch complaints import``. Idempotent by ``ref``: a known ref returns the first
result and adds nothing. The customer's number is kept only as its last 4 digits and a keyed
hash (:mod:`rules.pii`), and is never logged.

A complaint that no device incident explains counts towards a ``silent_fault`` on its
terminal: when the complaint rule's threshold is reached, the incident opens and every
unexplained complaint of its window is attached to it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from rules import addresses, correlation, incidents, pii
from rules.conditions import Evidence, evaluate_complaints
from rules.config import load_rules
from rules.facts import OpFact
from rules.journal import Changes, Conn, log_action
from rules.model import RuleSet
from terminals.contract import Complaint
from termwatch.db import Row
from termwatch.metrics import MESSAGES
from termwatch.settings import Settings

log = logging.getLogger(__name__)
ACTOR = "complaints"


@dataclass(frozen=True, slots=True)
class ComplaintResult:
    """What the API answers (api.md, Complaints). ``created`` is False for a known ref."""

    id: int
    ref: str
    tid: str | None
    matched_op_id: str | None
    incident_id: int | None
    verdict: str
    created: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "tid": self.tid,
            "matched_op_id": self.matched_op_id,
            "incident_id": self.incident_id,
            "verdict": self.verdict,
        }


class ComplaintIntake:
    """Stateless apart from its settings and rules; safe to share between threads."""

    def __init__(self, settings: Settings, rules: RuleSet | None = None) -> None:
        self._key = settings.pii_key
        self.rules = rules if rules is not None else load_rules(settings.rules_file)
        rule = self.rules.complaint_rule
        clause = rule.complaint_clause if rule is not None else None
        self._silent_lookback = clause.within if clause is not None else timedelta(0)

    def store(self, conn: Conn, complaints: Sequence[Complaint]) -> list[int | None]:
        """For the collector: store each complaint inside the caller's transaction; its new id,
        or None for a known ref. Event time is each complaint's ``received_at``."""
        out: list[int | None] = []
        for complaint in complaints:
            result = self.submit(conn, complaint, complaint.received_at)
            out.append(result.id if result.created else None)
        return out

    def submit(self, conn: Conn, complaint: Complaint, now: datetime) -> ComplaintResult:
        """Store and correlate one complaint; return its result.

        Runs in a transaction of its own (a savepoint when the caller has one open). Raises
        only database errors; every field has been validated by the :class:`Complaint` type.
        """
        known = _existing(conn, complaint.ref)
        if known is not None:
            MESSAGES.labels("complaints", "duplicate").inc()
            return known
        changes = Changes()
        with conn.transaction():
            result = self._submit(conn, complaint, now, changes)
        if result.created:
            changes.publish()
            MESSAGES.labels("complaints", "stored").inc()
            log.debug(
                "complaint %s: tid %s, operation %s, incident %s",
                result.ref,
                result.tid,
                result.matched_op_id,
                result.incident_id,
            )
        else:
            MESSAGES.labels("complaints", "duplicate").inc()
        return result

    def _submit(
        self, conn: Conn, complaint: Complaint, now: datetime, changes: Changes
    ) -> ComplaintResult:
        last4, digest = pii.protect(complaint.customer or "", self._key)
        tid = complaint.tid
        candidates: list[str] = []
        match: correlation.OpMatch | None = None
        if tid is None and complaint.address:
            candidates = [c.tid for c in addresses.find_terminals(conn, complaint.address)]
            if len(candidates) == 1:
                tid = candidates[0]
            else:
                # Several terminals at one address: the one with the customer's operation.
                found = [
                    (m, c) for c in candidates if (m := self._best_op(conn, c, complaint, last4))
                ]
                if found:
                    match, tid = max(found, key=lambda pair: pair[0].score)
        if tid is not None and match is None:
            match = self._best_op(conn, tid, complaint, last4)
        op = match.op if match is not None else None
        incident = None
        if tid is not None:
            at = op.ts if op is not None else complaint.occurred_at
            incident = correlation.explaining_incident(
                conn, tid, complaint.category, at, op, self._silent_lookback
            )
        row = conn.execute(
            "INSERT INTO complaints (ref, received_at, channel, category, tid, address,"
            " occurred_at, amount_minor, currency, customer_last4, customer_hash, text,"
            " matched_op_id, match_score, incident_id, verdict, utc_offset_s)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '', %s)"
            " ON CONFLICT (ref) DO NOTHING RETURNING id",
            (
                complaint.ref,
                complaint.received_at,
                complaint.channel,
                complaint.category,
                tid,
                _clean(complaint.address, complaint.customer),
                complaint.occurred_at,
                complaint.amount_minor,
                complaint.currency,
                last4,
                digest,
                _clean(complaint.text, complaint.customer),
                op.op_id if op is not None else None,
                round(match.score, 2) if match is not None else None,
                None,
                _offset_s(complaint.occurred_at),
            ),
        ).fetchone()
        if row is None:  # another process stored the same ref a moment ago
            known = _existing(conn, complaint.ref)
            assert known is not None
            return known
        complaint_id = int(row["id"])
        if incident is not None:
            attach(conn, incident, complaint_id, complaint, op)
        elif tid is not None:
            incident = self._silent_fault(conn, tid, complaint, now, changes)
        text = correlation.verdict(
            tid=tid,
            category=complaint.category,
            op=op,
            incident=incident,
            occurred_at=complaint.occurred_at,
            candidates=candidates,
        )
        conn.execute("UPDATE complaints SET verdict = %s WHERE id = %s", (text, complaint_id))
        return ComplaintResult(
            id=complaint_id,
            ref=complaint.ref,
            tid=tid,
            matched_op_id=op.op_id if op is not None else None,
            incident_id=int(incident["id"]) if incident is not None else None,
            verdict=text,
            created=True,
        )

    @staticmethod
    def _best_op(
        conn: Conn, tid: str, complaint: Complaint, last4: str | None
    ) -> correlation.OpMatch | None:
        return correlation.best_operation(
            conn,
            tid,
            category=complaint.category,
            occurred_at=complaint.occurred_at,
            amount_minor=complaint.amount_minor,
            customer_last4=last4,
        )

    def _silent_fault(
        self, conn: Conn, tid: str, complaint: Complaint, now: datetime, changes: Changes
    ) -> Row | None:
        """Open a silent fault when enough unexplained complaints gathered; return it if this
        complaint is now attached to one."""
        rule = self.rules.complaint_rule
        clause = rule.complaint_clause if rule is not None else None
        if rule is None or clause is None:
            return None
        at = complaint.received_at
        rows = conn.execute(
            "SELECT id, tid, ref, received_at, category, incident_id, matched_op_id"
            " FROM complaints"
            " WHERE tid = %s AND incident_id IS NULL AND received_at > %s AND received_at <= %s"
            " ORDER BY received_at",
            (tid, at - clause.within, at),
        ).fetchall()
        ev = evaluate_complaints(clause, rows, at)
        if not ev.proven:
            return None
        terminal = incidents.fetch_terminals(conn, [tid])[tid]
        refs = {e.ref for e in ev.evidence}
        ev.evidence.clear()  # the complaints are linked (and counted) as they are attached
        opened = incidents.open_incident(conn, self.rules, rule, terminal, ev, now, changes)
        if opened is None:
            return None
        incident = conn.execute(
            "SELECT id, tid, kind, opened_at, parent_id FROM incidents WHERE id = %s", (opened,)
        ).fetchone()
        assert incident is not None
        for row in rows:
            if row["ref"] in refs:
                _attach_row(conn, incident, row)
        return incident


def attach(
    conn: Conn, incident: Row, complaint_id: int, complaint: Complaint, op: OpFact | None
) -> None:
    """Attach a complaint (and its operation) to the incident that explains it."""
    _attach_row(
        conn,
        incident,
        {
            "id": complaint_id,
            "tid": incident["tid"],
            "ref": complaint.ref,
            "received_at": complaint.received_at,
            "category": complaint.category,
            "matched_op_id": op.op_id if op is not None else None,
        },
        op,
    )


def _attach_row(conn: Conn, incident: Row, row: Row, op: OpFact | None = None) -> None:
    conn.execute(
        "UPDATE complaints SET incident_id = %s WHERE id = %s", (incident["id"], row["id"])
    )
    new = incidents.add_evidence(
        conn,
        incident["id"],
        [
            Evidence(
                "complaint",
                row["ref"],
                row["received_at"],
                f"complaint {row['ref']}: {row['category'].replace('_', ' ')}",
            )
        ],
    )
    if not new:
        return
    ids = [incident["id"]] + ([incident["parent_id"]] if incident.get("parent_id") else [])
    conn.execute(
        "UPDATE incidents SET complaints = complaints + 1, updated_at = now() WHERE id = ANY(%s)",
        (ids,),
    )
    if op is None and row.get("matched_op_id"):
        op = correlation.operation(conn, row["tid"], row["matched_op_id"])
    if op is not None:
        if incident["kind"] == correlation.SILENT_FAULT and op.money_at_risk_minor == 0:
            # The terminal says "credited"; the customer says otherwise: the sum is at risk.
            op = replace(op, money_at_risk_minor=op.amount_minor)
        incidents.link_operations(conn, incident, [op])
    log_action(
        conn,
        incident["id"],
        row["received_at"],
        "updated",
        ACTOR,
        f"complaint {row['ref']} ({row['category']}) attached",
    )


def _existing(conn: Conn, ref: str) -> ComplaintResult | None:
    row = conn.execute(
        "SELECT id, ref, tid, matched_op_id, incident_id, verdict FROM complaints WHERE ref = %s",
        (ref,),
    ).fetchone()
    if row is None:
        return None
    return ComplaintResult(
        id=int(row["id"]),
        ref=row["ref"],
        tid=row["tid"],
        matched_op_id=row["matched_op_id"],
        incident_id=row["incident_id"],
        verdict=row["verdict"],
        created=False,
    )


def _offset_s(at: datetime) -> int | None:
    offset = at.utcoffset()
    return int(offset.total_seconds()) if offset is not None else None


def _clean(text: str | None, customer: str | None) -> str | None:
    """Free text without the customer's number in any spelling."""
    if text is None:
        return None
    if customer and len(customer.strip()) >= 4:
        text = text.replace(customer.strip(), "***" + customer.strip()[-4:])
    return pii.scrub(text)
