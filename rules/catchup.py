"""Correlation that catches up: complaints correlated again when what explains them arrives.

A complaint can reach termwatch before its operation (the CRM is faster than telemetry, a
terminal flushes its store-and-forward queue, the collector drains a backlog) or before the
incident that explains it opens. The rule engine calls:

* :func:`operations_stored` with the operations of each batch: the complaints on those
  terminals still without a matched operation, whose window (45 minutes before to 15 after
  ``occurred_at``) covers an operation's start, are correlated again;
* :func:`incident_opened` when an incident opens: the terminal's complaints still without an
  incident from before it are correlated again, and linked to it when it explains them.

A complaint whose match, incident or verdict changes is updated in place (so the API, for
the same ``ref``, the incident, the card and the console all show the new result) and gets a
``complaint_log`` row; attaching it to an incident also adds an ``updated`` incident log row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from rules import correlation
from rules.facts import OpFact
from rules.intake import _attach_row
from rules.journal import Conn
from rules.model import RuleSet

log = logging.getLogger(__name__)

_COLUMNS = ", ".join(
    f"c.{name}"
    for name in [
        "id",
        "ref",
        "tid",
        "received_at",
        "category",
        "occurred_at",
        "amount_minor",
        "customer_last4",
        "matched_op_id",
        "match_score",
        "incident_id",
        "verdict",
        "utc_offset_s",
    ]
)


def _lookback(rules: RuleSet) -> timedelta:
    rule = rules.complaint_rule
    clause = rule.complaint_clause if rule is not None else None
    return clause.within if clause is not None else timedelta(0)


def operations_stored(conn: Conn, rules: RuleSet, ops: Iterable[OpFact], now: datetime) -> int:
    """Correlate again the unmatched complaints these operations may be about; how many
    changed."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    for op in ops:
        lo, hi = spans.get(op.tid, (op.began, op.began))
        spans[op.tid] = (min(lo, op.began), max(hi, op.began))
    if not spans:
        return 0
    tids = sorted(spans)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM complaints c"
        " JOIN unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS w(tid, lo, hi)"
        " ON c.tid = w.tid"
        " WHERE c.matched_op_id IS NULL AND c.occurred_at BETWEEN w.lo AND w.hi"
        " ORDER BY c.received_at, c.id",
        (
            tids,
            [spans[t][0] - correlation.AFTER for t in tids],
            [spans[t][1] + correlation.BEFORE for t in tids],
        ),
    ).fetchall()
    return sum(_again(conn, rules, row, now, "operation stored") for row in rows)


def incident_opened(
    conn: Conn, rules: RuleSet, tid: str, opened_at: datetime, now: datetime
) -> int:
    """Correlate again the complaints on ``tid`` without an incident that the incident opened
    at ``opened_at`` may explain; how many changed."""
    since = opened_at - max(_lookback(rules), correlation.BEFORE + correlation.AFTER)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM complaints c"
        " WHERE c.tid = %s AND c.incident_id IS NULL AND c.received_at > %s"
        " ORDER BY c.received_at, c.id",
        (tid, since),
    ).fetchall()
    return sum(_again(conn, rules, row, now, "incident opened") for row in rows)


def _again(conn: Conn, rules: RuleSet, row: dict[str, object], now: datetime, why: str) -> bool:
    tid = str(row["tid"])
    category = str(row["category"])
    occurred_at = row["occurred_at"]
    assert isinstance(occurred_at, datetime)
    offset = row["utc_offset_s"]
    if isinstance(offset, int):  # the verdict speaks in the complaint's own time zone
        occurred_at = occurred_at.astimezone(timezone(timedelta(seconds=offset)))
    op: OpFact | None = None
    score = row["match_score"]
    if row["matched_op_id"] is not None:
        op = correlation.operation(conn, tid, str(row["matched_op_id"]))
    else:
        amount = row["amount_minor"]
        last4 = row["customer_last4"]
        match = correlation.best_operation(
            conn,
            tid,
            category=category,
            occurred_at=occurred_at,
            amount_minor=int(amount) if isinstance(amount, int) else None,
            customer_last4=str(last4) if last4 is not None else None,
        )
        if match is not None:
            op, score = match.op, round(match.score, 2)
    incident = None
    if row["incident_id"] is None:
        at = op.ts if op is not None else occurred_at
        incident = correlation.explaining_incident(conn, tid, category, at, op, _lookback(rules))
    else:
        incident = conn.execute(
            "SELECT id, tid, kind, opened_at, resolved_at, status, parent_id FROM incidents"
            " WHERE id = %s",
            (row["incident_id"],),
        ).fetchone()
    op_id = op.op_id if op is not None else None
    incident_id = int(incident["id"]) if incident is not None else None
    text = correlation.verdict(
        tid=tid, category=category, op=op, incident=incident, occurred_at=occurred_at
    )
    if (op_id, incident_id, text) == (row["matched_op_id"], row["incident_id"], row["verdict"]):
        return False
    conn.execute(
        "UPDATE complaints SET matched_op_id = %s, match_score = %s, verdict = %s WHERE id = %s",
        (op_id, score, text, row["id"]),
    )
    if incident is not None and row["incident_id"] is None:
        _attach_row(conn, incident, {**row, "matched_op_id": op_id}, op)
    note = f"correlated again ({why})"
    conn.execute(
        "INSERT INTO complaint_log (complaint_id, at, matched_op_id, incident_id, verdict, note)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (row["id"], now, op_id, incident_id, text, note),
    )
    log.debug("complaint %s %s: operation %s, incident %s", row["ref"], note, op_id, incident_id)
    return True
