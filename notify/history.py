"""What was sent about an incident, and how many messages each group received.

:func:`deliveries` is what the incident page shows: every delivery attempt of every message
that covered the incident, notifications still waiting for their first attempt, and the
pages that were deliberately not sent (suppressed, held) with the reason.
:func:`summary` counts messages per route (service group) and event, for reports.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row


def deliveries(conn: psycopg.Connection[Any], incident_id: int) -> list[dict[str, Any]]:
    """The delivery history of one incident, oldest first.

    Each entry is a dict with:

    * ``at`` (datetime): when it happened (for ``pending``: when the next attempt is due;
      for ``held``: when the hold ends);
    * ``event``: ``opened``, ``repeated``, ``escalated`` or ``resolved``;
    * ``route``: the service group route (or ``default``);
    * ``target``: the target's name in the routes file (``log`` when the route has none),
      never its URL; ``target_type``: ``webhook``, ``log`` or the Apprise scheme;
      both None for ``suppressed`` and ``held``;
    * ``result``: ``sent``, ``retry`` (failed, will be tried again), ``failed`` (given up),
      ``pending`` (not tried yet), ``suppressed`` (deliberately not sent) or ``held``
      (waiting for quiet hours or a silence to end);
    * ``error``: why it failed, was suppressed or held; None when sent;
    * ``attempt``: the attempt number (1 for the first), None when not an attempt;
    * ``message_id``: the message (None for suppressed and held pages);
    * ``incidents``: how many incidents the message covered (a batch counts them all).

    Works on a connection with any row factory; only reads.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """
        SELECT a.at, m.event, m.route, n.target, n.target_type, a.result, a.error,
               row_number() OVER (PARTITION BY n.id ORDER BY a.at, a.id) AS attempt,
               m.id AS message_id, cardinality(m.incident_ids) AS incidents, 0 AS kind_order
        FROM notify_messages m
        JOIN notifications n ON n.message_id = m.id
        JOIN notification_attempts a ON a.notification_id = n.id
        WHERE m.incident_ids @> ARRAY[%(id)s]::bigint[]
        UNION ALL
        SELECT n.next_attempt_at, m.event, m.route, n.target, n.target_type, 'pending',
               NULL, NULL, m.id, cardinality(m.incident_ids), 1
        FROM notify_messages m
        JOIN notifications n ON n.message_id = m.id
        WHERE m.incident_ids @> ARRAY[%(id)s]::bigint[] AND n.status = 'queued'
          AND n.attempts = 0
        UNION ALL
        SELECT coalesce(i.done_at, i.due_at), i.event, i.route, NULL, NULL,
               CASE WHEN i.done_at IS NULL THEN 'held' ELSE 'suppressed' END,
               coalesce(substr(i.outcome, length('suppressed: ') + 1), i.held_reason),
               NULL, NULL, NULL, 2
        FROM notify_items i
        WHERE i.incident_id = %(id)s
          AND ((i.done_at IS NOT NULL AND i.outcome LIKE 'suppressed:%%')
               OR (i.done_at IS NULL AND i.held_reason IS NOT NULL))
        ORDER BY 1, 11, 4
        """,
            {"id": incident_id},
        ).fetchall()
    for row in rows:
        del row["kind_order"]
        if row["attempt"] is not None:
            row["attempt"] = int(row["attempt"])
    return rows


def summary(conn: psycopg.Connection[Any], since: datetime | None = None) -> list[dict[str, Any]]:
    """Messages per route and event made at or after ``since`` (all when None).

    Each entry: ``route``, ``event``, ``messages`` (pages: one per batch, whatever the number
    of targets), ``incidents`` (incidents covered), ``deliveries_sent``,
    ``deliveries_failed``, ``deliveries_waiting`` (per target), and ``suppressed``
    (incident pages deliberately not sent in that time, e.g. grouped under a storm parent).
    """
    params = {"since": since}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """
        WITH msgs AS (
            SELECT m.route, m.event, count(*) AS messages,
                   sum(cardinality(m.incident_ids)) AS incidents
            FROM notify_messages m
            WHERE %(since)s::timestamptz IS NULL OR m.created_at >= %(since)s
            GROUP BY 1, 2
        ), dels AS (
            SELECT m.route, m.event,
                   count(*) FILTER (WHERE n.status = 'sent') AS sent,
                   count(*) FILTER (WHERE n.status = 'failed') AS failed,
                   count(*) FILTER (WHERE n.status = 'queued') AS waiting
            FROM notify_messages m JOIN notifications n ON n.message_id = m.id
            WHERE %(since)s::timestamptz IS NULL OR m.created_at >= %(since)s
            GROUP BY 1, 2
        ), supp AS (
            SELECT route, event, count(*) AS suppressed
            FROM notify_items
            WHERE outcome LIKE 'suppressed:%%'
              AND (%(since)s::timestamptz IS NULL OR done_at >= %(since)s)
            GROUP BY 1, 2
        )
        SELECT k.route, k.event,
               coalesce(msgs.messages, 0) AS messages,
               coalesce(msgs.incidents, 0) AS incidents,
               coalesce(dels.sent, 0) AS deliveries_sent,
               coalesce(dels.failed, 0) AS deliveries_failed,
               coalesce(dels.waiting, 0) AS deliveries_waiting,
               coalesce(supp.suppressed, 0) AS suppressed
        FROM (SELECT route, event FROM msgs UNION SELECT route, event FROM supp) k
        LEFT JOIN msgs USING (route, event)
        LEFT JOIN dels USING (route, event)
        LEFT JOIN supp USING (route, event)
        ORDER BY k.route,
                 array_position(ARRAY['opened','repeated','escalated','resolved'], k.event)
        """,
            params,
        ).fetchall()
    return [{k: (int(v) if k not in ("route", "event") else v) for k, v in r.items()} for r in rows]
