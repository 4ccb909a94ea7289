"""Reading the outbox: incident changes in ``incident_log`` become waiting items.

``incident_log`` rows are written by the rules engine (and by people acknowledging or
resolving) in the same transaction as the incident change, so a change is never lost and
never seen before it is committed. :func:`dispatch` takes the rows not yet dispatched,
routes each ``opened``/``reopened``/``resolved`` change to its service group's route, and
writes a waiting item due after the route's ``group_wait``, marking the rows dispatched in
the same transaction. ``unsilenced`` pages an incident still open that was not paged on the
route (it was opened during the silence). Other actions (updated, acknowledged, grouped,
silenced) make no item: their effect is seen when a waiting item is judged.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Final

import psycopg

from notify.routes import Route, Routes
from termwatch.db import Row

log = logging.getLogger(__name__)

BATCH: Final = 1000
_PAGE_ACTIONS: Final = frozenset({"opened", "reopened"})


def dispatch(conn: psycopg.Connection[Row], routes: Routes, now: datetime) -> int:
    """Turn undispatched ``incident_log`` rows into items; return how many rows were taken.

    Call inside a transaction: the items and the dispatched marks commit together. Rows
    locked by another dispatcher are skipped, so two workers never dispatch a row twice.
    """
    rows = conn.execute(
        "SELECT l.id, l.incident_id, l.action FROM incident_log l"
        " WHERE l.dispatched_at IS NULL ORDER BY l.id LIMIT %s FOR UPDATE SKIP LOCKED",
        (BATCH,),
    ).fetchall()
    if not rows:
        return 0
    for row in rows:
        action = row["action"]
        if action in _PAGE_ACTIONS:
            _enqueue(conn, routes, row, "opened", now)
        elif action == "resolved":
            _enqueue(conn, routes, row, "resolved", now)
        elif action == "unsilenced":
            _enqueue(conn, routes, row, "opened", now, unless_paged=True)
    conn.execute(
        "UPDATE incident_log SET dispatched_at = %s WHERE id = ANY(%s)",
        (now, [r["id"] for r in rows]),
    )
    return len(rows)


def _enqueue(
    conn: psycopg.Connection[Row],
    routes: Routes,
    log_row: Row,
    event: str,
    now: datetime,
    *,
    unless_paged: bool = False,
) -> None:
    incident = conn.execute(
        "SELECT * FROM incidents WHERE id = %s", (log_row["incident_id"],)
    ).fetchone()
    if incident is None:
        return
    if unless_paged and incident["status"] != "open":
        return
    for route in routes_of(conn, routes, incident):
        if not route.pages(incident["severity"]):
            continue
        if unless_paged and _paged(conn, incident["id"], route.name):
            continue
        audiences = ("primary", "escalation") if event == "resolved" else ("primary",)
        for audience in audiences:
            if audience == "escalation" and route.escalate is None:
                continue
            conn.execute(
                "INSERT INTO notify_items"
                " (incident_id, log_id, route, event, audience, created_at, due_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (incident_id, route, event, audience) WHERE done_at IS NULL"
                " DO NOTHING",
                (
                    incident["id"],
                    log_row["id"],
                    route.name,
                    event,
                    audience,
                    now,
                    now + route.group_wait,
                ),
            )


def _paged(conn: psycopg.Connection[Row], incident_id: int, route: str) -> bool:
    """Whether the incident's current episode was paged on the route."""
    row = conn.execute(
        "SELECT 1 FROM notify_state WHERE incident_id = %s AND route = %s AND resolved_at IS NULL",
        (incident_id, route),
    ).fetchone()
    return row is not None


def routes_of(conn: psycopg.Connection[Row], routes: Routes, incident: Row) -> list[Route]:
    """The routes an incident goes to: its terminal's service group's, else the default.

    A regional (group) incident goes to the service groups of the terminals grouped under
    it, or of the terminals of its region when none is grouped yet.
    """
    if incident["is_group"]:
        groups = [
            r["service_group"]
            for r in conn.execute(
                "SELECT DISTINCT t.service_group FROM incidents c"
                " JOIN terminals t ON t.tid = c.tid WHERE c.parent_id = %s"
                " ORDER BY 1",
                (incident["id"],),
            )
        ]
        if not groups and incident["region"]:
            groups = [
                r["service_group"]
                for r in conn.execute(
                    "SELECT DISTINCT service_group FROM terminals WHERE region = %s ORDER BY 1",
                    (incident["region"],),
                )
            ]
    else:
        row = conn.execute(
            "SELECT service_group FROM terminals WHERE tid = %s", (incident["tid"],)
        ).fetchone()
        groups = [row["service_group"]] if row else []
    found: dict[str, Route] = {}
    for group in groups or [None]:
        route = routes.for_group(group)
        found.setdefault(route.name, route)
    return list(found.values())
