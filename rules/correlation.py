"""Correlating a complaint: which operation it is about, which incident explains it, and a
verdict in plain words for the support agent.

Operations are looked for on the terminal that began from 45 minutes before to 15 minutes
after the time the customer gives (people remember late more often than early; an
operation's start is what its customer remembers), and scored:

* amount: the same amount +4, close (within 100 roubles or 20 %) +1.5, else -2;
* account: the last 4 digits of the customer's number equal to the operation's account +3;
* category fit: the step the complaint is about failed as it says +3, succeeded -2;
* time: up to +1.5 when close to the time given, less beyond 15 minutes;
* an operation already matched by another complaint -2.

The best operation scoring at least :data:`MIN_SCORE` is the match; a complaint may match
none. Scores are additive and documented so that a support lead can reason about a match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Final

from rules.facts import OpFact, op_from_row
from rules.journal import Conn
from termwatch.db import Row

BEFORE: Final = timedelta(minutes=45)
AFTER: Final = timedelta(minutes=15)
MIN_SCORE: Final = 3.5
#: The longest an operation takes from start to end (the index is on its end).
MAX_OPERATION: Final = timedelta(minutes=10)

#: Incident kinds that can explain each complaint category (best first). A silent fault
#: explains any category.
EXPLAINS: Final[dict[str, tuple[str, ...]]] = {
    "no_receipt": ("printer_paper_out", "printer_jam", "printer_fault"),
    "payment_failed": (
        "payment_failures",
        "cash_acceptor_jam",
        "cash_acceptor_fault",
        "cash_acceptor_full",
        "terminal_offline",
    ),
    "cash_not_credited": (
        "cash_acceptor_jam",
        "cash_acceptor_fault",
        "payment_failures",
        "cash_acceptor_full",
    ),
    "terminal_out_of_order": (
        "terminal_offline",
        "cash_acceptor_fault",
        "cash_acceptor_jam",
        "cash_acceptor_full",
        "payment_failures",
        "printer_fault",
        "printer_jam",
        "printer_paper_out",
    ),
    "other": (),
}
SILENT_FAULT: Final = "silent_fault"
#: How the verdict names an incident kind.
PHRASES: Final[dict[str, str]] = {
    "printer_paper_out": "printer out of paper",
    "printer_jam": "printer jammed",
    "printer_fault": "printer fault",
    "cash_acceptor_jam": "cash acceptor jammed",
    "cash_acceptor_full": "cash acceptor full",
    "cash_acceptor_fault": "cash acceptor fault",
    "terminal_offline": "terminal offline",
    "payment_failures": "payments failing",
    "silent_fault": "several customers report trouble the terminal does not",
    "clock_skew": "terminal clock wrong",
}


@dataclass(frozen=True, slots=True)
class OpMatch:
    op: OpFact
    score: float


def candidate_operations(conn: Conn, tid: str, occurred_at: datetime) -> list[OpFact]:
    """Operations of ``tid`` that began within the window around ``occurred_at``."""
    rows = conn.execute(
        "SELECT tid, msg_id, op_id, ts, started, outcome, amount_minor, currency,"
        " account_last4, money_at_risk_minor, steps FROM operations"
        " WHERE tid = %s AND ts BETWEEN %s AND %s ORDER BY ts",
        (tid, occurred_at - BEFORE, occurred_at + AFTER + MAX_OPERATION),
    ).fetchall()
    ops = [op_from_row(r) for r in rows]
    return [o for o in ops if occurred_at - BEFORE <= o.began <= occurred_at + AFTER]


def operation(conn: Conn, tid: str, op_id: str) -> OpFact | None:
    """The newest stored operation ``op_id`` of ``tid``."""
    row = conn.execute(
        "SELECT tid, msg_id, op_id, ts, started, outcome, amount_minor, currency,"
        " account_last4, money_at_risk_minor, steps FROM operations WHERE tid = %s AND op_id = %s"
        " ORDER BY ts DESC LIMIT 1",
        (tid, op_id),
    ).fetchone()
    return op_from_row(row) if row is not None else None


def _step_result(op: OpFact, name: str) -> str | None:
    step = op.step(name)
    return step.result if step is not None else None


def category_fit(category: str, op: OpFact) -> float:
    """How well what happened to ``op`` fits what the customer complains about."""
    receipt = _step_result(op, "receiptPrinted")
    sent = _step_result(op, "paymentSent")
    cash = _step_result(op, "cashAccepted")
    if category == "no_receipt":
        if receipt in ("failed", "timeout"):
            return 3.0
        return -2.0 if receipt == "success" else 0.0
    if category == "payment_failed":
        if op.outcome == "failed" or sent in ("failed", "timeout"):
            return 3.0
        return -1.0 if op.outcome == "completed" else 0.0
    if category == "cash_not_credited":
        if op.money_at_risk_minor > 0:
            return 3.0
        if cash == "success":
            return 1.0  # the terminal says credited: a silent fault looks exactly like this
        return -1.0
    if category == "terminal_out_of_order":
        return 1.0 if op.outcome in ("failed", "cancelled") else 0.0
    return 0.0


def score_operation(
    op: OpFact,
    *,
    category: str,
    occurred_at: datetime,
    amount_minor: int | None,
    customer_last4: str | None,
    already_matched: bool,
) -> float:
    total = category_fit(category, op)
    if amount_minor is not None:
        diff = abs(op.amount_minor - amount_minor)
        if diff == 0:
            total += 4.0
        elif diff <= max(10_000, op.amount_minor // 5):
            total += 1.5
        else:
            total -= 2.0
    if customer_last4 is not None and op.account_last4 == customer_last4:
        total += 3.0
    minutes = abs((op.began - occurred_at).total_seconds()) / 60
    total += 1.5 * (1 - minutes / 15) if minutes <= 15 else -(minutes - 15) / 30
    if already_matched:
        total -= 2.0
    return total


def best_operation(
    conn: Conn,
    tid: str,
    *,
    category: str,
    occurred_at: datetime,
    amount_minor: int | None,
    customer_last4: str | None,
) -> OpMatch | None:
    """The operation on ``tid`` the complaint is most likely about, or None."""
    ops = candidate_operations(conn, tid, occurred_at)
    if not ops:
        return None
    matched = {
        r["matched_op_id"]
        for r in conn.execute(
            "SELECT matched_op_id FROM complaints WHERE tid = %s AND matched_op_id = ANY(%s)",
            (tid, [op.op_id for op in ops]),
        ).fetchall()
    }
    scored = [
        OpMatch(
            op,
            score_operation(
                op,
                category=category,
                occurred_at=occurred_at,
                amount_minor=amount_minor,
                customer_last4=customer_last4,
                already_matched=op.op_id in matched,
            ),
        )
        for op in ops
    ]
    best = max(scored, key=lambda m: (m.score, -abs((m.op.began - occurred_at).total_seconds())))
    return best if best.score >= MIN_SCORE else None


def explaining_incident(
    conn: Conn,
    tid: str,
    category: str,
    at: datetime,
    op: OpFact | None,
    silent_lookback: timedelta = timedelta(0),
) -> Row | None:
    """The device incident (or silent fault) on ``tid`` that explains the complaint: one
    that has ``op`` as evidence, else one of a fitting kind whose episode covers ``at``.

    A silent fault opens only once complaints gathered, hours after the first payments it
    swallowed: it covers ``silent_lookback`` before its opening too.
    """
    kinds = [*EXPLAINS.get(category, ()), SILENT_FAULT]
    columns = "i.id, i.tid, i.kind, i.opened_at, i.resolved_at, i.status, i.parent_id"
    if op is not None:
        linked = conn.execute(
            f"SELECT {columns} FROM incident_evidence e JOIN incidents i ON i.id = e.incident_id"
            " WHERE e.kind = 'operation' AND e.ref = %s AND i.tid = %s AND i.kind = ANY(%s)"
            " AND NOT i.is_group ORDER BY i.opened_at DESC LIMIT 1",
            (op.op_id, tid, kinds),
        ).fetchone()
        if linked is not None:
            return linked
    # With the operation its time is exact; without it the customer's memory (within
    # 15 minutes) is all there is, and only "out of order" complaints usually have no operation.
    if op is not None:
        slack = timedelta(minutes=2)
    elif category == "terminal_out_of_order":
        slack = timedelta(minutes=15)
    else:
        slack = timedelta(minutes=5)
    rows = conn.execute(
        f"SELECT {columns} FROM incidents i"
        " WHERE i.tid = %(tid)s AND i.kind = ANY(%(kinds)s) AND NOT i.is_group"
        " AND i.opened_at <= %(at)s + %(slack)s"
        "   + CASE WHEN i.kind = %(silent)s THEN %(lookback)s ELSE interval '0' END"
        " AND (i.resolved_at IS NULL OR i.resolved_at >= %(at)s - %(slack)s)"
        " ORDER BY i.opened_at DESC",
        {
            "tid": tid,
            "kinds": kinds,
            "at": at,
            "slack": slack,
            "silent": SILENT_FAULT,
            "lookback": silent_lookback,
        },
    ).fetchall()
    if not rows:
        return None
    return min(rows, key=lambda r: kinds.index(r["kind"]))


def hhmm(ts: datetime, tz: tzinfo | None) -> str:
    return ts.astimezone(tz).strftime("%H:%M") if tz is not None else ts.strftime("%H:%M")


def money(amount_minor: int, currency: str) -> str:
    return f"{amount_minor / 100:.2f} {currency}"


def verdict(
    *,
    tid: str | None,
    category: str,
    op: OpFact | None,
    incident: Mapping[str, Any] | None,
    occurred_at: datetime,
    candidates: Sequence[str] = (),
) -> str:
    """Plain words for the agent: what happened to the customer's operation and why."""
    tz = occurred_at.tzinfo
    if tid is None:
        if candidates:
            return "terminal not identified: the address fits several terminals"
        return "terminal not identified: no registered terminal matches the address"
    cause = ""
    if incident is not None:
        phrase = PHRASES.get(incident["kind"], incident["kind"].replace("_", " "))
        cause = f" ({phrase} since {hhmm(incident['opened_at'], tz)})"
    if op is None:
        start, end = hhmm(occurred_at - BEFORE, tz), hhmm(occurred_at + AFTER, tz)
        text = f"no matching operation on {tid} between {start} and {end}"
        if incident is not None:
            return f"{text}; explained by an incident{cause}"
        return f"{text}; no device fault explains it"
    when = hhmm(op.ts, tz)
    amount = money(op.amount_minor, op.currency)
    sent = _step_result(op, "paymentSent")
    receipt = _step_result(op, "receiptPrinted")
    if op.money_at_risk_minor > 0:
        return (
            f"cash accepted, payment not sent{cause}: money at risk "
            f"({money(op.money_at_risk_minor, op.currency)}, operation {op.op_id} at {when})"
        )
    if sent in ("failed", "timeout") or op.outcome == "failed":
        return f"payment of {amount} at {when} failed{cause}; no cash was kept"
    if receipt in ("failed", "timeout"):
        return f"receipt not printed{cause}; payment of {amount} at {when} credited"
    if incident is not None and incident["kind"] == SILENT_FAULT:
        return (
            f"the terminal reports the payment of {amount} at {when} as completed, but "
            f"{PHRASES[SILENT_FAULT]}: checked with the payment host"
        )
    if category in ("cash_not_credited", "payment_failed"):
        return (
            f"the terminal reports the payment of {amount} at {when} as completed and sent; "
            "no device fault explains the complaint"
        )
    return f"operation of {amount} at {when} completed normally{cause}"
