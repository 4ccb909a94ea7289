"""Incident rows: opening, reopening, clearing, resolving, evidence. The database decides.

Every function runs inside the caller's transaction and writes the matching
``incident_log`` row in it (the notification outbox), so a change and its notice commit
together or not at all. Opening relies on the partial unique index ``incidents_one_open``
(``INSERT ... ON CONFLICT DO NOTHING``) and every later change is a compare-and-set
``UPDATE``: two collectors evaluating one terminal can never open one incident twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import errors

from rules import silences, storms
from rules.conditions import Evaluation, Evidence
from rules.facts import OpFact, op_from_row
from rules.journal import RULES_ACTOR, Changes, Conn, log_action
from rules.model import Rule, RuleSet
from termwatch.db import Row

OPEN_COLUMNS = (
    "id, tid, kind, severity, status, rule, region, parent_id, is_group, opened_at,"
    " last_fault_at, cleared_at, check_at, silenced"
)


@dataclass(frozen=True, slots=True)
class TerminalFacts:
    """What gates opening: the terminal's region and whether it is offline or in service."""

    tid: str
    region: str | None
    service_mode: bool
    state: Mapping[str, Any] | None  # its terminal_state row, if it has spoken


def fetch_open(conn: Conn, tids: Sequence[str]) -> dict[tuple[str, str], Row]:
    """Unresolved incidents of these terminals, by ``(tid, kind)``."""
    if not tids:
        return {}
    rows = conn.execute(
        f"SELECT {OPEN_COLUMNS} FROM incidents WHERE tid = ANY(%s) AND status <> 'resolved'",
        (list(tids),),
    ).fetchall()
    return {(r["tid"], r["kind"]): r for r in rows}


def fetch_terminals(conn: Conn, tids: Iterable[str]) -> dict[str, TerminalFacts]:
    wanted = sorted(set(tids))
    if not wanted:
        return {}
    rows = conn.execute(
        "SELECT w.tid, t.region, s.tid AS seen, s.last_seen, s.heartbeat_interval_s, s.online,"
        " s.online_changed_at, s.offline_reason, s.service_mode"
        " FROM unnest(%s::text[]) AS w(tid)"
        " LEFT JOIN terminals t ON t.tid = w.tid LEFT JOIN terminal_state s ON s.tid = w.tid",
        (wanted,),
    ).fetchall()
    return {
        r["tid"]: TerminalFacts(
            tid=r["tid"],
            region=r["region"],
            service_mode=bool(r["service_mode"]),
            state=r if r["seen"] is not None else None,
        )
        for r in rows
    }


def add_evidence(conn: Conn, incident_id: int, items: Iterable[Evidence]) -> list[str]:
    """Link evidence; return the refs that were new (a link is made once)."""
    rows = [(incident_id, e.kind, e.ref, e.ts, e.summary[:500]) for e in items]
    if not rows:
        return []
    added: list[str] = []
    with conn.cursor() as cur:
        for row in rows:
            cur.execute(
                "INSERT INTO incident_evidence (incident_id, kind, ref, ts, summary)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING ref",
                row,
            )
            found = cur.fetchone()
            if found is not None:
                added.append(found["ref"])
    return added


def link_operations(conn: Conn, incident: Mapping[str, Any], ops: Iterable[OpFact]) -> int:
    """Link operations as evidence and add the new ones to the incident's (and its group's)
    ``operations_affected`` and ``money_at_risk_minor``. Returns how many were new."""
    unique = {op.op_id: op for op in ops}
    if not unique:
        return 0
    new = set(
        add_evidence(
            conn,
            incident["id"],
            (Evidence("operation", op.op_id, op.ts, op.describe()) for op in unique.values()),
        )
    )
    if not new:
        return 0
    money = sum(unique[ref].money_at_risk_minor for ref in new)
    ids = [incident["id"]] + ([incident["parent_id"]] if incident.get("parent_id") else [])
    conn.execute(
        "UPDATE incidents SET operations_affected = operations_affected + %s,"
        " money_at_risk_minor = money_at_risk_minor + %s, updated_at = now() WHERE id = ANY(%s)",
        (len(new), money, ids),
    )
    return len(new)


def affected_since(conn: Conn, rule: Rule, tid: str, since: datetime) -> list[OpFact]:
    """Operations of ``tid`` since ``since`` that ``rule`` counts as affected."""
    if not rule.affects:
        return []
    rows = conn.execute(
        "SELECT tid, msg_id, op_id, ts, outcome, amount_minor, currency, account_last4,"
        " money_at_risk_minor, steps FROM operations WHERE tid = %s AND ts >= %s ORDER BY ts",
        (tid, since),
    ).fetchall()
    ops = [op_from_row(r) for r in rows]
    return [op for op in ops if rule.affected_by(op.steps, op.money_at_risk_minor)]


