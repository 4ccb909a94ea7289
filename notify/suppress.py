"""Whether a waiting item is sent now, dropped, or held until later.

Judged when the item is due (after ``group_wait``), on the incident as it is then:

* an opened, repeated or escalated page is dropped when the incident is resolved or
  acknowledged, grouped under a parent (the parent is paged), inhibited (the rules engine
  set ``details.inhibited_by``, or the terminal has an unresolved ``terminal_offline``
  incident: what else is broken on an unreachable terminal is not news);
* a resolved message is dropped when the incident was never paged on that route (nobody
  needs to hear that a problem they never heard of is gone), and for the escalation
  audience when it was never escalated;
* anything about a silenced incident (``incidents.silenced``, kept by the rules engine from
  the ``silences`` table on event time) is dropped; when the silence ends the rules engine
  logs ``unsilenced`` and :mod:`notify.dispatch` pages the incident if it is still open and
  was not paged before;
* a ``major`` incident is held during the route's quiet hours until they end (``critical``
  always pages), then judged again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from notify.routes import Route
from termwatch.db import Row


@dataclass(frozen=True, slots=True)
class Verdict:
    """``action`` is ``send``, ``drop`` (with ``reason``) or ``hold`` (``reason``, ``until``)."""

    action: str
    reason: str | None = None
    until: datetime | None = None


SEND = Verdict("send")


def judge(
    conn: psycopg.Connection[Row], item: Row, incident: Row | None, route: Route, now: datetime
) -> Verdict:
    """The verdict on one waiting item (a ``notify_items`` row) at ``now``."""
    if incident is None:
        return Verdict("drop", "incident no longer exists")
    if item["event"] == "resolved":
        dropped = _resolved_drop(conn, item)
    else:
        dropped = _page_drop(conn, incident)  # opened, repeated, escalated
    if dropped:
        return Verdict("drop", dropped)
    if incident["silenced"]:
        return Verdict("drop", "silenced")
    if incident["severity"] == "major" and route.quiet_hours is not None:
        quiet_end = route.quiet_hours.until(now, route.timezone)
        if quiet_end is not None:
            return Verdict("hold", "quiet hours", quiet_end)
    return SEND


def _page_drop(conn: psycopg.Connection[Row], incident: Row) -> str | None:
    if incident["status"] == "resolved":
        return "resolved before it was sent"
    if incident["status"] == "acknowledged":
        return f"acknowledged by {incident['acknowledged_by'] or 'someone'}"
    if incident["parent_id"] is not None:
        return f"grouped under incident {incident['parent_id']}"
    inhibitor = inhibited_by(conn, incident)
    if inhibitor:
        return f"inhibited by {inhibitor}"
    return None


def _resolved_drop(conn: psycopg.Connection[Row], item: Row) -> str | None:
    state = conn.execute(
        "SELECT escalated_at, resolved_at, escalation_resolved_at FROM notify_state"
        " WHERE incident_id = %s AND route = %s",
        (item["incident_id"], item["route"]),
    ).fetchone()
    # A state already told of the resolution belongs to an earlier episode (before a reopen
    # that was not paged): nobody was paged for this one either.
    if item["audience"] == "escalation":
        if state is None or state["escalated_at"] is None or state["escalation_resolved_at"]:
            return "never escalated"
        return None
    if state is None or state["resolved_at"] is not None:
        return "never paged"
    return None


def inhibited_by(conn: psycopg.Connection[Row], incident: Row) -> str | None:
    """What inhibits ``incident`` (``details.inhibited_by``, or an open offline incident)."""
    marked = (incident.get("details") or {}).get("inhibited_by")
    if marked:
        return str(marked)
    if incident["kind"] == "terminal_offline" or incident["is_group"]:
        return None
    row = conn.execute(
        "SELECT id FROM incidents WHERE tid = %s AND kind = 'terminal_offline'"
        " AND status <> 'resolved' LIMIT 1",
        (incident["tid"],),
    ).fetchone()
    return f"terminal_offline incident {row['id']}" if row else None
