"""Repeat and escalation: chasing an incident that nobody has acknowledged.

For every incident paged on a route and still ``open`` (not acknowledged, not resolved):

* a ``critical`` one is paged again (``repeated``) once ``repeat_interval`` has passed since
  it was last paged, for as long as nobody acknowledges it (zero turns repeats off);
* it is escalated once, to the route's escalation targets, when ``escalate.after`` has
  passed since it was first paged.

Both are written as waiting items due at once, so they go through the same judging
(quiet hours, inhibition) as first pages; silenced and grouped incidents are not chased.
A repeat or escalation judged not to be sent counts as done (:mod:`notify.flush`), so a
suppressed one is not written again at every pass. Times come from the caller's clock.
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from notify.routes import Routes
from termwatch.db import Row


def chase(conn: psycopg.Connection[Row], routes: Routes, now: datetime) -> int:
    """Write the repeat and escalation items due at ``now``; return how many were written.

    Call inside a transaction. An item already waiting for the same incident, route and
    event is not written twice.
    """
    rows = conn.execute(
        "SELECT s.incident_id, s.route, s.first_paged_at, s.last_paged_at, s.escalated_at,"
        " i.severity FROM notify_state s JOIN incidents i ON i.id = s.incident_id"
        " WHERE s.resolved_at IS NULL AND i.status = 'open' AND NOT i.silenced"
        " AND i.parent_id IS NULL"
    ).fetchall()
    written = 0
    for row in rows:
        route = routes.route(row["route"])
        every = route.repeat_interval
        if (
            row["severity"] == "critical"
            and every.total_seconds() > 0
            and now >= row["last_paged_at"] + every
        ):
            written += _item(conn, row, "repeated", "primary", now)
        if (
            route.escalate is not None
            and row["escalated_at"] is None
            and now >= row["first_paged_at"] + route.escalate.after
        ):
            written += _item(conn, row, "escalated", "escalation", now)
    return written


def _item(conn: psycopg.Connection[Row], row: Row, event: str, audience: str, now: datetime) -> int:
    cur = conn.execute(
        "INSERT INTO notify_items (incident_id, route, event, audience, created_at, due_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (incident_id, route, event, audience) WHERE done_at IS NULL DO NOTHING",
        (row["incident_id"], row["route"], event, audience, now, now),
    )
    return cur.rowcount