def open_incident(
    conn: Conn,
    rules: RuleSet,
    rule: Rule,
    terminal: TerminalFacts,
    ev: Evaluation,
    now: datetime,
    changes: Changes,
) -> int | None:
    """Open (or, within ``reopen_window`` of its resolution, reopen) the incident that ``ev``
    proves. Returns its id, or None when nothing was opened: service mode, another process
    opened it first, or it was resolved after this proof (new evidence is needed).
    The caller checks inhibition; this function checks service mode.
    """
    assert ev.proof_ts is not None
    proof = ev.proof_ts
    if terminal.service_mode:
        return None
    last = conn.execute(
        "SELECT id, resolved_at FROM incidents WHERE tid = %s AND kind = %s AND status = 'resolved'"
        " ORDER BY resolved_at DESC LIMIT 1",
        (terminal.tid, rule.kind),
    ).fetchone()
    if last is not None:
        newest = ev.newest_evidence or proof
        if last["resolved_at"] >= newest:
            return None
        proof = max(proof, last["resolved_at"])
    silenced = silences.matches(
        conn,
        tid=terminal.tid,
        region=terminal.region,
        kind=rule.kind,
        now=now,
        severity=rule.severity,
    )
    check_at = ev.recheck_at
    if last is not None and last["resolved_at"] > proof - rule.reopen_window:
        try:
            with conn.transaction():
                row = conn.execute(
                    "UPDATE incidents SET status = 'open', resolved_at = NULL, resolved_by = NULL,"
                    " resolve_note = NULL, acknowledged_at = NULL, acknowledged_by = NULL,"
                    " cleared_at = NULL, last_fault_at = %s, check_at = %s, detected_at = %s,"
                    " silenced = %s, reopen_count = reopen_count + 1, updated_at = now(),"
                    " parent_id = CASE WHEN EXISTS (SELECT 1 FROM incidents p"
                    "   WHERE p.id = incidents.parent_id AND p.status <> 'resolved')"
                    "   THEN parent_id END"
                    f" WHERE id = %s AND status = 'resolved' RETURNING {OPEN_COLUMNS}",
                    (proof, check_at, now, silenced, last["id"]),
                ).fetchone()
        except errors.UniqueViolation:
            return None  # another process opened a new one meanwhile
        if row is None:
            return None
        log_action(conn, row["id"], proof, "reopened", RULES_ACTOR, ev.summary)
    else:
        details = {"for_s": rule.for_.total_seconds(), "summary": ev.summary}
        if ev.fault_start is not None:
            details["fault_start"] = ev.fault_start.isoformat()
        row = conn.execute(
            "INSERT INTO incidents (tid, kind, severity, status, title, rule, region, opened_at,"
            " last_fault_at, detected_at, check_at, silenced, details)"
            " VALUES (%s, %s, %s, 'open', %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (tid, kind) WHERE status <> 'resolved' DO NOTHING"
            f" RETURNING {OPEN_COLUMNS}",
            (
                terminal.tid,
                rule.kind,
                rule.severity,
                f"{rule.title} on {terminal.tid}",
                rule.name,
                terminal.region,
                proof,
                proof,
                now,
                check_at,
                silenced,
                json.dumps(details),
            ),
        ).fetchone()
        if row is None:
            return None
        log_action(conn, row["id"], proof, "opened", RULES_ACTOR, ev.summary)
    changes.opened.append((rule.kind, rule.severity))
    add_evidence(conn, row["id"], ev.evidence)
    ops = list(ev.operations)
    if rule.affects:
        since = ev.fault_start or proof
        ops.extend(affected_since(conn, rule, terminal.tid, max(since, now - timedelta(days=1))))
    link_operations(conn, row, ops)
    if rule.storm and terminal.region and row["parent_id"] is None:
        storms.group(conn, rules, rule, row, now, changes)
    return int(row["id"])


def mark_cleared(conn: Conn, rule: Rule, incident: Mapping[str, Any], cleared_at: datetime) -> bool:
    """Record that the condition stopped holding at ``cleared_at`` (once per episode)."""
    row = conn.execute(
        "UPDATE incidents SET cleared_at = %s, check_at = %s, updated_at = now()"
        " WHERE id = %s AND status <> 'resolved' AND cleared_at IS NULL RETURNING id",
        (cleared_at, cleared_at + rule.clear_for, incident["id"]),
    ).fetchone()
    return row is not None


def unclear(
    conn: Conn, incident: Mapping[str, Any], fault_at: datetime, check_at: datetime | None
) -> None:
    """The condition holds again before ``clear_for`` ran out: same incident, still open."""
    conn.execute(
        "UPDATE incidents SET cleared_at = NULL, check_at = %s,"
        " last_fault_at = GREATEST(last_fault_at, %s), updated_at = now()"
        " WHERE id = %s AND status <> 'resolved'",
        (check_at, fault_at, incident["id"]),
    )


def set_check(
    conn: Conn, incident_id: int, check_at: datetime | None, fault_at: datetime | None
) -> None:
    conn.execute(
        "UPDATE incidents SET check_at = %s, last_fault_at = GREATEST(last_fault_at, %s)"
        " WHERE id = %s AND status <> 'resolved'",
        (check_at, fault_at, incident_id),
    )


def resolve_cleared(
    conn: Conn, incident: Mapping[str, Any], resolved_at: datetime, changes: Changes
) -> bool:
    """Auto-resolve an incident whose condition stayed cleared for ``clear_for``."""
    row = conn.execute(
        "UPDATE incidents SET status = 'resolved', resolved_at = %s, resolved_by = %s,"
        " check_at = NULL, updated_at = now()"
        " WHERE id = %s AND status <> 'resolved' AND cleared_at IS NOT NULL"
        " RETURNING id, kind, severity, parent_id",
        (resolved_at, RULES_ACTOR, incident["id"]),
    ).fetchone()
    if row is None:
        return False
    log_action(conn, row["id"], resolved_at, "resolved", RULES_ACTOR, "condition cleared")
    changes.resolved.append((row["kind"], row["severity"]))
    if row["parent_id"] is not None:
        storms.resolve_parent_if_done(conn, row["parent_id"], resolved_at, RULES_ACTOR, changes)
    return True
