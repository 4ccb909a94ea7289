"""What the rules read from the database: the current-state tables, through their indexes.

Nothing here scans history: device fields are looked up by terminal or by fault value
(``device_state_value``), silent terminals through ``terminal_state_last_seen``, events and
operations of one terminal within one window through ``(tid, ts)``, incidents due a check
through ``incidents_check_at``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from rules.conditions import FieldState
from rules.facts import StateValue, event_from_row, op_from_row
from rules.journal import Conn
from rules.model import CountClause, EventMatch, Rule, StateClause
from termwatch.db import Row

#: When a terminal that is online last spoke: its newest message, or its coming back online
#: when later (a terminal that just said ``online`` gets a full heartbeat window), unless that
#: word was stamped later than event time ``now`` (see :func:`rules.conditions.evaluate_absence`).
SPOKE_SQL = (
    "CASE WHEN s.online AND s.online_changed_at <= %(now)s"
    " THEN GREATEST(s.last_seen, s.online_changed_at) ELSE s.last_seen END"
)


def device_state(conn: Conn, tids: Iterable[str]) -> dict[str, dict[tuple[str, str], FieldState]]:
    """Every device field of these terminals: ``{tid: {(device, field): FieldState}}``."""
    wanted = sorted(set(tids))
    out: dict[str, dict[tuple[str, str], FieldState]] = defaultdict(dict)
    if not wanted:
        return out
    rows = conn.execute(
        "SELECT tid, device, field, value, since FROM device_state WHERE tid = ANY(%s)",
        (wanted,),
    ).fetchall()
    for r in rows:
        out[r["tid"]][(r["device"], r["field"])] = FieldState(r["value"], r["since"])
    return out


def applied(conn: Conn, values: Iterable[StateValue]) -> list[StateValue]:
    """Those of ``values`` that moved the current state: the collector logged the field
    entering that value at that time (``device_state_log``). A value from a snapshot or an
    event older than the state held is stored in history but never applied, so it is left
    out: it opens, reopens and resolves nothing."""
    wanted = list(values)
    if not wanted:
        return []
    rows = conn.execute(
        "SELECT l.tid, l.device, l.field, l.value, l.ts FROM device_state_log l"
        " JOIN unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])"
        " AS w(tid, device, field, value, ts) USING (tid, device, field, value, ts)",
        (
            [v.tid for v in wanted],
            [v.device for v in wanted],
            [v.field for v in wanted],
            [v.value for v in wanted],
            [v.ts for v in wanted],
        ),
    ).fetchall()
    seen = {(r["tid"], r["device"], r["field"], r["value"], r["ts"]) for r in rows}
    return [v for v in wanted if (v.tid, v.device, v.field, v.value, v.ts) in seen]


def count_items(conn: Conn, clause: CountClause, tid: str, since: datetime) -> list[Any]:
    """The events or operations of ``tid`` after ``since`` that ``clause`` may count or be
    reset by, oldest first."""
    if clause.source == "events":
        assert isinstance(clause.match, EventMatch)
        names = [clause.match.name]
        if isinstance(clause.reset, EventMatch):
            names.append(clause.reset.name)
        rows = conn.execute(
            "SELECT tid, msg_id, ts, device, name, payload FROM events"
            " WHERE tid = %s AND ts > %s AND name = ANY(%s) ORDER BY ts",
            (tid, since, names),
        ).fetchall()
        return [event_from_row(r) for r in rows]
    rows = conn.execute(
        "SELECT tid, msg_id, op_id, ts, started, outcome, amount_minor, currency,"
        " account_last4, money_at_risk_minor, steps FROM operations"
        " WHERE tid = %s AND ts > %s ORDER BY ts",
        (tid, since),
    ).fetchall()
    return [op_from_row(r) for r in rows]


def shortest_interval(conn: Conn) -> timedelta:
    """The shortest heartbeat interval of the fleet (60 s when nothing has spoken yet)."""
    row = conn.execute("SELECT min(heartbeat_interval_s) AS s FROM terminal_state").fetchone()
    return timedelta(seconds=int(row["s"] if row is not None and row["s"] else 60))


def silent_terminals(
    conn: Conn, rule: Rule, missed: int, now: datetime, shortest: timedelta
) -> list[str]:
    """Terminals out of service mode, silent (or said offline) with no incident of ``rule``
    open or resolved since that silence was proven. ``shortest``: :func:`shortest_interval`,
    which lets the index on ``last_seen`` skip every terminal heard from recently."""
    rows = conn.execute(
        "WITH quiet AS (SELECT tid FROM terminal_state WHERE last_seen <= %(bound)s"
        " UNION SELECT tid FROM terminal_state WHERE NOT online)"
        " SELECT s.tid FROM quiet JOIN terminal_state s USING (tid) WHERE NOT s.service_mode"
        " AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.tid = s.tid AND i.kind = %(kind)s"
        f"   AND (i.status <> 'resolved' OR i.resolved_at >= {SPOKE_SQL}"
        "        + make_interval(secs => s.heartbeat_interval_s * %(n)s)))"
        " ORDER BY s.tid",
        {"bound": now - missed * shortest, "kind": rule.kind, "n": missed, "now": now},
    ).fetchall()
    return [r["tid"] for r in rows]


def terminals_in_fault(conn: Conn, rule: Rule, clause: StateClause, now: datetime) -> list[str]:
    """Terminals whose field holds one of ``clause``'s values for at least the rule's ``for``
    with no incident of the rule open or resolved since that was proven."""
    rows = conn.execute(
        "SELECT d.tid FROM device_state d WHERE d.device = %(device)s"
        " AND d.field = %(field)s AND d.value = ANY(%(values)s)"
        " AND d.since <= %(due)s AND NOT EXISTS (SELECT 1 FROM incidents i"
        "   WHERE i.tid = d.tid AND i.kind = %(kind)s"
        "   AND (i.status <> 'resolved' OR i.resolved_at >= d.since + %(for)s))",
        {
            "device": clause.device,
            "field": clause.field,
            "values": sorted(clause.values),
            "due": now - rule.for_,
            "kind": rule.kind,
            "for": rule.for_,
        },
    ).fetchall()
    return [r["tid"] for r in rows]


def due_incidents(conn: Conn, now: datetime, columns: str) -> list[Row]:
    """Unresolved incidents (not groups) whose ``check_at`` has come, by terminal and kind."""
    return conn.execute(
        f"SELECT {columns} FROM incidents"
        " WHERE status <> 'resolved' AND check_at IS NOT NULL AND check_at <= %s"
        " AND NOT is_group ORDER BY tid, kind",
        (now,),
    ).fetchall()
