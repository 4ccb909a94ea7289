"""A complaint's verdict in the reader's language, from the facts correlation stored.

Correlation (:mod:`rules.correlation`) decides which operation a complaint is about and
which incident explains it, and stores both (``matched_op_id``, ``incident_id``) beside an
English sentence. The console does not show that sentence: it reads the matched operation
and the incident again and says the same thing in the reader's language, times in the
reader's time zone and money as the reader writes it. The cases follow
:func:`rules.correlation.verdict` one for one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Final

from termwatch.db import Row
from termwatch.web.i18n import money, text
from termwatch.web.models import ComplaintView, Operation

#: The window correlation looks in when no operation matched (rules.correlation).
BEFORE: Final = timedelta(minutes=45)
AFTER: Final = timedelta(minutes=15)

#: Columns that :func:`facts_from` reads, for a query on complaints ``c``: the matched
#: operation (newest report) and the linked incident.
FACT_COLUMNS: Final = (
    "o.ts AS op_ts, o.amount_minor AS op_amount, o.currency AS op_currency,"
    " o.outcome AS op_outcome, o.money_at_risk_minor AS op_risk, o.steps AS op_steps,"
    " vi.kind AS incident_kind, vi.opened_at AS incident_opened_at"
)
FACT_JOINS: Final = (
    " LEFT JOIN LATERAL (SELECT ts, amount_minor, currency, outcome, money_at_risk_minor, steps"
    "  FROM operations WHERE tid = c.tid AND op_id = c.matched_op_id ORDER BY ts DESC LIMIT 1)"
    " o ON c.matched_op_id IS NOT NULL"
    " LEFT JOIN incidents vi ON vi.id = c.incident_id"
)


@dataclass(frozen=True, slots=True)
class OpFacts:
    op_id: str
    ts: datetime
    amount_minor: int
    currency: str
    outcome: str
    money_at_risk_minor: int
    results: dict[str, str]


@dataclass(frozen=True, slots=True)
class VerdictFacts:
    """What a verdict is made of: the complaint, its operation and its incident."""

    tid: str | None
    category: str
    occurred_at: datetime
    op: OpFacts | None
    incident_kind: str | None
    incident_opened_at: datetime | None


def facts_from(row: Row, complaint: ComplaintView) -> VerdictFacts:
    """The facts of ``complaint`` from a row selected with :data:`FACT_COLUMNS`."""
    op = None
    if complaint.matched_op_id is not None and row.get("op_ts") is not None:
        op = OpFacts(
            op_id=complaint.matched_op_id,
            ts=row["op_ts"],
            amount_minor=row["op_amount"],
            currency=row["op_currency"],
            outcome=row["op_outcome"],
            money_at_risk_minor=row["op_risk"],
            results=_results(row["op_steps"]),
        )
    return VerdictFacts(
        tid=complaint.tid,
        category=complaint.category,
        occurred_at=complaint.occurred_at,
        op=op,
        incident_kind=row.get("incident_kind"),
        incident_opened_at=row.get("incident_opened_at"),
    )


def facts_of(complaint: ComplaintView, op: Operation | None, incident: Any) -> VerdictFacts:
    """The facts of ``complaint`` from an operation and incident already read."""
    return VerdictFacts(
        tid=complaint.tid,
        category=complaint.category,
        occurred_at=complaint.occurred_at,
        op=OpFacts(
            op_id=op.op_id,
            ts=op.ts,
            amount_minor=op.amount_minor,
            currency=op.currency,
            outcome=op.outcome,
            money_at_risk_minor=op.money_at_risk_minor,
            results={s.step: s.result for s in op.steps},
        )
        if op is not None
        else None,
        incident_kind=getattr(incident, "kind", None),
        incident_opened_at=getattr(incident, "opened_at", None),
    )


def _results(steps: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for step in steps or []:
        if isinstance(step, dict) and isinstance(step.get("step"), str):
            found[step["step"]] = str(step.get("result", ""))
    return found


def _hhmm(ts: datetime, tz: tzinfo) -> str:
    return ts.astimezone(tz).strftime("%H:%M")


def render(facts: VerdictFacts, lang: str, tz: tzinfo) -> str:
    """The verdict of ``facts`` in ``lang``, times in ``tz``."""
    if facts.tid is None:
        return text(lang, "v.no_terminal")
    cause = ""
    if facts.incident_kind is not None:
        opened = facts.incident_opened_at
        cause = text(
            lang,
            "v.cause",
            kind=text(lang, f"kind.{facts.incident_kind}"),
            since=_hhmm(opened, tz) if opened else "",
        )
    op = facts.op
    if op is None:
        line = text(
            lang,
            "v.no_operation",
            tid=facts.tid,
            start=_hhmm(facts.occurred_at - BEFORE, tz),
            end=_hhmm(facts.occurred_at + AFTER, tz),
        )
        if facts.incident_kind is not None:
            return line + text(lang, "v.explained", cause=cause)
        return line + text(lang, "v.no_fault")
    when = _hhmm(op.ts, tz)
    amount = money(lang, op.amount_minor, op.currency)
    sent = op.results.get("paymentSent")
    receipt = op.results.get("receiptPrinted")
    if op.money_at_risk_minor > 0:
        return text(
            lang,
            "v.cash_at_risk",
            cause=cause,
            cash=money(lang, op.money_at_risk_minor, op.currency),
            op_id=op.op_id,
            at=when,
        )
    if sent in ("failed", "timeout") or op.outcome == "failed":
        return text(lang, "v.failed", amount=amount, at=when, cause=cause)
    if receipt in ("failed", "timeout"):
        return text(lang, "v.no_receipt", amount=amount, at=when, cause=cause)
    if facts.incident_kind == "silent_fault":
        return text(lang, "v.silent", amount=amount, at=when)
    if facts.category in ("cash_not_credited", "payment_failed"):
        return text(lang, "v.completed_no_fault", amount=amount, at=when)
    return text(lang, "v.completed", amount=amount, at=when, cause=cause)
